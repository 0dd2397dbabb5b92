"""XML ingestion into the fact store: parallel over files, idempotent by access key, crash-safe.

Files are processed in sorted path order, in batches. Worker processes (``ingest_worker``) parse
and check documents (the bulk fast path ``nfe.batch``, the reference ``nfe.reader`` for the rest)
and quarantine the rejected ones; the parent resolves duplicates and cancellations in path order and
commits each batch:

1. new Parquet files land under ``facts/`` and ``invoices/`` as ``ingest-<content hash>.parquet``
   (written to a temporary name, fsynced, renamed);
2. a journal entry ``_ingest/journal/<seq>.json`` (same write discipline) names the files it adds
   and removes and the cancellations it records — the entry is the commit point;
3. files replaced by the entry (a later cancellation withdrawing an invoice) are deleted.

On start, the journal is replayed and any ``ingest-*`` file it does not list (left by a run killed
between steps 1 and 2) is deleted, so a run killed at any moment and run again ends in the state of
one clean run. Loaded keys are read back from the live files: the same key twice is a duplicate.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from types import ModuleType

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from dataflow.invoices.factstore import SORT_KEYS, FactStore
from dataflow.invoices.ingest_worker import TaskResult, parse_files

__all__ = ["IngestSummary", "discover", "ingest", "quarantine_dir", "start_pool"]

_PREFIX = "ingest-"
_TASK_FILES = 256  # files per worker task: amortizes inter-process traffic and per-task checks


def quarantine_dir(store: FactStore) -> Path:
    return store.root / "quarantine"


def _journal_dir(store: FactStore) -> Path:
    return store.root / "_ingest" / "journal"


@dataclass(slots=True)
class IngestSummary:
    files: int = 0
    loaded: int = 0
    duplicates: int = 0
    cancelled: int = 0
    cancellations_awaiting_invoice: int = 0
    quarantined: int = 0
    items: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    def as_json(self) -> dict[str, object]:
        return {
            "files": self.files,
            "loaded": self.loaded,
            "duplicates": self.duplicates,
            "cancelled": self.cancelled,
            "cancellations_awaiting_invoice": self.cancellations_awaiting_invoice,
            "quarantined": self.quarantined,
            "quarantine_reasons": dict(sorted(self.reasons.items())),
            "items": self.items,
        }


def _xml_files(folder: str, found: set[str]) -> None:
    # scandir reads entry types from the directory listing: no stat call per regular file.
    with os.scandir(folder) as entries:
        for e in entries:
            if e.is_dir(follow_symlinks=False):
                _xml_files(e.path, found)
            elif e.name[-4:].lower() == ".xml" and e.is_file():
                found.add(e.path)


def discover(paths: Iterable[Path]) -> list[Path]:
    """Every ``*.xml`` file under the given files and directories, sorted, without repeats."""
    return [Path(f) for f in _discover(paths)]


def _discover(paths: Iterable[Path]) -> list[str]:
    found: set[str] = set()
    for p in paths:
        if p.is_dir():
            _xml_files(str(p), found)
        else:
            found.add(str(p))
    return sorted(found)


# ---------------------------------------------------------------- store side


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


def _write_parquet(path: Path, table: pa.Table, keys: Iterable[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    ordered = table.sort_by([(k, "ascending") for k in (*keys, "access_key")])
    pq.write_table(ordered, tmp, compression="zstd", row_group_size=256_000)
    with tmp.open("rb+") as f:
        os.fsync(f.fileno())
    tmp.replace(path)


@dataclass(slots=True)
class _State:
    """The committed state: live batches, loaded keys and recorded cancellations."""

    store: FactStore
    batches: dict[str, tuple[int, int]] = field(default_factory=dict)  # id → (year, month)
    loaded: dict[str, str] = field(default_factory=dict)  # access key → batch id
    cancelled: set[str] = field(default_factory=set)  # keys with a registered cancellation
    withdrawn: set[str] = field(default_factory=set)  # cancelled keys whose invoice was seen
    seq: int = 0

    def path(self, kind: str, batch: str) -> Path:
        year, month = self.batches[batch]
        return self.store.partition(kind, year, month) / f"{_PREFIX}{batch}.parquet"

    @classmethod
    def recover(cls, store: FactStore) -> _State:
        state = cls(store)
        journal = _journal_dir(store)
        entries = sorted(journal.glob("[0-9]*.json")) if journal.exists() else []
        for entry in entries:
            e = json.loads(entry.read_text())
            for b in e["add"]:
                state.batches[b["id"]] = (b["year"], b["month"])
            for b in e["remove"]:
                del state.batches[b]
            state.cancelled.update(e["cancelled"])
            state.withdrawn.update(e["withdrawn"])
            state.seq = int(entry.stem)
        live = {state.path(k, b) for b in state.batches for k in ("facts", "invoices")}
        for kind in ("facts", "invoices"):
            base = store.root / kind
            if not base.exists():
                continue
            # Orphans of a killed run: uncommitted batch files and temporaries.
            for p in base.glob(f"*/*/{_PREFIX}*.parquet"):
                if p not in live:
                    p.unlink()
            for p in base.glob(f"*/*/.{_PREFIX}*.tmp"):
                p.unlink()
        # Temporaries of a killed journal or quarantine write: the renames never happened.
        for d in (journal, quarantine_dir(store)):
            if d.exists():
                for p in d.glob(".*.tmp"):
                    p.unlink()
        for batch, (year, month) in state.batches.items():
            inv = store.partition("invoices", year, month) / f"{_PREFIX}{batch}.parquet"
            keys = pq.read_table(inv, columns=["access_key"])["access_key"].to_pylist()
            for k in keys:
                state.loaded[k] = batch
        return state

    def commit(
        self,
        facts: pa.Table | None,
        invoices: pa.Table | None,
        withdraw: set[str],
        cancelled: set[str],
        withdrawn: set[str],
    ) -> None:
        """Write a batch's files, then its journal entry (the commit), then drop replaced files."""
        added: dict[str, tuple[int, int]] = {}
        new_keys: dict[str, str] = {}
        if invoices is not None and facts is not None and invoices.num_rows:
            months = sorted(
                set(zip(invoices["_year"].to_pylist(), invoices["_month"].to_pylist(), strict=True))
            )
            helpers = ["_doc", "_year", "_month"]
            for year, month in months:
                inv = invoices.filter(
                    pc.and_(pc.equal(invoices["_year"], year), pc.equal(invoices["_month"], month))
                ).drop_columns(helpers)
                fac = facts.filter(
                    pc.and_(pc.equal(facts["_year"], year), pc.equal(facts["_month"], month))
                ).drop_columns(helpers)
                keys = inv["access_key"].to_pylist()
                batch = _batch_id(keys)
                added[batch] = (year, month)
                self._write(batch, year, month, fac, inv)
                new_keys.update((k, batch) for k in keys)
        removed: list[str] = []
        for batch in sorted({self.loaded[k] for k in withdraw}):
            year, month = self.batches[batch]
            fac = pq.read_table(self.path("facts", batch), partitioning=None)
            inv = pq.read_table(self.path("invoices", batch), partitioning=None)
            gone = pa.array(sorted(withdraw))
            fac = fac.filter(pc.invert(pc.is_in(fac["access_key"], gone)))
            inv = inv.filter(pc.invert(pc.is_in(inv["access_key"], gone)))
            removed.append(batch)
            if inv.num_rows:
                keys = inv["access_key"].to_pylist()
                replacement = _batch_id(keys)
                added[replacement] = (year, month)
                self._write(replacement, year, month, fac, inv)
                new_keys.update((k, replacement) for k in keys)
        if not (added or removed or cancelled or withdrawn):
            return
        entry = {
            "add": [{"id": b, "year": y, "month": m} for b, (y, m) in sorted(added.items())],
            "remove": removed,
            "cancelled": sorted(cancelled),
            "withdrawn": sorted(withdrawn),
        }
        journal = _journal_dir(self.store)
        journal.mkdir(parents=True, exist_ok=True)
        self.seq += 1
        _atomic_write_bytes(journal / f"{self.seq:08d}.json", json.dumps(entry).encode())
        _fsync_dir(journal)
        old_paths = [self.path(k, b) for b in removed for k in ("facts", "invoices")]
        for b in removed:
            del self.batches[b]
        self.batches.update(added)
        for p in old_paths:
            p.unlink(missing_ok=True)
        for k in withdraw:
            self.loaded.pop(k, None)
        self.loaded.update(new_keys)
        self.cancelled |= cancelled
        self.withdrawn |= withdrawn

    def _write(self, batch: str, year: int, month: int, facts: pa.Table, inv: pa.Table) -> None:
        _write_parquet(
            self.store.partition("facts", year, month) / f"{_PREFIX}{batch}.parquet",
            facts,
            SORT_KEYS,
        )
        _write_parquet(
            self.store.partition("invoices", year, month) / f"{_PREFIX}{batch}.parquet",
            inv,
            ("issuer_cnpj", "issued_at"),
        )


