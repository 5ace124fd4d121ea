"""What a client may ask of a job: the run options marked ``serve=True``, checked before anything is queued.

The model is derived from :class:`wanimate.run.settings.RunSettings` (which nests the preprocessing
and generation settings), so a job takes the same names, types, defaults and bounds as
``wanimate run``. Only options that are safe to take from a stranger are marked for the server:
no paths (a local path could point a loader at any file on the server), no device (the worker
assigns GPUs), and weights only from the server's allowlist.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator, model_validator

from wanimate.errors import WanimateError
from wanimate.options import build, pydantic_fields
from wanimate.run.settings import RunSettings

# The server's own defaults: a job renders with the CPU preview unless it asks for the model.
SERVER_DEFAULTS: dict[str, Any] = {"backend": "preview"}


class _JobOptionsBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("cast", check_fields=False)
    @classmethod
    def _cast(cls, value: list[int] | None) -> list[int] | None:
        from wanimate.cast.spec import MAX_CHARACTERS

        if value is None:
            return None
        if not 1 <= len(value) <= MAX_CHARACTERS:
            raise ValueError(f"a cast has 1 to {MAX_CHARACTERS} characters")
        if min(value) < 0 or len(set(value)) != len(value):
            raise ValueError("cast ids must be distinct person ids (0 or more), each cast once")
        return value

    @model_validator(mode="after")
    def _no_server_paths(self) -> _JobOptionsBase:
        from wanimate.cast.settings import BACKGROUNDS

        if self.background not in BACKGROUNDS:  # type: ignore[attr-defined]
            raise ValueError(f"background must be one of {', '.join(BACKGROUNDS)} (no server paths)")
        return self

    @property
    def lane(self) -> str:
        """``gpu`` for anything that may load the Wan model (``auto`` might), ``cpu`` for the preview."""
        return "cpu" if self.backend == "preview" else "gpu"  # type: ignore[attr-defined]

    def check_weights(self, allowed: tuple[str, ...]) -> None:
        weights = self.weights  # type: ignore[attr-defined]
        if self.backend != "preview" and weights not in allowed:  # type: ignore[attr-defined]
            raise WanimateError(f"weights {weights!r} are not offered by this server; use one of {list(allowed)}")

    def stored(self) -> dict[str, Any]:
        """The options as the queue keeps them: what the client set, on the server's defaults."""
        return {**SERVER_DEFAULTS, **self.model_dump(exclude_unset=True)}

    def run_options(self) -> dict[str, Any]:
        """The run options the client set (on the server's defaults), as flat keywords for :func:`wanimate.run.run`.

        Only what was set: options left out take the model's own defaults (an animate-mode cast runs
        MultiAnimate with its base and its steps).
        """
        values = self.model_dump(exclude={"image_path", "video_path", "cast"}, exclude_unset=True)
        # The materials route serves the strip as soon as preprocessing is done.
        return {**SERVER_DEFAULTS, **values, "strip": True}

    def settings(self) -> RunSettings:
        """The validated :class:`RunSettings` (every option's own rules, beyond the schema's bounds)."""
        return build(RunSettings, self.run_options())

    def run_kwargs(self, device: str | None) -> dict[str, Any]:
        """Keyword arguments for :func:`wanimate.run.run` (files and callbacks are added by the worker)."""
        extra = {"device": device} if device is not None else {}
        return {**self.run_options(), **extra}

    def check_size(self, image: Path, video: Path) -> None:
        """A Wan job whose frames the chosen model cannot place fails now, not after preprocessing."""
        if self.backend != "wan":  # type: ignore[attr-defined]
            return  # the preview renders any size; ``auto`` is checked by ``run`` once it has chosen
        from wanimate.image import image_size
        from wanimate.models.limits import known_limits
        from wanimate.preprocess.sizing import output_size
        from wanimate.video import probe_video

        settings = self.settings()
        limits = known_limits(settings.generate.weights)
        if limits is None:
            return
        info = probe_video(video)
        mode, area = settings.preprocess.mode, settings.preprocess.area
        width, height = output_size(mode, image_size(image), (info.width, info.height), area)
        limits.check(width, height, settings.generate.segment_frames)


JobOptions: type[_JobOptionsBase] = create_model(  # type: ignore[call-overload]
    "JobOptions",
    __base__=_JobOptionsBase,
    __doc__="The ``options`` JSON of ``POST /jobs``: the run options a client may set.",
    **pydantic_fields(RunSettings, SERVER_DEFAULTS),
    image_path=(str | None, Field(None, description="Character image under the server's input root.")),
    video_path=(str | None, Field(None, description="Driving video under the server's input root.")),
    cast=(
        list[int] | None,
        Field(
            None,
            description="A cast: the person ids (from the people sheet) that the uploaded cast_image files play, "
            "in the same order; replaces the one character image.",
        ),
    ),
)
