"""The meter's hot-path connections against a redis-server of the test's own: replies stay in
step through error replies, timeouts and a stalled or restarted server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError

from dataflow.metering.wire import Wire
from tests.own_redis import OwnRedis, own_redis

__all__ = ["own_redis"]

pytestmark = pytest.mark.redis


@pytest.fixture
async def wire(own_redis: OwnRedis) -> AsyncIterator[Wire]:
    w = Wire(own_redis.url, connect_timeout=0.5)
    yield w
    await w.aclose()


async def test_replies_come_in_order_with_error_replies_as_values(wire: Wire) -> None:
    replies = await wire.round_trip(
        [("ECHO", "a"), ("EVALSHA", "0" * 40, 0), ("INCRBY", "n", 3), ("ECHO", "b")]
    )
    assert replies[0] == b"a"
    assert isinstance(replies[1], NoScriptError)
    assert replies[2:] == [3, b"b"]
    assert await wire.round_trip([("GET", "n")]) == [b"3"]


async def test_a_round_trip_cut_short_never_hands_its_late_reply_to_the_next(
    own_redis: OwnRedis, wire: Wire
) -> None:
    await wire.round_trip([("PING",)])  # connected: the stalled send below reaches Redis
    own_redis.pause()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.3):
            await wire.round_trip([("ECHO", "late")])
    own_redis.resume()
    # Redis now answers "late" on the abandoned socket; this round trip must not read it.
    assert await wire.round_trip([("ECHO", "fresh")]) == [b"fresh"]
    assert await wire.round_trip([("ECHO", "x"), ("ECHO", "y")]) == [b"x", b"y"]


async def test_reconnects_by_itself_after_a_restart(own_redis: OwnRedis, wire: Wire) -> None:
    assert await wire.round_trip([("PING",)]) == [b"PONG"]
    own_redis.kill()
    with pytest.raises((RedisConnectionError, OSError)):
        await wire.round_trip([("PING",)])
    own_redis.start()
    assert await wire.round_trip([("PING",)]) == [b"PONG"]


async def test_a_connection_the_server_closed_while_idle_is_replaced_before_use(
    own_redis: OwnRedis, wire: Wire
) -> None:
    assert await wire.round_trip([("PING",)]) == [b"PONG"]
    own_redis.client().client_kill_filter(_type="normal", skipme=True)
    await asyncio.sleep(1.2)  # idle long enough to be checked before use
    assert await wire.round_trip([("INCR", "n")]) == [1]  # sent once, on a new connection
    assert own_redis.client().get("n") == b"1"
