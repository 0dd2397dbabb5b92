"""The Redis meter's hot path: one write and its replies on a connection of its own.

redis-py's ``Pipeline`` costs more Python per round trip than the script it carries: a pool
checkout (a condition, a timeout context, a probe of the socket for unread data), a
``wait_for`` task per send when socket timeouts are set, retry and observability wrappers.
Under load that was about a tenth of an API worker's samples (py-spy, rows benchmark) for
round trips that carry ~16 accesses each. Here a round trip is hiredis's RESP packing (C; redis-py's
own packs argument by argument in Python, a sixth of the meter's time with rate-limit keys), one
socket write, and one read per reply with redis-py's (hiredis) parser, on connections the meter
holds — one per round trip in flight, never shared while in use.

No socket timeout: the caller bounds the whole round trip (``asyncio.timeout``). A round trip
that does not finish — timed out, cancelled, the socket failed — closes its connection, so
replies still due on it (a stalled Redis answers late) can never be read as another round
trip's; the connection reconnects (AUTH, SELECT included) on its next use. One the server
closed while it sat idle is noticed before use and reconnected, not sent on.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import hiredis
import redis.asyncio as aioredis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

__all__ = ["Wire"]

_IDLE_CHECK_S = 1.0  # a connection idle longer than this is checked before use


class Wire:
    def __init__(self, url: str, *, connect_timeout: float) -> None:
        # The pool is only the factory: it parses the URL (host, port, db, credentials, TLS,
        # unix socket) into connections of the right class; the meter holds them itself.
        self._factory = aioredis.ConnectionPool.from_url(
            url, socket_timeout=None, socket_connect_timeout=connect_timeout
        )
        self._idle: list[tuple[AbstractConnection, float]] = []  # and when it was last used
        self._all: list[AbstractConnection] = []

    async def round_trip(self, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
        """Send ``commands`` in one write; their replies in order, error replies as values."""
        if self._idle:
            conn, since = self._idle.pop()
            # Closed by the server while idle (its `timeout`, CLIENT KILL, a proxy) or left
            # with bytes on it: the event loop has seen it by now; reconnect before sending
            # rather than turn the batch into 503s. Only after a pause: under load a
            # connection is never idle that long, and the check costs nothing there.
            if conn.is_connected and time.monotonic() - since > _IDLE_CHECK_S:
                try:
                    stale = await conn.can_read()
                except (RedisConnectionError, OSError):
                    stale = True
                if stale:
                    await conn.disconnect(nowait=True)
        else:
            conn = self._factory.make_connection()  # type: ignore[no-untyped-call]
            self._all.append(conn)
        try:
            packed = b"".join([hiredis.pack_command(c) for c in commands])
            await conn.send_packed_command(packed, check_health=False)
            replies: list[Any] = []
            for _ in commands:
                try:
                    replies.append(await conn.read_response())
                except ResponseError as e:  # a reply like any other: the stream stays in step
                    replies.append(e)
        except BaseException:
            await conn.disconnect(nowait=True)
            raise
        finally:
            self._idle.append((conn, time.monotonic()))
        return replies

    async def aclose(self) -> None:
        for conn in self._all:
            await conn.disconnect(nowait=True)
        self._idle.clear()
        self._all.clear()
