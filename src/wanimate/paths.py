"""The checks every command runs on its paths before any work, and the faults of the machine as one line.

Nothing a user made may be overwritten or deleted, so before a command reads a frame it knows that
its inputs are readable files (or folders), that no output is, equals or contains an input, that no
two outputs collide, and that every output can be created (its parent is a writable folder, its name
fits the file system). Writes go to hidden temporary siblings that are renamed into place; their names
must fit the same 255-byte limit as the target's. A fault that appears anyway (the disk fills up
during a write) becomes a :class:`WanimateError` naming the path and what to do.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import stat
from collections.abc import Iterator, Mapping
from pathlib import Path

from wanimate.errors import WanimateError

NAME_MAX = 255  # bytes per path component on every common file system

_FIXES = {
    errno.ENOSPC: "the disk is full: free some space and run the same command again",
    errno.EDQUOT: "the disk quota is used up: free some space and run the same command again",
    errno.EROFS: "that file system is read-only: choose a writable location",
    errno.EACCES: "permission denied: choose a folder you can write to, or fix its permissions",
    errno.EPERM: "the operation is not permitted there: choose another location",
    errno.ELOOP: "the path contains a symlink loop: fix or remove the link",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EISDIR: "that is a folder, not a file",
    errno.ENAMETOOLONG: f"a name is too long for the file system (at most {NAME_MAX} bytes)",
    errno.EFBIG: "the file is too large for this file system: write to another one",
    errno.EIO: "the disk or network share reported an input/output error: check it and try again",
}


def describe_os_error(exc: OSError) -> str | None:
    """One line for an OS fault the user can fix (disk full, read-only, loops...); ``None`` for anything else."""
    fix = _FIXES.get(exc.errno or 0)
    if fix is None:
        return None
    names = [str(n) for n in (exc.filename, exc.filename2) if n]
    where = f"{' -> '.join(names)}: " if names else ""
    reason = exc.strerror or os.strerror(exc.errno or 0)
    return f"{where}{reason}; {fix}"


@contextlib.contextmanager
def os_faults() -> Iterator[None]:
    """Re-raise user-fixable OS faults inside the block as a :class:`WanimateError` (the Python API's view)."""
    try:
        yield
    except OSError as exc:
        message = describe_os_error(exc)
        if message is None:
            raise
        raise WanimateError(message) from exc


def _cut_utf8(text: str, limit: int) -> str:
    return text.encode()[: max(limit, 0)].decode(errors="ignore")


def fit_name(name: str, limit: int = NAME_MAX) -> str:
    """``name`` when its UTF-8 fits ``limit`` bytes; else its start plus a hash of the whole (stable per name)."""
    if len(name.encode()) <= limit:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:12]
    stem, dot, ext = name.rpartition(".")
    ext = f".{ext}" if dot and len(ext) <= 16 else ""
    base = stem if ext else name
    return f"{_cut_utf8(base, limit - len(ext) - 13)}~{digest}{ext}"


def temp_sibling(path: str | Path, tag: str = "partial") -> Path:
    """The hidden ``.NAME.TAG`` beside ``path`` that a write goes through, fixed per target and within NAME_MAX."""
    path = Path(path)
    return path.with_name(fit_name(f".{path.name}.{tag}"))


