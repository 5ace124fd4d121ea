"""``wanimate serve``: its options are the fields of :class:`ServeConfig`.

FastAPI and uvicorn come with the ``[serve]`` extra and are imported inside the
command, so the rest of the CLI works without them.
"""

from __future__ import annotations

import dataclasses

import typer

from wanimate.errors import WanimateError
from wanimate.options import expand
from wanimate.serve.config import ServeConfig


def need_serve_extra() -> None:
    try:
        import fastapi  # noqa: F401
        import multipart  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise WanimateError("the server needs the serve extra: pip install 'wanimate[serve]'") from None


def serve_command(settings: ServeConfig = None) -> None:  # type: ignore[assignment] (expanded into its options)
    """Serve the REST API, the browser page (/) and the OpenAPI docs (/docs), with a worker process."""
    need_serve_extra()
    from wanimate.serve.server import serve

    config = dataclasses.replace(settings, rate_burst=max(1, int(settings.rate_per_s * 10)))
    config.validate()
    if config.ray_address is not None:
        from wanimate.batch.cluster import need_ray

        need_ray()
    serve(config)


def register(app: typer.Typer) -> None:
    app.command("serve")(expand()(serve_command))
