"""Content hashes of input files: the keys of every cache (materials, saved segments)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any


def update_with_file(digest: Any, path: str | Path) -> Any:
    """Feed a file's bytes into ``digest`` in 1 MiB blocks (videos can be gigabytes) and return it."""
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest


def file_sha256(path: str | Path) -> str:
    return update_with_file(hashlib.sha256(), path).hexdigest()
