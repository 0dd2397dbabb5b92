"""Apache Spark for the steps that outgrow one machine: the session, and an executor for ingestion.

``spark_session`` starts (or joins) a session: a given master, else what ``spark-submit`` set, else
``local[*]``. ``SparkExecutor`` runs the ingestion's worker step — ``ingest_worker.parse_files``
over a run of files — as one Spark job per batch of runs (``mapPartitions`` over the file
listing, one partition per run) instead of the local process pool; the driver keeps what it did
with the pool: duplicates, cancellations, the journal and the commit, so the fact store, the
quarantine and crash safety are the same whoever parsed the files. On a cluster the executors need
dataflow installed and the XML files and the store's quarantine directory on a shared filesystem.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

__all__ = ["SparkExecutor", "java_version", "spark_session"]


def java_version() -> str | None:
    """The first line of ``java -version``, or None when no Java runtime is found."""
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if java is None or not Path(java).exists():
        return None
    out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    lines = (out.stderr or out.stdout).strip().splitlines()
    return lines[0] if out.returncode == 0 and lines else None


def spark_session(master: str | None = None, *, conf: dict[str, str] | None = None) -> Any:
    """The active ``SparkSession``, or a new one: ``master`` if given, else what ``spark-submit``
    set, else ``local[*]``. Timestamps are read as instants (session time zone UTC); Python
    workers run this interpreter unless ``PYSPARK_PYTHON`` says otherwise."""
    if java_version() is None:
        raise RuntimeError(
            "Spark needs a Java 17 runtime (e.g. apt-get install openjdk-17-jre-headless): "
            "no `java` on PATH or under JAVA_HOME"
        )
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark import SparkConf
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName("dataflow")
    if master:
        builder = builder.master(master)
    elif not SparkConf().contains("spark.master"):
        builder = builder.master("local[*]")
    builder = builder.config("spark.ui.enabled", "false")
    builder = builder.config("spark.ui.showConsoleProgress", "false")
    for key, value in (conf or {}).items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.conf.set("spark.sql.session.timeZone", "UTC")
    return session


def _apply(
    fn: Callable[..., object], calls: Iterable[tuple[int, tuple[object, ...]]]
) -> Iterator[tuple[int, object]]:
    for index, args in calls:
        yield index, fn(*args)


class SparkExecutor(Executor):
    """``map`` as Spark jobs: every call one partition, results in call order. Each ``map``
    starts its job at once in a driver thread, so the caller can go on (the ingestion commits
    one batch while Spark parses the next)."""

    def __init__(self, spark: Any) -> None:
        self._sc = spark.sparkContext
        self._driver = ThreadPoolExecutor(1, thread_name_prefix="spark-job")

    def _job(self, fn: Callable[..., object], calls: list[tuple[object, ...]]) -> list[object]:
        if not calls:
            return []
        rdd = self._sc.parallelize(list(enumerate(calls)), len(calls))
        done = dict(rdd.mapPartitions(partial(_apply, fn)).collect())
        return [done[i] for i in range(len(calls))]

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        call = partial(fn, **kwargs) if kwargs else fn
        return self._driver.submit(lambda: self._job(call, [args])[0])

    def map(
        self,
        fn: Callable[..., Any],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int = 1,
        buffersize: int | None = None,
    ) -> Iterator[Any]:
        job = self._driver.submit(self._job, fn, list(zip(*iterables, strict=True)))

        def results() -> Iterator[Any]:
            yield from job.result(timeout)

        return results()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._driver.shutdown(wait=wait, cancel_futures=cancel_futures)
