"""``wanimate serve``: a REST job server with a SQLite queue, a worker process and a browser page.

Needs the ``[serve]`` extra (FastAPI, uvicorn, python-multipart); nothing outside this
package imports it, so the core package works without.
"""

from wanimate.serve.config import ServeConfig, is_loopback

__all__ = ["ServeConfig", "is_loopback"]
