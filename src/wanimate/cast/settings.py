"""The cast's own options (the one definition of ``--background`` and ``--cast-order``).

A cast is prepared with the preprocessing options it shares with one character (fps, area, retarget,
pose backend, how people are found) and these two; ``wanimate preprocess``, ``wanimate run``, the
server's job options and the Python API take them from here (see :mod:`wanimate.options`).
"""

from __future__ import annotations

from dataclasses import dataclass

from wanimate import options
from wanimate.options import option

ORDERS = ("depth", "id")
BACKGROUNDS = ("image", "neutral")  # or an image file (not on the server: no server paths)


@dataclass(frozen=True)
class CastSettings:
    """How several characters are composed and layered; used only with ``--cast`` or repeated ``--image``."""

    background: str = option(
        "image", help="Cast: the composed reference's background: image (the first character's), neutral, or a file.",
        max_length=4096, serve=True,
    )  # fmt: skip
    cast_order: str = option(
        "depth", help="Cast: replace passes and ties back to front by depth (feet lower = nearer) or by id.",
        choices=ORDERS, serve=True,
    )  # fmt: skip

    def __post_init__(self) -> None:
        options.check(self)
