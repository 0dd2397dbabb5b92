"""Synthetic generation at scale: 20 M items through `dataflow data generate`, time and peak memory.

Baseline, in the same run: writing the same number of rows of random data with the fact schema
straight from numpy with pyarrow (zstd Parquet, 1 M-row files, one process) — the cost of the
bytes alone. Also the growth from 10⁶ to 10⁷ items (near linear). Memory is the peak resident
set: summed over the generator's process tree (sampled every 0.1 s) and, from the kernel's
accounting, the largest single process (getrusage of the reaped children).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchmarks.common import write_result

ITEMS = 20_000_000
MONTHS = "2026-01:2026-03"
GROWTH = (1_000_000, 10_000_000)
OVERHEAD = 10_000  # start-up (imports, catalog, issuers): subtracted to see the per-item growth

_BASELINE = """
import sys, time
import numpy as np, pyarrow as pa, pyarrow.parquet as pq
from pathlib import Path
from dataflow.invoices.schema import FACT_SCHEMA, MONEY, TZ
rows, out = int(sys.argv[1]), Path(sys.argv[2])
rng = np.random.default_rng(0)
def text(n, width):
    chars = rng.integers(48, 58, (n, width), dtype=np.uint8)
    offsets = np.arange(n + 1, dtype=np.int32) * width
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(chars))
def money(n):
    words = np.zeros((n, 2), dtype=np.int64); words[:, 0] = rng.integers(1, 10**7, n)
    return pa.Array.from_buffers(MONEY, n, [None, pa.py_buffer(words)])
widths = {"access_key": 44, "issuer_cnpj": 14, "issuer_root": 8, "issuer_cnae": 7,
          "issuer_uf": 2, "issuer_municipality": 7, "recipient_uf": 2, "cfop": 4, "ncm": 8,
          "unit": 2}
started = time.perf_counter()
done, part = 0, 0
while done < rows:
    n = min(1_000_000, rows - done)
    cols = []
    for field in FACT_SCHEMA:
        if field.name in widths:
            cols.append(text(n, widths[field.name]))
        elif field.name == "model":
            cols.append(pa.array(rng.choice([55, 65], n).astype(np.int16)))
        elif field.name == "issued_at":
            cols.append(pa.array(rng.integers(1.7e15, 1.8e15, n)).cast(pa.timestamp("us", tz=TZ)))
        elif field.name == "quantity":
            cols.append(pa.array(rng.random(n) * 100))
        else:
            cols.append(money(n))
    pq.write_table(pa.Table.from_arrays(cols, schema=FACT_SCHEMA), out / f"part-{part:05d}.parquet",
                   compression="zstd", row_group_size=256_000)
    done += n; part += 1
print(time.perf_counter() - started)
"""


def _tree_rss(root: int) -> int:
    """Resident bytes of ``root`` and all its descendants (Linux /proc)."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            parents[int(entry.name)] = int(fields[1])
            rss[int(entry.name)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            continue
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(p for p, parent in parents.items() if parent == pid)
    return total


def _measure(args: list[str], env: dict[str, str]) -> dict[str, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    peak = [0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _tree_rss(proc.pid))
            stop.wait(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = proc.communicate()
    wall = time.perf_counter() - started
    stop.set()
    sampler.join()
    if proc.returncode != 0:
        raise RuntimeError(f"{args} failed with {proc.returncode}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    text = out.decode()
    report = json.loads(text[text.index("{") :]) if "{" in text else {}
    return {
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "inner_s": float(report.get("seconds", text.strip() or 0) or 0),
        "peak_tree_rss_mb": round(peak[0] / 2**20),
        # getrusage keeps the maximum over every reaped child so far: a running maximum.
        "max_single_process_rss_mb_so_far": round(after.ru_maxrss / 1024),
    }


def _generate(items: int, out: Path, env: dict[str, str]) -> dict[str, float]:
    return _measure(
        [sys.executable, "-m", "dataflow", "data", "generate", "--items", str(items),
         "--seed", "1", "--months", MONTHS, "--out", str(out)],
        env,
    )  # fmt: skip


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "DATAFLOW_DATA_DIR": tmp}
        base_dir = Path(tmp) / "baseline"
        base_dir.mkdir()
        baseline = _measure([sys.executable, "-c", _BASELINE, str(ITEMS), str(base_dir)], env)
        baseline["inner_s"] = float(baseline["inner_s"])
        big = _generate(ITEMS, Path(tmp) / "big", env)
        size_mb = sum(p.stat().st_size for p in (Path(tmp) / "big").rglob("*.parquet")) / 2**20
        growth = {n: _generate(n, Path(tmp) / f"g{n}", env) for n in (OVERHEAD, *GROWTH)}
    small, large = (growth[n]["inner_s"] for n in GROWTH)
    fixed = growth[OVERHEAD]["cpu_s"]
    cpu_small, cpu_large = (growth[n]["cpu_s"] - fixed for n in GROWTH)
    write_result(
        "generate",
        {
            "what": f"dataflow data generate --items {ITEMS:,} --months {MONTHS} (2 workers) vs "
            "pyarrow writing as many random rows of the fact schema (1 process)",
            "items": ITEMS,
            "generate": big,
            "store_mb": round(size_mb),
            "baseline_random_pyarrow": baseline,
            "ratio_wall_generate_over_baseline": round(big["wall_s"] / baseline["wall_s"], 2),
            "ratio_inner_generate_over_baseline": round(big["inner_s"] / baseline["inner_s"], 2),
            "growth": {str(n): growth[n] for n in (OVERHEAD, *GROWTH)},
            "growth_wall_ratio_10x_items": round(large / small, 2),
            # CPU beyond the start-up of a 10⁴-item run: 10.0 would be exactly linear.
            "growth_marginal_cpu_ratio_10x_items": round(cpu_large / cpu_small, 2),
            "items_per_s": round(ITEMS / big["inner_s"]),
            "note": "shared 2-core machine (other jobs running): absolute times are noisy",
        },
    )


if __name__ == "__main__":
    main()