def _keep(
    parsed: list[TaskResult], new: dict[str, tuple[int, int]]
) -> tuple[pa.Table | None, pa.Table | None]:
    """The rows of the invoices that this batch loads (first copy of each new key)."""
    keep: dict[int, list[int]] = {}
    for task_no, position in new.values():
        keep.setdefault(task_no, []).append(position)
    facts, invoices = [], []
    for task_no, positions in sorted(keep.items()):
        result = parsed[task_no]
        assert result.facts is not None and result.invoices is not None
        if len(positions) == result.invoices.num_rows:  # the usual case: every invoice is new
            facts.append(result.facts)
            invoices.append(result.invoices)
            continue
        wanted = pa.array(positions, pa.int32())
        facts.append(result.facts.filter(pc.is_in(result.facts["_doc"], wanted)))
        invoices.append(result.invoices.filter(pc.is_in(result.invoices["_doc"], wanted)))
    if not invoices:
        return None, None
    return pa.concat_tables(facts), pa.concat_tables(invoices)


def _batch_id(keys: Iterable[str]) -> str:
    # One update of the concatenation: the same digest as one update per key, in a single call.
    return hashlib.sha256("".join(sorted(keys)).encode()).hexdigest()[:20]


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def ingest(
    paths: Iterable[Path],
    store: FactStore,
    *,
    workers: int = 1,
    strict: bool = False,
    batch_files: int = 4_096,
    progress: Callable[[int, int], None] | None = None,
    executor: Executor | None = None,
) -> IngestSummary:
    """Load every XML file under ``paths`` into ``store``; see the module docstring.

    ``executor`` runs the worker tasks in a pool the caller owns (and keeps warm across calls);
    otherwise ``workers`` > 1 starts a pool for this run.
    """
    pool = executor
    own_pool = None
    if pool is None and workers > 1:
        own_pool = pool = start_pool(workers)
    try:
        return _ingest(paths, store, pool, strict, batch_files, progress)
    finally:
        if own_pool is not None:
            own_pool.shutdown(cancel_futures=True)


