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

from wanimate.errors import WanimateError

TOKEN_ENV = "WANIMATE_TOKEN"
MIB = 1024 * 1024


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

    ``cpu_jobs`` is how many preview-backend jobs may run beside the Wan job; Wan jobs
    (and ``auto``, which may pick Wan) take one of ``gpu_jobs`` slots, by default one per
    visible GPU (one in total on a CPU-only machine). ``runner`` names the function a
    job calls as ``module:function``; it is ``wanimate.run:run`` except in tests that
    exercise the queue itself. ``ray_address`` sends every job to that Ray cluster
    instead (``gpus_per_job`` GPUs each; 0 runs them on the cluster's CPUs).
    """

    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path("wanimate-serve")
    db_path: Path | None = None
    input_root: Path | None = None
    token: str | None = field(default=None, repr=False)
    max_image_bytes: int = 20 * MIB
    max_video_bytes: int = 500 * MIB
    retention_s: float = 7 * 24 * 3600.0
    rate_per_s: float = 20.0
    rate_burst: int = 200
    submit_per_s: float = 1.0
    submit_burst: int = 30
    cpu_jobs: int = 1
    gpu_jobs: int | None = None
    max_attempts: int = 3
    poll_s: float = 0.1
    allowed_weights: tuple[str, ...] = ("Wan-AI/Wan2.2-Animate-14B", "random:tiny")
    runner: str = "wanimate.run:run"
    ray_address: str | None = None
    gpus_per_job: int = 1

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
        for name in ("max_image_bytes", "max_video_bytes", "cpu_jobs", "max_attempts"):
            if getattr(self, name) < 1:
                raise WanimateError(f"{name} must be at least 1, not {getattr(self, name)}")
        if self.gpu_jobs is not None and self.gpu_jobs < 1:
            raise WanimateError(f"gpu_jobs must be at least 1 (or unset for one per GPU), not {self.gpu_jobs}")
        if self.gpus_per_job < 0:
            raise WanimateError(f"gpus_per_job must be at least 0, not {self.gpus_per_job}")
        if self.retention_s <= 0:
            raise WanimateError(f"retention must be positive, not {self.retention_s}")

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
