"""What a client may ask of a job, checked before anything is queued.

Only settings that are safe to take from a stranger are exposed: weights come from an
allowlist (a local path could point the model loader at any file on the server), and
preprocessing options are a fixed, bounded subset.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from wanimate.errors import WanimateError
from wanimate.generate.settings import DEFAULT_WEIGHTS


class PreprocessOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fps: float | None = Field(None, gt=0, le=120, description="Resample the driving video; null keeps its rate.")
    area: tuple[int, int] = Field((1280, 720), description="Target pixel area as width, height (aspect is kept).")
    retarget: bool = Field(True, description="Rescale the driver's bones to the character (animate mode).")
    person: Literal["auto"] | int = Field(
        "auto", description="Which person drives: auto, or an id of the people sheet (GET /jobs/{id}/people)."
    )

    @field_validator("area")
    @classmethod
    def _area(cls, value: tuple[int, int]) -> tuple[int, int]:
        if not all(64 <= side <= 2048 for side in value):
            raise ValueError("area sides must be between 64 and 2048")
        return value


class JobOptions(BaseModel):
    """The ``options`` JSON of ``POST /jobs``."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["animate", "replace"] = "animate"
    backend: Literal["auto", "wan", "preview"] = "preview"
    weights: str = DEFAULT_WEIGHTS
    steps: int = Field(20, ge=1, le=100)
    seed: int = Field(42, ge=0, le=2**31 - 1)
    guidance: float = Field(1.0, ge=1.0, le=20.0)
    shift: float = Field(5.0, gt=0, le=50)
    segment_frames: int = Field(77, ge=5, le=161, description="Frames per Wan segment (4n+1).")
    overlap: Literal[1, 5] = 1
    dtype: Literal["bf16", "fp16", "fp32"] = "bf16"
    prompt: str | None = Field(None, max_length=1000)
    preprocess: PreprocessOptions = Field(default_factory=PreprocessOptions)
    image_path: str | None = Field(None, description="Character image under the server's input root.")
    video_path: str | None = Field(None, description="Driving video under the server's input root.")
    cast: list[int] | None = Field(
        None,
        description="A cast: the person ids (from the people sheet) that the uploaded cast_image files play, "
        "in the same order; replaces the one character image.",
    )
    background: Literal["image", "neutral"] = Field(
        "image", description="Cast, animate mode: the composed reference's background."
    )
    cast_order: Literal["depth", "id"] = Field("depth", description="Cast: back to front by depth or by id.")

    @field_validator("segment_frames")
    @classmethod
    def _segment_frames(cls, value: int) -> int:
        if value % 4 != 1:
            raise ValueError("segment_frames must be 4n+1 (e.g. 77 or 81)")
        return value

    @field_validator("cast")
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

    @property
    def lane(self) -> str:
        """``gpu`` for anything that may load the Wan model (``auto`` might), ``cpu`` for the preview."""
        return "cpu" if self.backend == "preview" else "gpu"

    def check_weights(self, allowed: tuple[str, ...]) -> None:
        if self.backend != "preview" and self.weights not in allowed:
            raise WanimateError(f"weights {self.weights!r} are not offered by this server; use one of {list(allowed)}")

    def run_kwargs(self, device: str | None) -> dict[str, Any]:
        """Keyword arguments for :func:`wanimate.run.run` (files and callbacks are added by the worker)."""
        from wanimate.generate.settings import GenerateSettings

        extra: dict[str, Any] = {"prompt": self.prompt} if self.prompt else {}
        if device is not None:
            extra["device"] = device
        settings = GenerateSettings(
            mode=self.mode,
            steps=self.steps,
            guidance=self.guidance,
            shift=self.shift,
            seed=self.seed,
            segment_frames=self.segment_frames,
            overlap=self.overlap,
            dtype=self.dtype,
            **extra,
        )
        kwargs: dict[str, Any] = {
            "mode": self.mode,
            "backend": self.backend,
            "weights": self.weights,
            "settings": settings,
            "overwrite": True,  # the job's own folder: a resumed attempt replaces what a killed one left
            "preprocess_options": {**self.preprocess.model_dump(), "preview": True},
        }
        if self.cast:
            from wanimate.cast.run import CastOptions

            pre = self.preprocess
            kwargs["cast_options"] = CastOptions(
                background=self.background,
                order=self.cast_order,
                retarget=pre.retarget,
                fps=pre.fps,
                area=pre.area,
            )
            kwargs["weights"] = None if self.weights == DEFAULT_WEIGHTS and self.mode == "animate" else self.weights
        return kwargs

    def check_size(self, image: Path, video: Path) -> None:
        """A Wan job whose frames the chosen model cannot place fails now, not after preprocessing."""
        if self.backend != "wan":
            return  # the preview renders any size; ``auto`` is checked by ``run`` once it has chosen
        from wanimate.image import image_size
        from wanimate.models.limits import known_limits
        from wanimate.preprocess.sizing import output_size
        from wanimate.video import probe_video

        limits = known_limits(self.weights)
        if limits is None:
            return
        info = probe_video(video)
        width, height = output_size(self.mode, image_size(image), (info.width, info.height), self.preprocess.area)
        limits.check(width, height, self.segment_frames)