def start_pool(workers: int) -> ProcessPoolExecutor:
    """Worker processes for ``ingest``, already starting when this returns.

    forkserver: no fork of a parent that runs threads (the progress display, Arrow's pools); the
    server imports the worker module once, so each worker starts warm. The processes boot while
    the caller goes on (finding files, replaying the journal).
    """
    context = get_context("forkserver")
    context.set_forkserver_preload([parse_files.__module__])
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context)
    with _main_script_hidden():
        for _ in range(workers):
            pool.submit(int)  # spawns a process each (all of them now); nobody waits for them
    return pool


@contextmanager
def _main_script_hidden() -> Iterator[None]:
    """Start processes without re-running the main script in each of them.

    multiprocessing re-executes a main *script* (``__main__`` with a file and no module spec: a
    console script such as ``dataflow``, or ``python x.py``) in every new process so that its
    functions can be unpickled there. The ingestion workers need none of it (``parse_files`` lives
    in a module), and for the ``dataflow`` script it meant importing the whole CLI again in each
    worker: 6 s of a 300-file ingest here. Modules run with ``-m`` are never re-run.
    """
    main = sys.modules["__main__"]
    if getattr(main, "__spec__", None) is not None or not getattr(main, "__file__", None):
        yield
        return
    sys.modules["__main__"] = ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main


