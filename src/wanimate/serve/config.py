"""Server settings, and the checks that keep a misconfigured server from starting.

The worker runs in another process and reads the same settings from a JSON file in
the data folder, so everything here is plain data that survives ``to_json``. The
token is deliberately left out of that file: the worker never needs it.
"""

from __future__ import annotations

import ipaddress
import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from wanimate import options
from wanimate.errors import WanimateError
from wanimate.models.hub import DEFAULT_REPO
from wanimate.options import option

TOKEN_ENV = "WANIMATE_TOKEN"
MIB = 1024 * 1024
HOUR = 3600.0


def _number(text: str, flag: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise WanimateError(f"{flag} must be a number, not {text!r}") from None


def _mib(flag: str) -> dict[str, Any]:
    """CLI in MiB, stored in bytes."""
    return {
        "flag": flag,
        "parse": lambda text: int(_number(text, flag) * MIB),
        "show": lambda value: f"{value / MIB:g}",
        "rule": lambda value: None if value >= 1 else "must be positive",
    }


def is_loopback(host: str) -> bool:
    """True only for addresses that cannot be reached from another machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name could resolve to anything: treat it as public


@dataclass
class ServeConfig:
    """Everything ``wanimate serve`` can be told; the defaults suit one workstation.

    The fields are the options of ``wanimate serve`` (see :mod:`wanimate.options`); those with
    ``cli=False`` are set by tests and the benchmark only. ``cpu_jobs`` is how many preview-backend
    jobs may run beside the Wan job; Wan jobs (and ``auto``, which may pick Wan) take one of
    ``gpu_jobs`` slots, by default one per visible GPU (one in total on a CPU-only machine); each
    slot keeps its loaded model warm for the next job. ``runner`` names the function a job calls
    as ``module:function`` with :func:`wanimate.run.run`'s arguments (GPU-lane jobs also get the slot's
    ``session``); it is ``wanimate.run:run`` except in tests that exercise the queue itself.
    ``ray_address`` sends every job to that Ray cluster instead (``gpus_per_job`` GPUs each; 0 runs
    them on the cluster's CPUs).
    """

    host: str = option("127.0.0.1", help="Address to bind; anything but loopback needs WANIMATE_TOKEN.")
    port: int = option(8000, help="TCP port.", min=0, max=65535)
    data_dir: Path = option(Path("wanimate-serve"), help="Job workspaces, the queue database, worker files.")
    db_path: Path | None = option(None, help="SQLite queue file (default: DATA_DIR/jobs.sqlite3).", flag="--db")
    input_root: Path | None = option(
        None, help="Let clients name server-side files under this folder instead of uploading."
    )
    token: str | None = field(default=None, repr=False)
    max_image_bytes: int = option(20 * MIB, help="Largest character image accepted, MiB.", **_mib("--max-image-mb"))
    max_video_bytes: int = option(500 * MIB, help="Largest driving video accepted, MiB.", **_mib("--max-video-mb"))
    retention_s: float = option(
        7 * 24 * HOUR, help="Finished jobs and their files are deleted after this many hours.",
        flag="--retention-hours", parse=lambda text: _number(text, "--retention-hours") * HOUR,
        show=lambda value: f"{value / HOUR:g}", above=0.0,
    )  # fmt: skip
    rate_per_s: float = option(
        20.0, help="Requests per second per client (bursts of 10x); 0 disables.", flag="--rate", min=0.0
    )
    rate_burst: int = option(200, help="Requests a client may send at once.", min=1, cli=False)
    submit_per_s: float = option(
        1.0, help="Job submissions per second per client (bursts of 30); 0 disables.", flag="--submit-rate", min=0.0
    )
    submit_burst: int = option(30, help="Submissions a client may send at once.", min=1, cli=False)
    cpu_jobs: int = option(1, help="Preview-backend jobs that may run at once (beside the Wan job).", min=1)
    gpu_jobs: int | None = option(None, help="Wan jobs at once (default: one per GPU, one on CPU).", min=1)
    max_attempts: int = option(3, help="A job that stops the worker this often is failed.", min=1, cli=False)
    poll_s: float = option(0.1, help="How often the worker looks for new jobs, seconds.", above=0.0, cli=False)
    allowed_weights: tuple[str, ...] = option(
        (DEFAULT_REPO, "random:tiny"), help="Weights clients may ask for (repeat); never arbitrary paths.",
        flag="--weights",
    )  # fmt: skip
    runner: str = option("wanimate.run:run", help="The job function, module:function.", cli=False)
    ray_address: str | None = option(
        None, help="Run the jobs on this Ray cluster (auto or HOST:PORT) instead of the local worker.", flag="--ray"
    )
    gpus_per_job: int = option(1, help="With --ray: GPUs per job (0: the cluster's CPUs).", min=0)

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)
        if self.db_path is not None:
            self.db_path = Path(self.db_path)
        if self.input_root is not None:
            self.input_root = Path(self.input_root)
        self.allowed_weights = tuple(self.allowed_weights)

    @property
    def database(self) -> Path:
        return self.db_path if self.db_path is not None else self.data_dir / "jobs.sqlite3"

    @property
    def jobs_dir(self) -> Path:
        return self.data_dir / "jobs"

    def resolved_token(self) -> str | None:
        """The configured token, else ``WANIMATE_TOKEN``; empty means none."""
        token = self.token if self.token is not None else os.environ.get(TOKEN_ENV)
        return token or None

    def validate(self) -> None:
        """Refuse settings that would expose the server or cannot work."""
        token = self.resolved_token()
        if not is_loopback(self.host) and token is None:
            raise WanimateError(
                f"refusing to listen on {self.host} without a token: set {TOKEN_ENV} (a long random string) "
                "or bind to 127.0.0.1"
            )
        if token is not None and len(token) < 16:
            raise WanimateError(f"{TOKEN_ENV} is too short: use at least 16 random characters")
        if self.input_root is not None and not self.input_root.is_dir():
            raise WanimateError(f"--input-root {self.input_root} is not a folder")
        options.check(self)

    def to_json(self) -> str:
        """The settings the worker needs (never the token)."""
        data = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}
        data["token"] = None
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> ServeConfig:
        data: dict[str, Any] = json.loads(text)
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
