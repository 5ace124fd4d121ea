"""``wanimate run``: one command from a character image and a driving video to the result.

Attributes load lazily so the CLI stays fast to start.
"""

from __future__ import annotations

from typing import Any

__all__ = ["RunEvent", "RunResult", "run"]


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from wanimate.run import pipeline

    return getattr(pipeline, name)