def _ingest(
    paths: Iterable[Path],
    store: FactStore,
    pool: Executor | None,
    strict: bool,
    batch_files: int,
    progress: Callable[[int, int], None] | None,
) -> IngestSummary:
    files = _discover(paths)
    summary = IngestSummary(files=len(files))
    state = _State.recover(store)
    qdir = str(quarantine_dir(store))
    done = 0
    added: dict[str, int] = {}  # keys this run loaded → item count

    def submit(batch: list[str]) -> Iterable[TaskResult]:
        tasks = list(_chunks(batch, _TASK_FILES))
        if pool is None:
            return (parse_files(t, strict, qdir) for t in tasks)
        return pool.map(parse_files, tasks, [strict] * len(tasks), [qdir] * len(tasks))

    batches = list(_chunks(files, batch_files))
    pending = submit(batches[0]) if batches else ()
    for number in range(len(batches)):
        results = pending
        # The next batch is queued before this one is committed: the workers parse it while this
        # process dedups and writes (one batch ahead, so memory stays bounded).
        if number + 1 < len(batches):
            pending = submit(batches[number + 1])
        new: dict[str, tuple[int, int]] = {}  # key → (task, file position in task)
        withdraw: set[str] = set()
        cancelled: set[str] = set()
        withdrawn: set[str] = set()
        parsed: list[TaskResult] = []
        for task_no, result in enumerate(results):
            parsed.append(result)
            for position, (kind, ref) in enumerate(result.order):
                if kind == "r":
                    continue
                if kind == "i":
                    key = ref
                    if (
                        key in state.loaded
                        or key in new
                        or key in state.withdrawn
                        or key in withdrawn
                    ):
                        summary.duplicates += 1
                    elif key in state.cancelled or key in cancelled:
                        withdrawn.add(key)  # its cancellation came first
                        summary.cancelled += 1
                    else:
                        new[key] = (task_no, position)
                    continue
                key = ref  # a cancellation
                if key in state.cancelled or key in cancelled:
                    summary.duplicates += 1
                    continue
                cancelled.add(key)
                if key in new:
                    del new[key]
                    withdrawn.add(key)
                    summary.cancelled += 1
                elif key in state.loaded:
                    withdraw.add(key)
                    withdrawn.add(key)
                    summary.cancelled += 1
            for _path, reason in result.rejected:
                summary.quarantined += 1
                summary.reasons[reason] = summary.reasons.get(reason, 0) + 1
            done += len(result.order)
            if progress:
                progress(done, len(files))
        facts, invoices = _keep(parsed, new)
        state.commit(facts, invoices, withdraw, cancelled, withdrawn)
        if facts is not None and invoices is not None:
            counts = pc.value_counts(facts["access_key"])
            added.update(
                zip(
                    counts.field("values").to_pylist(),
                    counts.field("counts").to_pylist(),
                    strict=True,
                )
            )
    # Loaded = added by this run and still there (a later cancellation may have withdrawn some).
    kept = [n for k, n in added.items() if k in state.loaded]
    summary.loaded, summary.items = len(kept), sum(kept)
    summary.cancellations_awaiting_invoice = len(state.cancelled - state.withdrawn)
    return summary
