"""The jobs file of ``wanimate batch``: one run per line, JSON Lines or CSV.

Every line names a character image, a driving video and an output, and may set any
``run`` option by its name (the options of :class:`~wanimate.run.settings.RunSettings`, read
and checked as the command line reads them); relative paths are read from the jobs file's
folder. A bad line is refused before anything runs, with its line number.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wanimate import options
from wanimate.errors import WanimateError
from wanimate.models.hub import DEFAULT_REPO
from wanimate.parallel.layout import ParallelSettings
from wanimate.run.settings import RunSettings
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


# A job's own fields; every other field is a ``run`` option (see ``wanimate run --help``), by its name.
JOB_FIELDS = ("image", "video", "output", "name", "work_dir", "gpus")
# What a batch job does unless its line says otherwise: generate with the model (not ``run``'s auto).
JOB_DEFAULTS = {"backend": "wan"}


def _option_value(f: options.Field, value: Any) -> Any:
    """A CSV cell (text) read as the command line reads it; JSON values are already typed."""
    if not isinstance(value, str):
        return value
    if f.info.parse is not None:
        return f.info.parse(value)
    hint = options.strip_optional(f.hint)
    if hint is bool:
        return _bool(value)
    if hint is int:
        return int(value)
    if hint is float:
        return float(value)
    return value


@dataclass(frozen=True)
class BatchJob:
    """One run of the batch; ``work_dir`` (default: ``run``'s, ``<output stem>.work``) holds its cache and segments.

    ``gpus`` (``None``: the batch's ``--gpus-per-job``) is how many GPUs its generation takes.
    """

    name: str
    image: Path
    video: Path
    output: Path
    settings: RunSettings = field(default_factory=RunSettings)
    gpus: int | None = None
    work_dir: Path | None = None

    @property
    def work(self) -> Path:
        return self.work_dir or default_work_dir(self.output)


def _job(raw: dict[str, Any], base: Path, where: str, weights: str) -> BatchJob:
    raw = {k.strip(): v for k, v in raw.items() if v not in (None, "") and k is not None}
    known = options.flat_options(RunSettings)
    unknown = sorted(set(raw) - set(JOB_FIELDS) - set(known))
    if unknown:
        names = ", ".join((*JOB_FIELDS, *sorted(known)))
        raise WanimateError(f"{where}: unknown field {unknown[0]!r}; fields are {names}")
    missing = [name for name in ("image", "video", "output") if name not in raw]
    if missing:
        raise WanimateError(f"{where}: missing {', '.join(missing)} (every job needs image, video and output)")

    def path(value: Any) -> Path:
        if str(value).startswith("example:"):  # resolved by ``run``
            return Path(str(value))
        candidate = Path(str(value)).expanduser()
        return candidate if candidate.is_absolute() else base / candidate

    try:
        values = {k: _option_value(known[k][1], v) for k, v in raw.items() if k in known}
        settings = RunSettings.of(**{**JOB_DEFAULTS, "weights": weights, **values})
        gpus = int(raw["gpus"]) if "gpus" in raw else None
        if gpus is not None:
            options.build(ParallelSettings, {"gpus": max(1, gpus)})  # the option's own bounds
    except (ValueError, TypeError, WanimateError) as exc:
        raise WanimateError(f"{where}: {exc}") from None
    output = path(raw["output"])
    return BatchJob(
        name=str(raw.get("name", output.stem)),
        image=path(raw["image"]),
        video=path(raw["video"]),
        output=output,
        settings=settings,
        gpus=gpus,
        work_dir=path(raw["work_dir"]) if "work_dir" in raw else None,
    )


def read_jobs(path: str | Path, *, weights: str = DEFAULT_REPO) -> list[BatchJob]:
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
