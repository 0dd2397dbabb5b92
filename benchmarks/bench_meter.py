"""The meter alone: accesses/s in one process, coalesced (grant-n-of-m round trips) vs one
awaited round trip per access, against the real Redis, in the same run.

Two one-trip baselines: the meter's own unbatched mode (the same connections and packing as the
coalesced meter, one script per access) and the same script awaited per access through
redis-py's client (``await redis.evalsha(...)``: what a plain implementation does)."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from datetime import UTC, datetime

import redis
import redis.asyncio as aioredis

from benchmarks.common import write_result
from dataflow.metering.models import Access, billing_month
from dataflow.metering.redis_meter import RedisMeter, _Pending
from dataflow.metering.scripts import ACQUIRE_MANY

CLIENTS = 64  # concurrent requests in flight in the process (like 64 connections)
PARTNERS = 4


async def _run(
    url: str, prefix: str, *, batching: bool, seconds: float, redis_py: bool = False
) -> dict[str, float]:
    meter = RedisMeter.from_url(url, prefix=prefix, batching=batching)
    plain = aioredis.Redis.from_url(url, max_connections=CLIENTS)
    sha = str(await plain.script_load(ACQUIRE_MANY))
    now = datetime.now(UTC)
    month = billing_month(now)
    done = 0
    stop = time.perf_counter() + seconds

    async def evalsha(access: Access) -> bool:
        """One access, one awaited EVALSHA through redis-py: the script and the arguments the
        meter itself would send for a batch of one."""
        at = time.time()
        pending = _Pending(access, asyncio.get_running_loop().create_future(), at, int(at * 1000))
        keys, args = meter._acquire_args(meter._group(access), [pending])
        reply = await plain.evalsha(sha, len(keys), *keys, *args)  # type: ignore[misc]
        return bytes(reply[2]) == b"1"

    async def client(i: int) -> None:
        nonlocal done
        access = Access(
            partner_id=1 + i % PARTNERS,
            key_id=f"k{i % 8}",
            month=month,
            day=now.date(),
            table="t",
            release="bench",
            cap=10**12,
            rate_per_second=10**9,
        )
        while time.perf_counter() < stop:
            if redis_py:
                assert await evalsha(access)
            else:
                assert (await meter.acquire(access)).allowed
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(CLIENTS)))
    took = time.perf_counter() - started
    counted = sum((await meter.counts(month)).values())
    await meter.aclose()
    await plain.aclose()
    assert counted == done, (counted, done)  # every grant was counted exactly once
    return {"accesses": done, "seconds": round(took, 2), "accesses_per_s": round(done / took)}


def main() -> None:
    url = os.environ.get("DATAFLOW_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    seconds = float(os.environ.get("BENCH_SECONDS", "5"))
    rounds = int(os.environ.get("BENCH_ROUNDS", "2"))
    modes = {  # name: (batching, through redis-py's client)
        "one_round_trip_per_access": (False, False),
        "one_evalsha_per_access_redis_py": (False, True),
        "coalesced": (True, False),
    }
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in modes}
    client = redis.Redis.from_url(url)
    for _ in range(rounds):  # alternate, so load from elsewhere falls on every side
        for name, (batching, redis_py) in modes.items():
            prefix = f"dfbench-{uuid.uuid4().hex[:8]}"
            runs[name].append(
                asyncio.run(
                    _run(url, prefix, batching=batching, seconds=seconds, redis_py=redis_py)
                )
            )
            stale = list(client.scan_iter(match=f"{prefix}:*"))
            if stale:
                client.delete(*stale)

    def total(name: str) -> float:
        return sum(r["accesses_per_s"] for r in runs[name])

    write_result(
        "meter",
        {
            "what": (
                f"meter alone, one process, {CLIENTS} concurrent requests, {PARTNERS} partners, "
                "cap + rate limits checked, access record written; real Redis on loopback; "
                f"{rounds} alternating rounds of {seconds:g} s"
            ),
            "runs": runs,
            "ratio_coalesced_over_one_trip": round(
                total("coalesced") / total("one_round_trip_per_access"), 2
            ),
            "ratio_coalesced_over_redis_py_one_trip": round(
                total("coalesced") / total("one_evalsha_per_access_redis_py"), 2
            ),
            "load_average_1min": round(os.getloadavg()[0], 2),
        },
    )


if __name__ == "__main__":
    main()
