"""The work folder: finished segments on disk, so a killed run resumes where it stopped.

Each segment file holds the segment's output frames (uint8, what the video gets),
the decoded tail the next segment conditions on (float, exact), and the random
generator's state after the segment. Restoring those three makes a resumed run
bit-identical to an uninterrupted one. ``key.json`` records the hash of inputs and
settings; a different hash means the saved segments belong to another result and
are discarded. The folder itself is a :class:`~wanimate.workdir.WorkDir`: only
these files are ever deleted from it.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from wanimate.paths import temp_sibling
from wanimate.workdir import KEY_FILE, SEGMENTS, WorkDir


@dataclass
class SegmentRecord:
    frames: torch.Tensor  # (T, H, W, 3) uint8, already trimmed for the final video
    tail: torch.Tensor  # (1, 3, r, H, W) float: the decoded frames the next segment conditions on
    rng_state: torch.Tensor  # torch.Generator state after this segment


def _os_error(exc: BaseException, path: Path) -> OSError | None:
    """safetensors reports a full disk as ``SafetensorError("... (os error 28)")``; make it the OSError it is."""
    if not isinstance(exc, SafetensorError):
        return None
    match = re.search(r"os error (\d+)", str(exc))
    if match is None:
        return None
    code = int(match.group(1))
    return OSError(code, os.strerror(code), str(path))


class WorkFolder:
    """The segments of one result inside an open (entered) :class:`WorkDir`."""

    def __init__(self, work: WorkDir, key: str, *, resume: bool = True) -> None:
        self.work = work
        self.root = work.path
        self.key = key
        self.segments_dir = work.child(SEGMENTS)
        key_path = work.child(KEY_FILE)
        self.discarded = 0
        stored = self._stored_key()
        if not resume or stored != key:
            self.discarded = len(self.finished()) if self.segments_dir.is_dir() else 0
            work.remove_segments()
        self.segments_dir.mkdir(parents=True, exist_ok=True)
        if stored != key or not resume:
            tmp = temp_sibling(key_path)
            tmp.write_text(json.dumps({"key": key}) + "\n")
            os.replace(tmp, key_path)

    def _stored_key(self) -> str | None:
        try:
            return json.loads((self.root / KEY_FILE).read_text())["key"]
        except (OSError, ValueError, KeyError):
            return None

    def _path(self, index: int) -> Path:
        return self.segments_dir / f"{index:05d}.safetensors"

    def finished(self) -> list[int]:
        """Indices of finished segments, counted from 0 without gaps."""
        done = []
        while self._path(len(done)).is_file():
            done.append(len(done))
        return done

    def save(self, index: int, record: SegmentRecord) -> None:
        path = self._path(index)
        tmp = temp_sibling(path)
        tensors = {
            "frames": record.frames.contiguous(),
            "tail": record.tail.contiguous(),
            "rng_state": record.rng_state.contiguous(),
        }
        try:
            save_file(tensors, str(tmp))
            os.replace(tmp, path)
        except BaseException as exc:  # a full disk must not leave a half-written segment behind
            tmp.unlink(missing_ok=True)
            fault = _os_error(exc, path)
            if fault is not None:
                raise fault from exc
            raise

    def load(self, index: int) -> SegmentRecord:
        data = load_file(str(self._path(index)))
        return SegmentRecord(frames=data["frames"], tail=data["tail"], rng_state=data["rng_state"])

    def iter_frames(self) -> Iterator[np.ndarray]:
        """All finished frames in order, one segment in memory at a time."""
        for index in self.finished():
            yield from load_file(str(self._path(index)))["frames"].numpy()

    def remove(self) -> None:
        """Delete the segments and the key (nothing else in the work folder)."""
        self.work.remove_segments()
