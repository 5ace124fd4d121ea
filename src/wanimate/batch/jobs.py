"""The jobs file of ``wanimate batch``: one run per line, JSON Lines or CSV.

Every line names a character image, a driving video and an output, and may set any
generation or preprocessing option; relative paths are read from the jobs file's
folder. A bad line is refused before anything runs, with its line number.
"""

from __future__ import annotations

import csv
import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wanimate.errors import WanimateError
from wanimate.generate.settings import GenerateSettings
from wanimate.workdir import default_work_dir


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"not a yes/no value: {value!r}")


def _area(value: Any) -> tuple[int, int]:
    if isinstance(value, list | tuple):
        width, height = value
    else:
        width, _, height = str(value).lower().partition("x")
    return int(width), int(height)


# Preprocessing options a job may set, with how a CSV cell becomes their value.
PREPROCESS_FIELDS: dict[str, Callable[[Any], Any]] = {
    "area": _area,
    "fps": lambda v: None if str(v).lower() in ("", "source") else float(v),
    "retarget": _bool,
    "person": lambda v: "auto" if str(v) == "auto" else int(v),
    "pose_backend": str,
}
_SETTINGS_TYPES = {f.name: f.type for f in dataclasses.fields(GenerateSettings)}
SETTINGS_FIELDS = ("steps", "guidance", "shift", "seed", "segment_frames", "overlap", "dtype", "prompt",
                   "negative_prompt", "clip_input", "batch_cfg", "attention", "relight", "relight_scale", "sampler",
                   "color_correction")  # fmt: skip
_CONVERT = {"int": int, "float": float, "str": str, "bool": _bool, "bool | None": _bool, "Sampler": str,
            "ClipInput": str}  # fmt: skip
JOB_FIELDS = ("image", "video", "output", "mode", "name", "backend", "weights", "work_dir", "gpus")


@dataclass(frozen=True)
class BatchJob:
    """One run of the batch; ``work_dir`` (default: ``run``'s, ``<output stem>.work``) holds its cache and segments."""

    name: str
    image: Path
    video: Path
    output: Path
    mode: str = "animate"
    backend: str = "wan"
    weights: str = "Wan-AI/Wan2.2-Animate-14B"
    settings: dict[str, Any] = field(default_factory=dict)
    preprocess: dict[str, Any] = field(default_factory=dict)
    gpus: int | None = None
    work_dir: Path | None = None

    @property
    def work(self) -> Path:
        return self.work_dir or default_work_dir(self.output)

    def generate_settings(self, device: str) -> GenerateSettings:
        return GenerateSettings(mode=self.mode, device=device, **self.settings)  # type: ignore[arg-type]

    def preprocess_options(self) -> dict[str, Any]:
        options = dict(self.preprocess)
        if "pose_backend" in options:
            options["backend"] = options.pop("pose_backend")
        return options


def _job(raw: dict[str, Any], base: Path, where: str, weights: str) -> BatchJob:
    raw = {k.strip(): v for k, v in raw.items() if v not in (None, "") and k is not None}
    unknown = sorted(set(raw) - set(JOB_FIELDS) - set(SETTINGS_FIELDS) - set(PREPROCESS_FIELDS))
    if unknown:
        known = ", ".join((*JOB_FIELDS, *SETTINGS_FIELDS, *PREPROCESS_FIELDS))
        raise WanimateError(f"{where}: unknown field {unknown[0]!r}; fields are {known}")
    missing = [name for name in ("image", "video", "output") if name not in raw]
    if missing:
        raise WanimateError(f"{where}: missing {', '.join(missing)} (every job needs image, video and output)")

    def path(value: Any) -> Path:
        if str(value).startswith("example:"):  # resolved by ``run``
            return Path(str(value))
        candidate = Path(str(value)).expanduser()
        return candidate if candidate.is_absolute() else base / candidate

    try:
        settings = {k: _CONVERT[str(_SETTINGS_TYPES[k])](v) for k, v in raw.items() if k in SETTINGS_FIELDS}
        preprocess = {k: PREPROCESS_FIELDS[k](v) for k, v in raw.items() if k in PREPROCESS_FIELDS}
        gpus = int(raw["gpus"]) if "gpus" in raw else None
    except (ValueError, TypeError) as exc:
        raise WanimateError(f"{where}: {exc}") from None
    output = path(raw["output"])
    job = BatchJob(
        name=str(raw.get("name", output.stem)),
        image=path(raw["image"]),
        video=path(raw["video"]),
        output=output,
        mode=str(raw.get("mode", "animate")),
        backend=str(raw.get("backend", "wan")),
        weights=str(raw.get("weights", weights)),
        settings=settings,
        preprocess=preprocess,
        gpus=gpus,
        work_dir=path(raw["work_dir"]) if "work_dir" in raw else None,
    )
    try:
        job.generate_settings("cpu").validate()
    except WanimateError as exc:
        raise WanimateError(f"{where}: {exc}") from None
    return job


def read_jobs(path: str | Path, *, weights: str = "Wan-AI/Wan2.2-Animate-14B") -> list[BatchJob]:
    """All jobs of a ``.jsonl`` or ``.csv`` file; names and outputs must be unique."""
    path = Path(path)
    if not path.is_file():
        raise WanimateError(f"jobs file not found: {path}")
    base = path.resolve().parent
    rows: list[tuple[str, dict[str, Any]]] = []
    if path.suffix.lower() == ".csv":
        with path.open(newline="") as handle:
            rows = [(f"{path.name} line {i + 2}", row) for i, row in enumerate(csv.DictReader(handle))]
    elif path.suffix.lower() in (".jsonl", ".ndjson"):
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise WanimateError(f"{path.name} line {number}: not JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise WanimateError(f"{path.name} line {number}: each line must be a JSON object")
            rows.append((f"{path.name} line {number}", row))
    else:
        raise WanimateError(f"jobs file must be .jsonl or .csv, not {path.name}")
    jobs = [_job(row, base, where, weights) for where, row in rows]
    if not jobs:
        raise WanimateError(f"{path.name} has no jobs")
    for attr in ("name", "output"):
        seen: set[Any] = set()
        for job in jobs:
            value = getattr(job, attr)
            if value in seen:
                raise WanimateError(f"{path.name}: two jobs have the {attr} {value}; each job needs its own")
            seen.add(value)
    return jobs
