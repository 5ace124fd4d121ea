"""Work folders: where ``run`` caches materials and ``generate`` keeps finished segments.

A work folder may sit beside the user's own files, or be a folder the user already had, so wanimate
marks every work folder it uses with a marker file and only ever deletes entries that match what it
writes there (a :class:`Layout`), never anything else: ``--fresh``, ``--no-resume`` and the cleanup
after success leave foreign files alone. A folder that already held files when wanimate adopted it
records their names, so even a file called ``key.json`` there stays the user's. The default work path
(``<output stem>.work``) must be free, an empty folder, or a marked one; an explicit ``--work-dir``
may be any folder. While a command uses it the folder is locked, so a second command cannot delete
the first one's half-written files; leftovers of a killed command (hidden ``*.partial`` entries) are
removed when the next one starts.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import fnmatch
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from wanimate.cast.folder import CAST_ARRAYS, CAST_JSON, LABELS, LAYERS, SCENE
from wanimate.errors import WanimateError
from wanimate.materials.characters import REF_POSE_FILE
from wanimate.materials.layout import KEYPOINTS_NAME, MATERIAL_FILES, META_NAME, STRIP_NAME
from wanimate.materials.people import PEOPLE_ARRAYS, PEOPLE_FACES, PEOPLE_JSON, PEOPLE_MASKS, PEOPLE_SHEET
from wanimate.paths import fit_name, make_parents, output_folder, remove_empty, temp_sibling

MARKER = ".wanimate-work"
SEGMENTS = "segments"
KEY_FILE = "key.json"
LEASE_FILE = "lease.lock"  # wanimate batch: which worker runs the job (batch/lease.py)
STAGING = (".*.partial", ".*.old")  # temporary siblings (paths.temp_sibling) of files and folders being written


@dataclass(frozen=True)
class Layout:
    """What wanimate writes into one kind of folder: file name patterns and own sub-folders."""

    files: tuple[str, ...] = ()
    folders: tuple[tuple[str, Layout], ...] = ()

    def owns_file(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, p) for p in (*self.files, *STAGING))

    def folder(self, name: str) -> Layout | None:
        for pattern, layout in self.folders:
            if fnmatch.fnmatchcase(name, pattern):
                return layout
        return None


MATERIALS_LAYOUT = Layout(
    files=(
        *MATERIAL_FILES.values(),
        META_NAME,
        KEYPOINTS_NAME,
        STRIP_NAME,
        REF_POSE_FILE,  # MultiAnimate's N-character layout
        "src_mask_[0-9]*.mp4",
        PEOPLE_JSON,  # the people record (materials/people.py)
        PEOPLE_ARRAYS,
        PEOPLE_MASKS,
        PEOPLE_SHEET,
    ),
    folders=((PEOPLE_FACES, Layout(files=("face_[0-9]*.mp4",))),),
)
# A cast folder (wanimate.cast.folder): materials files plus the cast's own.
CAST_LAYOUT = Layout(
    files=(
        *MATERIALS_LAYOUT.files,
        CAST_JSON,
        CAST_ARRAYS,
        SCENE,
        LABELS,
        "src_ref_[0-9]*.png",
        "src_face_[0-9]*.mp4",
    ),
    folders=(*MATERIALS_LAYOUT.folders, (LAYERS, Layout(files=("background.png", "character_[0-9]*.png")))),
)
# A replace-mode cast's passes: per pass its one-character materials and its finished video.
PASSES = "passes"
PASSES_LAYOUT = Layout(
    folders=(
        (
            "pass-*-person-*",
            Layout(
                files=("generated.mp4",), folders=(("materials", MATERIALS_LAYOUT), (".materials.*", MATERIALS_LAYOUT))
            ),
        ),
    )
)
FRAMES_LAYOUT = Layout(files=("[0-9][0-9][0-9][0-9][0-9][0-9].png",))  # generate --save-frames
SEGMENTS_LAYOUT = Layout(files=("[0-9][0-9][0-9][0-9][0-9].safetensors",))
WORK_LAYOUT = Layout(
    files=(KEY_FILE, LEASE_FILE),
    folders=(
        (SEGMENTS, SEGMENTS_LAYOUT),
        ("materials-*", MATERIALS_LAYOUT),
        (".materials-*.partial", MATERIALS_LAYOUT),
        (".materials-*.old", MATERIALS_LAYOUT),
        ("people-*", MATERIALS_LAYOUT),  # a cast's tracking (wanimate.cast.track)
        (".people-*.partial", MATERIALS_LAYOUT),
        ("cast-*", CAST_LAYOUT),
        (".cast-*.partial", CAST_LAYOUT),
        (".cast-*.old", CAST_LAYOUT),
        (PASSES, PASSES_LAYOUT),
    ),
)


def foreign_entries(folder: Path, layout: Layout) -> list[str]:
    """Names in ``folder`` (recursively, relative) that ``layout`` does not account for."""
    found = []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        sub = layout.folder(entry.name) if entry.is_dir(follow_symlinks=False) else None
        if sub is not None:
            found += [f"{entry.name}/{name}" for name in foreign_entries(Path(entry.path), sub)]
        elif entry.is_dir(follow_symlinks=False) or not layout.owns_file(entry.name):
            found.append(entry.name)
    return found


def remove_owned(
    folder: Path, layout: Layout, *, keep: frozenset[str] = frozenset(), staging_only: bool = False
) -> bool:
    """Delete what ``layout`` owns in ``folder`` (except ``keep``); True when the folder is left empty.

    ``staging_only`` deletes only the temporary entries of interrupted writes (``*.partial``).
    """
    for entry in os.scandir(folder):
        if entry.name in keep or entry.name == MARKER:
            continue
        path = Path(entry.path)
        staging = any(fnmatch.fnmatchcase(entry.name, p) for p in STAGING)
        sub = layout.folder(entry.name) if entry.is_dir(follow_symlinks=False) else None
        if sub is not None:
            if remove_owned(path, sub, staging_only=staging_only and not staging):
                path.rmdir()
        elif not entry.is_dir(follow_symlinks=False) and layout.owns_file(entry.name) and (staging or not staging_only):
            path.unlink()
    return not any(e.name != MARKER for e in os.scandir(folder))


def default_work_dir(output: str | Path) -> Path:
    """``<output stem>.work`` beside the output: the one default of ``generate`` and ``run``."""
    output = Path(output)
    return output.with_name(fit_name(f"{output.stem}.work"))


def _marker(folder: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("wanimate") == "work folder" else None


def remove_stale_staging(folder: Path) -> None:
    """Delete the hidden leftovers of a killed command (``*.partial``) in a marked work folder, nothing else."""
    marker = _marker(folder) if folder.is_dir() else None
    if marker is not None:
        remove_owned(folder, WORK_LAYOUT, keep=frozenset(marker.get("foreign", ())), staging_only=True)


_held: dict[Path, tuple[int, int]] = {}  # folder -> (locked fd, users in this process)
_held_lock = threading.Lock()


class WorkDir:
    """One work folder, checked on construction (nothing is created until the ``with`` block)."""

    def __init__(self, path: str | Path, *, explicit: bool) -> None:
        self.path = Path(path)
        flag = "--work-dir" if explicit else "the work folder"
        output_folder(self.path, flag)
        self._foreign: frozenset[str] = frozenset()
        self._parents: list[Path] = []
        self._created = not self.path.exists()
        if self._created:
            return
        marker = _marker(self.path)
        if marker is not None:
            self._foreign = frozenset(marker.get("foreign", ()))
            self._created = bool(marker.get("created"))
            return
        entries = sorted(os.listdir(self.path))
        if entries and not explicit:
            listed = ", ".join(entries[:3]) + (" ..." if len(entries) > 3 else "")
            raise WanimateError(
                f"the work folder {self.path} already exists and was not made by wanimate (it holds {listed}); "
                "move it away or pass --work-dir"
            )
        self._foreign = frozenset(entries)

    def owns(self, name: str) -> bool:
        return name not in self._foreign

    def child(self, name: str) -> Path:
        """A path wanimate will write in this folder; refused when a file the user had is in the way."""
        if not self.owns(name):
            raise WanimateError(
                f"{self.path / name} was there before wanimate used {self.path} as its work folder; "
                "choose another --work-dir"
            )
        return self.path / name

    def __enter__(self) -> WorkDir:
        self._parents = make_parents(self.path) if self._created else []  # removed again with the folder
        self.path.mkdir(exist_ok=True)
        if _marker(self.path) is None:
            data = {"wanimate": "work folder", "created": self._created, "foreign": sorted(self._foreign)}
            tmp = temp_sibling(self.path / MARKER)
            tmp.write_text(json.dumps(data) + "\n")
            os.replace(tmp, self.path / MARKER)
        self._lock()
        try:
            remove_stale_staging(self.path)
        except BaseException:
            self._unlock()
            raise
        return self

    def _lock(self) -> None:
        self._key = key = self.path.resolve()
        with _held_lock:
            if key in _held:
                fd, users = _held[key]
                _held[key] = (fd, users + 1)
                return
            fd = os.open(self.path / MARKER, os.O_RDONLY)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno in (errno.EAGAIN, errno.EACCES):
                    raise WanimateError(
                        f"the work folder {self.path} is in use by another wanimate command; wait for it "
                        "or pass another --work-dir"
                    ) from None
                raise
            _held[key] = (fd, 1)

    def _unlock(self) -> bool:
        """Release this user's hold; True when it was the last one in this process."""
        key = self._key
        with _held_lock:
            fd, users = _held.pop(key)
            if users > 1:
                _held[key] = (fd, users - 1)
                return False
            os.close(fd)
            return True

    def clear(self) -> None:
        """Delete everything wanimate wrote here (``--fresh``); the user's files stay."""
        remove_owned(self.path, WORK_LAYOUT, keep=self._foreign)

    def remove_segments(self) -> None:
        segments = self.path / SEGMENTS
        if segments.is_dir() and self.owns(SEGMENTS) and remove_owned(segments, SEGMENTS_LAYOUT):
            segments.rmdir()
        with contextlib.suppress(FileNotFoundError):
            if self.owns(KEY_FILE):
                (self.path / KEY_FILE).unlink()

    def _release(self) -> None:
        """Drop the marker and the folder itself once nothing of wanimate's is left in it."""
        if not self.path.is_dir() or any(e.name != MARKER and self.owns(e.name) for e in os.scandir(self.path)):
            return
        (self.path / MARKER).unlink(missing_ok=True)
        if self._created:
            with contextlib.suppress(OSError):  # not empty: the user put files in it meanwhile
                self.path.rmdir()
                remove_empty(self._parents)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        with _held_lock:
            last = _held[self._key][1] == 1
        try:
            if last:
                self._release()  # under the lock still: no other command can start using the folder meanwhile
        finally:
            self._unlock()


def remove_tree_if_owned(path: Path, layout: Layout) -> None:
    """Remove a folder wanimate staged (``layout`` says what is its own); a foreign file keeps it in place."""
    if path.is_dir() and not path.is_symlink() and remove_owned(path, layout):
        path.rmdir()
