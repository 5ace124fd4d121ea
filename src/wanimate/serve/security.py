"""Bearer tokens, per-client rate limits and a cap on request bodies.

The body cap works on the raw ASGI stream: the multipart parser spools uploads to disk
before a route sees them, so a per-file check alone would still let a client fill the
disk. Requests announcing too much are refused before a byte is read; chunked ones are
cut off as soon as they cross the line.
"""

from __future__ import annotations

import secrets
import threading
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_CLIENTS = 10_000


def token_matches(header: str | None, token: str) -> bool:
    """Constant-time check of an ``Authorization: Bearer ...`` header."""
    if not header or not header.startswith("Bearer "):
        return False
    return secrets.compare_digest(header[7:].strip().encode(), token.encode())


class RateLimiter:
    """A token bucket per client: ``burst`` requests at once, refilled at ``per_s``; 0 disables it."""

    def __init__(self, per_s: float, burst: int) -> None:
        self.per_s = per_s
        self.burst = burst
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, client: str) -> float:
        """0 when the request may go ahead (and is counted), else seconds until it may."""
        if self.per_s <= 0:
            return 0.0
        now = time.monotonic()
        with self._lock:
            tokens, stamp = self._buckets.get(client, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - stamp) * self.per_s)
            if tokens < 1.0:
                self._buckets[client] = (tokens, now)
                return (1.0 - tokens) / self.per_s
            self._buckets[client] = (tokens - 1.0, now)
            if len(self._buckets) > MAX_CLIENTS:
                self._forget_idle(now)
        return 0.0

    def _forget_idle(self, now: float) -> None:
        full_after = self.burst / self.per_s
        for key in [k for k, (_, stamp) in self._buckets.items() if now - stamp > full_after]:
            del self._buckets[key]


class _TooLarge(Exception):
    pass


class BodyLimit:
    """ASGI middleware: request bodies over ``limit`` bytes get 413 with a JSON message."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(send)
            return
        seen = 0
        refused = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge
            return message

        async def guarded_send(message: Message) -> None:
            # Frameworks may turn the aborted read into their own 4xx/5xx: answer 413 instead.
            nonlocal refused
            if seen <= self.limit:
                await send(message)
            elif not refused and message["type"] == "http.response.start":
                refused = True
                await self._refuse(send)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except _TooLarge:
            if not refused:
                refused = True
                await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body = (
            b'{"detail": "the request body is larger than this server accepts (limit '
            + str(self.limit // 1024).encode()
            + b' KiB)"}'
        )
        start: dict[str, Any] = {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
        await send(start)
        await send({"type": "http.response.body", "body": body})
