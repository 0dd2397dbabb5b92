"""End to end: SIGTERM lets in-flight requests finish, refuses new ones, and exits 0.

The in-flight request is a large Arrow extract read by a client that takes its time (a small
receive buffer and pauses), so the server is still writing the body when the signal arrives.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from pathlib import Path

import httpx
import numpy as np
import polars as pl
import pytest

from tests.e2e.conftest import base_env, cli, serve

TABLE = "bench_extract"
PATH = f"/v1/tables/{TABLE}/rows?format=arrow&limit=250000"


def _big_release(root: Path) -> Path:
    """One table of 200,000 rows (an Arrow body of several MB, more than socket buffers hold)."""
    rng = np.random.default_rng(7)
    munis = [f"31{i:05d}" for i in range(1000)]
    subclasses = [f"47{i:05d}" for i in range(20)]
    months = [f"2025-{m:02d}" for m in range(1, 11)]
    frame = (
        pl.DataFrame({"municipality": munis})
        .join(pl.DataFrame({"cnae_subclass": subclasses}), how="cross")
        .join(pl.DataFrame({"month": months}), how="cross")
    )
    frame = frame.with_columns(
        item_value=pl.Series(np.round(rng.lognormal(10, 2, frame.height), 2)),
        invoice_count=pl.Series(rng.integers(1, 5000, frame.height)),
        flag=pl.lit(""),
    )
    release = root / "releases" / "20250101T000000Z-shutdown1"
    (release / "tables").mkdir(parents=True)
    frame.write_parquet(release / "tables" / f"{TABLE}.parquet")
    manifest = {
        "format": 1,
        "version": release.name,
        "tables": [
            {
                "id": TABLE,
                "title": "Shutdown extract",
                "file": f"tables/{TABLE}.parquet",
                "hierarchies": [
                    {"name": "geography", "levels": ["municipality"]},
                    {"name": "activity", "levels": ["cnae_subclass"]},
                    {"name": "time", "levels": ["month"]},
                ],
                "measures": ["item_value", "invoice_count"],
                "rows": frame.height,
            }
        ],
    }
    (release / "manifest.json").write_text(json.dumps(manifest))
    return release


def _refused(port: int) -> bool:
    """Whether a new connection is refused outright (the listener is closed)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return False
    except ConnectionRefusedError:
        return True


def _read_response(sock: socket.socket, first: bytes) -> tuple[int, bytes]:
    """Read slowly to the end: status and body (the body has a Content-Length)."""
    data = bytearray(first)
    while b"\r\n\r\n" not in data:
        data += sock.recv(4096)
    head, _, body = bytes(data).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = next(
        int(v) for k, _, v in (x.partition(":") for x in lines[1:]) if k.lower() == "content-length"
    )
    rest = bytearray(body)
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return status, bytes(rest)


@pytest.mark.xdist_group("e2e-server")  # one running server at a time on two cores
def test_sigterm_finishes_in_flight_extract_refuses_new_and_exits_0(
    tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    env = {
        **base_env(tmp_path, redis_url),
        "DATAFLOW_REDIS_PREFIX": redis_prefix,
        "DATAFLOW_API_CACHE_MB": "0",  # every request computes its body
    }
    release = _big_release(tmp_path)
    partner = cli(env, "partner", "create", "Shutdown Ltda", "--plan", "continuous").stdout
    key = cli(env, "key", "create", partner.strip().splitlines()[-1]).stdout.strip()
    key = key.splitlines()[-1]
    with serve(env, release, workers=2) as (base, pid):
        port = int(base.rsplit(":", 1)[1])
        expected = httpx.get(
            base + PATH, headers={"Authorization": f"Bearer {key}"}, timeout=60
        ).content
        assert len(expected) > 8 << 20  # more than the kernel buffers between us and the server

        slow = socket.socket()
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.settimeout(60)
        slow.connect(("127.0.0.1", port))
        slow.sendall(
            f"GET {PATH} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {key}\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        first = slow.recv(4096)
        assert first.startswith(b"HTTP/1.1 200"), first[:200]

        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while not _refused(port):
            assert time.monotonic() < deadline, "still serving new connections after SIGTERM"
            time.sleep(0.2)

        status, body = _read_response(slow, first)
        slow.close()
        assert status == 200
        assert len(body) == len(expected) and body == expected

        waited, code = os.waitpid(pid, 0)  # the main process is our child (serve() started it)
        assert waited == pid and os.waitstatus_to_exitcode(code) == 0
