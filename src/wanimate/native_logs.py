"""Keep the C++ log chatter of MediaPipe and TFLite off the user's terminal.

Those libraries write dozens of lines ("Created TensorFlow Lite XNNPACK delegate", absl warnings)
straight to file descriptor 2 from their own threads, where no Python setting reaches. While any
caller is inside :func:`quiet_native_logs`, fd 2 points at ``/dev/null`` and Python's ``sys.stderr``
keeps the real terminal through a duplicate of it, so progress, notices and errors still show.
The redirection is process-wide and counted: nested or concurrent users (the server runs several
jobs in threads) share one, and the last one out restores fd 2. It is skipped with ``--debug`` and
when ``sys.stderr`` is not fd 2 (e.g. captured by a test), where there is nothing to untangle.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator
from typing import Any

_lock = threading.Lock()
_state: dict[str, Any] = {"users": 0, "saved": None, "python": None, "replacement": None, "show": False}


def show_native_logs(show: bool) -> None:
    """``--debug``: let native logs through."""
    _state["show"] = show


def _enter() -> None:
    with _lock:
        _state["users"] += 1
        if _state["users"] > 1 or _state["show"]:
            return
        try:
            real_fd = sys.stderr.fileno()
        except (AttributeError, OSError, ValueError):
            return
        if real_fd != 2:
            return
        sys.stderr.flush()
        saved = os.dup(2)
        replacement = os.fdopen(os.dup(saved), "w", buffering=1)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
        _state.update(saved=saved, python=sys.stderr, replacement=replacement)
        sys.stderr = replacement


def _exit() -> None:
    with _lock:
        _state["users"] -= 1
        if _state["users"] or _state["saved"] is None:
            return
        replacement = _state["replacement"]
        replacement.flush()
        if sys.stderr is replacement:  # someone else may have swapped it meanwhile; theirs stays
            sys.stderr = _state["python"]
        replacement.close()
        os.dup2(_state["saved"], 2)
        os.close(_state["saved"])
        _state.update(saved=None, python=None, replacement=None)


@contextlib.contextmanager
def quiet_native_logs() -> Iterator[None]:
    """Native libraries' writes to fd 2 are dropped inside the block (see the module docstring)."""
    _enter()
    try:
        yield
    finally:
        _exit()
