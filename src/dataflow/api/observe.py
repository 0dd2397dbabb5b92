"""Request IDs, structured access logs without secrets, metrics, and limits on the request line.

One raw ASGI middleware (cheaper than one per concern): it assigns the request ID (a client's
``X-Request-ID`` is kept when it is sane), refuses over-long URIs (414) and request bodies (413:
announced by Content-Length before routing, or chunked, as they are read), then records status,
bytes and time in the access log and the metrics.

The access log never holds the ``Authorization`` header, nor anything shaped like a key or a
staff credential, wherever it was put (path, any query parameter: ``api/redaction.py``), nor the
value of a parameter named like a credential; the caller appears by partner id and key id (the
public half of a key).
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import time
from collections.abc import Callable
from typing import Any, cast

import msgspec
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from dataflow.api.errors import PROBLEM_JSON, problem_bytes
from dataflow.api.metrics import Metrics
from dataflow.api.redaction import redact

__all__ = [
    "CALLER_KEY",
    "MAX_BODY_BYTES",
    "MAX_PATH_BYTES",
    "MAX_QUERY_BYTES",
    "REQUEST_ID_HEADER",
    "observe",
    "scope_header",
]

REQUEST_ID_HEADER = "x-request-id"
CALLER_KEY = "dataflow.caller"  # scope entry handlers fill with (partner id, key id)
TABLE_KEY = "dataflow.table"
MAX_QUERY_BYTES = 4096
MAX_PATH_BYTES = 1024
MAX_BODY_BYTES = 1 << 20  # the partner API reads no bodies; admin bodies are small

_SANE_ID = re.compile(rb"[A-Za-z0-9._:\-]{1,64}")
_log = logging.getLogger("dataflow.access")
_encoder = msgspec.json.Encoder()


class _RequestIds:
    """32 hex characters, unique per request: a random per-process prefix and a counter.

    ``uuid4().hex`` cost ~6 µs a request (a system call for 16 random bytes, then a UUID object);
    a request id only has to be unique, not unpredictable. A forked worker draws its own prefix.
    """

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._prefix = os.urandom(10).hex()
        self._counter = itertools.count()

    def next(self) -> bytes:
        return f"{self._prefix}{next(self._counter):012x}".encode()


_request_ids = _RequestIds()


def scope_header(scope: Scope | dict[str, Any], name: bytes) -> bytes | None:
    """The first value of a request header (``name`` lower-case, as ASGI servers give names).

    Cheaper than Litestar's ``request.headers``, which builds a multidict of every header.
    """
    for k, v in cast(dict[str, Any], scope).get("headers", ()):
        if k == name:
            return bytes(v)
    return None


async def _refuse(
    send: Send, status: int, kind: str, title: str, detail: str, request_id: bytes, path: str
) -> None:
    body = problem_bytes(status, kind, title, detail, instance=path[:200])
    start: Any = {
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", PROBLEM_JSON.encode()),
            (b"content-length", str(len(body)).encode()),
            (REQUEST_ID_HEADER.encode(), request_id),
        ],
    }
    await send(start)
    end: Any = {"type": "http.response.body", "body": body}
    await send(end)


def _limited(receive: Receive) -> Receive:
    """``receive`` that refuses a body past ``MAX_BODY_BYTES`` as it arrives: a chunked body
    announces no length, so the Content-Length check alone would let it through. Whoever reads
    the body gets the 413 (Litestar maps it to the content-too-large problem)."""
    received = 0

    async def limited() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > MAX_BODY_BYTES:
                raise RequestEntityTooLarge(
                    detail=f"request bodies are limited to {MAX_BODY_BYTES} bytes"
                )
        return cast(Message, message)

    return cast(Receive, limited)


def observe(metrics: Metrics) -> Callable[[ASGIApp], ASGIApp]:
    """Wrap an ASGI app; ``create_app`` wraps the app's whole handler, routing included, so
    404s and 405s are observed and limited like every other answer."""

    def middleware(app: ASGIApp) -> ASGIApp:
        async def handle(asgi_scope: Scope, receive: Receive, send: Send) -> None:
            scope = cast(dict[str, Any], asgi_scope)
            if scope["type"] != "http":
                await app(asgi_scope, receive, send)
                return
            started = time.perf_counter()
            given = scope_header(scope, b"x-request-id")
            request_id = given if given and _SANE_ID.fullmatch(given) else _request_ids.next()
            # Some servers put the query in raw_path too (the ASGI spec says they should not).
            raw_path = (scope.get("raw_path") or scope["path"].encode()).partition(b"?")[0]
            query = scope.get("query_string", b"")
            path = scope["path"]
            state: dict[str, Any] = {"status": 500, "bytes": 0}

            async def send_wrapper(message: Message) -> None:
                if message["type"] == "http.response.start":
                    state["status"] = message["status"]
                    headers = list(message.get("headers", ()))
                    headers.append((REQUEST_ID_HEADER.encode(), request_id))
                    message = cast(Message, {**message, "headers": headers})
                elif message["type"] == "http.response.body":
                    state["bytes"] += len(message.get("body", b""))
                await send(message)

            length = scope_header(scope, b"content-length")
            try:
                if len(query) > MAX_QUERY_BYTES or len(raw_path) > MAX_PATH_BYTES:
                    await _refuse(
                        send_wrapper,
                        414,
                        "uri-too-long",
                        "URI too long",
                        f"path at most {MAX_PATH_BYTES} and query at most {MAX_QUERY_BYTES} "
                        "bytes; use prefixes (a*) or ranges (a..b) instead of long code lists",
                        request_id,
                        path,
                    )
                elif length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
                    await _refuse(
                        send_wrapper,
                        413,
                        "content-too-large",
                        "Content too large",
                        f"request bodies are limited to {MAX_BODY_BYTES} bytes",
                        request_id,
                        path,
                    )
                else:
                    await app(asgi_scope, _limited(receive), send_wrapper)
            finally:  # logged and measured even if something escaped the app's handlers
                _record(metrics, scope, state, request_id, path, query, started)

        return handle

    return middleware


def _record(
    metrics: Metrics,
    scope: dict[str, Any],
    state: dict[str, Any],
    request_id: bytes,
    path: str,
    query: bytes,
    started: float,
) -> None:
    """One metrics sample and one access-log line for a finished request."""
    elapsed = time.perf_counter() - started
    # "unmatched": 404s and 405s (the router found no route for the path or the method); the
    # label stays bounded whatever paths clients make up.
    route = scope.get("path_template") or "unmatched"
    status = state["status"]
    metrics.request_done(route, scope["method"], status, elapsed)
    if _log.isEnabledFor(logging.INFO):
        caller = scope.get(CALLER_KEY)
        record = {
            "request_id": request_id.decode(),
            "method": scope["method"],
            "path": redact(path[:MAX_PATH_BYTES]),
            "query": redact(query[:MAX_QUERY_BYTES].decode("latin-1")),
            "status": status,
            "bytes": state["bytes"],
            "ms": round(elapsed * 1000, 2),
            "partner": caller[0] if caller else None,
            "key_id": caller[1] if caller else None,
            "table": scope.get(TABLE_KEY),
        }
        # makeRecord + handle is what info() does, minus the caller's frame lookup.
        line = _encoder.encode(record).decode()
        _log.handle(_log.makeRecord(_log.name, logging.INFO, "", 0, line, (), None))
