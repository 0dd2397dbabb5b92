"""The meter alone: accesses/s in one process, coalesced (grant-n-of-m pipelines) vs one
awaited round trip per access, against the real Redis, in the same run."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from datetime import UTC, datetime

import redis

from benchmarks.common import write_result
from dataflow.metering.models import Access, billing_month
from dataflow.metering.redis_meter import RedisMeter

CLIENTS = 64  # concurrent requests in flight in the process (like 64 connections)
PARTNERS = 4


async def _run(url: str, prefix: str, *, batching: bool, seconds: float) -> dict[str, float]:
    meter = RedisMeter.from_url(url, prefix=prefix, batching=batching)
    now = datetime.now(UTC)
    month = billing_month(now)
    done = 0
    stop = time.perf_counter() + seconds

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
            grant = await meter.acquire(access)
            assert grant.allowed
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(CLIENTS)))
    took = time.perf_counter() - started
    counted = sum((await meter.counts(month)).values())
    await meter.aclose()
    assert counted == done, (counted, done)  # every grant was counted exactly once
    return {"accesses": done, "seconds": round(took, 2), "accesses_per_s": round(done / took)}


def main() -> None:
    url = os.environ.get("DATAFLOW_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    seconds = float(os.environ.get("BENCH_SECONDS", "5"))
    rounds = int(os.environ.get("BENCH_ROUNDS", "2"))
    runs: dict[str, list[dict[str, float]]] = {"one_round_trip_per_access": [], "coalesced": []}
    client = redis.Redis.from_url(url)
    for _ in range(rounds):  # alternate, so load from elsewhere falls on both sides
        for name, batching in (("one_round_trip_per_access", False), ("coalesced", True)):
            prefix = f"dfbench-{uuid.uuid4().hex[:8]}"
            runs[name].append(asyncio.run(_run(url, prefix, batching=batching, seconds=seconds)))
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
            "load_average_1min": round(os.getloadavg()[0], 2),
        },
    )


if __name__ == "__main__":
    main()