def current_umask() -> int:
    """The process umask, read without changing it (``os.umask`` would briefly change it for every thread)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _stat(path: Path, what: str) -> os.stat_result | None:
    """``stat`` with the failures a user can cause spelled out; ``None`` when nothing is there."""
    try:
        return path.stat()
    except FileNotFoundError:
        if path.is_symlink():
            raise WanimateError(f"{what} {path} is a broken symlink (to {os.readlink(path)})") from None
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise WanimateError(f"{what} {path} goes through a symlink loop; fix or remove the link") from None
        if exc.errno == errno.ENOTDIR:
            raise WanimateError(f"{what} {path}: {_file_in_the_way(path)} is a file, not a folder") from None
        if exc.errno in (errno.EACCES, errno.EPERM):
            raise WanimateError(f"cannot read {what} {path}: permission denied") from None
        raise


def _file_in_the_way(path: Path) -> Path:
    """The first component of ``path`` that is a file although the path goes on below it."""
    for parent in reversed(path.absolute().parents):
        if parent.exists() and not parent.is_dir():
            return parent
    return path.parent


def input_file(path: str | Path, what: str) -> Path:
    """``path`` if it is a readable file; otherwise one line saying what it is instead."""
    path = Path(path)
    info = _stat(path, what)
    if info is None:
        raise WanimateError(f"{what} not found: {path}")
    if stat.S_ISDIR(info.st_mode):
        raise WanimateError(f"{what} {path} is a folder, not a file; give the path of the file itself")
    if not stat.S_ISREG(info.st_mode):
        raise WanimateError(f"{what} {path} is not a regular file (a device, pipe or socket)")
    if not os.access(path, os.R_OK):
        raise WanimateError(f"cannot read {what} {path}: permission denied")
    return path


def input_folder(path: str | Path, what: str, *, file_hint: str = "") -> Path:
    """``path`` if it is a folder; ``file_hint`` says what to do when it is a file instead."""
    path = Path(path)
    info = _stat(path, what)
    if info is None:
        raise WanimateError(f"{what} not found: {path}")
    if not stat.S_ISDIR(info.st_mode):
        raise WanimateError(f"{what} {path} is a file, not a folder" + (f"; {file_hint}" if file_hint else ""))
    return path


def _first_existing(folder: Path, what: str, target: Path) -> Path:
    """The nearest ancestor of ``folder`` that exists, which must be a folder wanimate can write into."""
    probe = folder
    while True:
        info = _stat(probe, what)
        if info is not None:
            break
        if probe.parent == probe:
            raise WanimateError(f"{what} {target}: no part of its folder exists")
        probe = probe.parent
    if not stat.S_ISDIR(info.st_mode):
        raise WanimateError(f"{what} {target} cannot be created: {probe} is a file, not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        why = "is on a read-only file system" if _read_only_mount(probe) else "is not writable (permission denied)"
        raise WanimateError(f"{what} {target} cannot be written: {probe} {why}; choose another location")
    return probe


def _read_only_mount(folder: Path) -> bool:
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _check_name(path: Path, what: str) -> None:
    for part in path.parts:
        size = len(part.encode())
        if size > NAME_MAX:
            raise WanimateError(
                f"{what} {path}: the name {part[:40]}... is {size} bytes; file systems allow {NAME_MAX}"
            )


def output_file(path: str | Path, what: str, *, overwrite: bool, suffix: str | None = ".mp4") -> Path:
    """Check that ``path`` can be written as a new file, or replaced when ``overwrite`` is set."""
    path = Path(path)
    if suffix is not None and path.suffix.lower() != suffix:
        raise WanimateError(f"{what} must be a {suffix} file, not {path.name or path}")
    _check_name(path, what)
    info = _stat(path, what)
    if info is not None:
        if stat.S_ISDIR(info.st_mode):
            raise WanimateError(f"{what} {path} is a folder; give a file name such as out{suffix or ''}")
        if not overwrite:
            raise WanimateError(f"{what} {path} already exists; pass --overwrite to replace it or choose another path")
    _first_existing(path.absolute().parent, what, path)
    return path


def output_folder(path: str | Path, what: str) -> Path:
    """Check that the folder ``path`` can be created (or written into, when it exists)."""
    path = Path(path)
    _check_name(path, what)
    info = _stat(path, what)
    if info is not None and not stat.S_ISDIR(info.st_mode):
        raise WanimateError(f"{what} {path} is a file, not a folder; choose a folder path")
    _first_existing(path.absolute() if info is not None else path.absolute().parent, what, path)
    return path


def real(path: str | Path) -> Path:
    """Absolute, with every symlink that exists resolved: two spellings of one place compare equal."""
    return Path(os.path.realpath(Path(path).expanduser()))


def _same(a: Path, b: Path) -> bool:
    if a == b:
        return True
    try:
        return os.path.samefile(a, b)  # hard links, bind mounts, case-insensitive file systems
    except OSError:
        return False


def check_apart(inputs: Mapping[str, str | Path | None], outputs: Mapping[str, str | Path | None]) -> None:
    """No output is, lies inside or contains an input, and no two outputs are or contain each other.

    Keys are how the user named each path (``"-o"``, ``"the driving video"``); ``None`` values are skipped.
    """
    ins = {label: real(p) for label, p in inputs.items() if p is not None}
    outs = {label: real(p) for label, p in outputs.items() if p is not None}
    for out_label, out in outs.items():
        for in_label, source in ins.items():
            if _same(out, source):
                raise WanimateError(f"{out_label} {out} is the {in_label} itself; write the output somewhere else")
            if out.is_relative_to(source):
                raise WanimateError(f"{out_label} {out} lies inside the {in_label} {source}; write it elsewhere")
            if source.is_relative_to(out):
                raise WanimateError(
                    f"the {in_label} {source} lies inside {out_label} {out}, which wanimate writes to; "
                    f"move the input elsewhere or change {out_label}"
                )
    labels = list(outs)
    for i, first in enumerate(labels):
        for second in labels[i + 1 :]:
            a, b = outs[first], outs[second]
            if _same(a, b) or a.is_relative_to(b) or b.is_relative_to(a):
                raise WanimateError(f"{first} {a} and {second} {b} collide; give them separate paths")


def make_parents(path: str | Path) -> list[Path]:
    """Create the missing folders above ``path``; returns them (deepest first) so a failure can undo it."""
    missing = []
    parent = Path(path).absolute().parent
    while not parent.exists() and parent.parent != parent:
        missing.append(parent)
        parent = parent.parent
    for folder in reversed(missing):
        folder.mkdir(exist_ok=True)
    return missing


def remove_empty(folders: list[Path]) -> None:
    """Remove folders that :func:`make_parents` created, as long as nothing was put in them."""
    for folder in folders:
        with contextlib.suppress(OSError):
            folder.rmdir()
