"""Parts of ``bench_scale`` that run Spark: the release build and the ingestion on both engines."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tests.proctree import run_measured

GB = 1 << 30
SPARK_ARGS = (
    "--driver-memory 3g --conf spark.sql.shuffle.partitions=8 "
    "--conf spark.ui.enabled=false pyspark-shell"
)


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _dataflow(*args: str) -> list[str]:
    return [sys.executable, "-m", "dataflow", *args]


def _same(a: pa.Table, b: pa.Table) -> bool:
    if a.column_names != b.column_names:
        return False
    for name in a.column_names:
        x, y = a[name], b[name]
        if pa.types.is_floating(x.type):
            if not np.array_equal(x.to_numpy(), y.to_numpy(), equal_nan=True):
                return False
        elif not x.equals(y):
            return False
    return True


def _run(args: list[str], env: dict[str, str] | None = None) -> tuple[dict[str, object], str]:
    load = _load()
    m = run_measured(args, env=env)
    if m.returncode != 0:
        raise RuntimeError(m.stderr[-3000:])
    return {
        "seconds": round(m.seconds, 1),
        "peak_rss_gb": round(m.peak_rss / GB, 2),
        "load_before": load,
        "load_after": _load(),
    }, m.stdout


def engines(work: Path) -> dict[str, object]:
    items = int(os.environ.get("BENCH_SCALE_ENGINE_ITEMS", "10000000"))
    store = work / f"engine-store-{items}"
    if not (store / "facts").exists():
        _run(_dataflow("data", "generate", "--items", str(items), "--seed", "1", "--months",
                       "2026-03", "--out", str(store)))  # fmt: skip
    out: dict[str, object] = {"items": items}
    paths: dict[str, Path] = {}
    for engine in ("duckdb", "spark"):
        releases = work / f"engine-releases-{engine}"
        shutil.rmtree(releases, ignore_errors=True)
        args = ["release", "build", "--store", str(store), "--out", str(releases)]
        env = None
        if engine == "spark":
            args += ["--engine", "spark", "--master", "local[2]"]
            env = {**os.environ, "PYSPARK_SUBMIT_ARGS": SPARK_ARGS}
        else:
            args += ["--memory-limit", "4"]
        figures, stdout = _run(_dataflow(*args), env)
        summary = json.loads(stdout)
        figures["stages_s"] = summary["seconds"]
        out[engine] = figures
        paths[engine] = Path(summary["path"])
        print(json.dumps({engine: figures}), file=sys.stderr)
    identical = {}
    for sub in ("tables", "internal", "internal/contributions"):
        for f in sorted((paths["duckdb"] / sub).glob("*.parquet")):
            a, b = pq.read_table(f), pq.read_table(paths["spark"] / sub / f.name)
            identical[f"{sub}/{f.name}"] = _same(a, b)
    out["identical"] = identical
    out["all_identical"] = all(identical.values())
    d, s = out["duckdb"], out["spark"]
    assert isinstance(d, dict) and isinstance(s, dict)
    out["spark_over_duckdb_wall"] = round(s["seconds"] / d["seconds"], 2)
    cubes = ("contributions", "cubes")
    out["spark_over_duckdb_cubes"] = round(
        sum(s["stages_s"][k] for k in cubes) / sum(d["stages_s"][k] for k in cubes), 2
    )
    return out


def _listing(store: Path) -> list[object]:
    """Facts and invoices (sorted rows) and the quarantine records (names and contents)."""
    out: list[object] = []
    for kind in ("facts", "invoices"):
        files = sorted((store / kind).glob("*/*/*.parquet"))
        table = pa.concat_tables(pq.read_table(f, partitioning=None) for f in files)
        out.append(table.sort_by([(c, "ascending") for c in table.column_names]))
    out.append(sorted((p.name, p.read_bytes()) for p in (store / "quarantine").glob("*")))
    return out


def _identical(a: list[object], b: list[object]) -> bool:
    tables = all(x.equals(y) for x, y in zip(a[:2], b[:2], strict=True))  # type: ignore[attr-defined]
    return tables and a[2] == b[2]


def ingestion(work: Path) -> dict[str, object]:
    documents = int(os.environ.get("BENCH_SCALE_DOCUMENTS", "100000"))
    xml = work / f"xml-{documents}"
    if not xml.exists():
        _run(_dataflow("data", "generate-xml", "--invoices", str(documents), "--seed", "1",
                       "--out", str(xml), "--cancel-share", "0.02"))  # fmt: skip
        # two broken documents beside the generated ones: quarantined by both engines
        first = sorted(xml.rglob("*.xml"))[:2]
        (xml / "broken-truncated.xml").write_bytes(first[0].read_bytes()[:500])
        (xml / "broken-not-xml.xml").write_bytes(b"not xml at all")
    out: dict[str, object] = {"documents": documents}
    stores = {}
    for engine in ("local", "spark"):
        store = work / f"ingest-store-{engine}"
        shutil.rmtree(store, ignore_errors=True)
        args = ["data", "ingest", str(xml), "--store", str(store)]
        env = None
        if engine == "spark":
            args += ["--engine", "spark", "--master", "local[2]"]
            env = {**os.environ, "PYSPARK_SUBMIT_ARGS": SPARK_ARGS}
        else:
            args += ["--workers", "2"]
        started = time.perf_counter()
        figures, stdout = _run(_dataflow(*args), env)
        summary = json.loads(stdout)
        figures["files_per_s"] = round(summary["files"] / (time.perf_counter() - started), 1)
        figures["summary"] = {
            k: summary[k] for k in ("files", "loaded", "cancelled", "quarantined", "items")
        }
        out[engine] = figures
        stores[engine] = store
        print(json.dumps({engine: figures}), file=sys.stderr)
    out["identical_store_and_quarantine"] = _identical(
        _listing(stores["local"]), _listing(stores["spark"])
    )
    loc, spk = out["local"], out["spark"]
    assert isinstance(loc, dict) and isinstance(spk, dict)
    out["spark_over_local_wall"] = round(spk["seconds"] / loc["seconds"], 2)
    return out
