"""``run`` settings: the renderer, plus the preprocessing and generation settings it passes on.

``RunSettings`` nests :class:`PreprocessSettings`, :class:`GenerateSettings`,
:class:`~wanimate.parallel.layout.ParallelSettings` and :class:`~wanimate.cast.settings.CastSettings`
(for several characters), so ``wanimate run``,
the server's job options and ``wanimate.run.run(**options)`` offer the union of their options as
one flat set of names (a name both stages used is a definition error, resolved by renaming).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from wanimate import options
from wanimate.cast.settings import CastSettings
from wanimate.generate.settings import GenerateSettings
from wanimate.options import option
from wanimate.parallel.layout import ParallelSettings
from wanimate.preprocess.settings import PreprocessSettings

RENDERERS = ("auto", "wan", "preview")
# Every option of the stages reaches ``run`` (MultiAnimate's checkpoint is used by an animate-mode cast).
NOT_ON_RUN: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunSettings:
    """What one ``run`` does: which renderer, and the settings of the two stages it runs."""

    backend: str = option(
        "auto", help="Renderer: auto, wan (the model) or preview (CPU renderer, no weights).", choices=RENDERERS,
        serve=True,
    )  # fmt: skip
    preprocess: PreprocessSettings = field(default_factory=PreprocessSettings)
    generate: GenerateSettings = field(default_factory=GenerateSettings)
    parallel: ParallelSettings = field(default_factory=ParallelSettings)
    cast: CastSettings = field(default_factory=CastSettings)

    def __post_init__(self) -> None:
        options.check(self)

    @classmethod
    def of(cls, base: RunSettings | None = None, **values: Any) -> RunSettings:
        """``base`` (default: the defaults) with flat option ``values`` from any of the three stages."""
        return options.build(cls, values, base)
