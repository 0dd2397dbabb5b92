"""XML ingestion end to end: samples, broken files, sums, duplicates, cancellations, kill -9."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from lxml import etree
from typer.testing import CliRunner

from dataflow.cli import app
from dataflow.invoices.factstore import FactStore
from dataflow.invoices.ingest import IngestSummary, ingest, quarantine_dir
from dataflow.invoices.quarantine import iter_quarantine
from tests.invoices.nfe.test_reader import expected_outcome

NS = {"n": "http://www.portalfiscal.inf.br/nfe"}


def _table(store: FactStore, kind: str) -> pa.Table:
    files = sorted((store.root / kind).glob("*/*/*.parquet"))
    if not files:
        return pa.table({"access_key": pa.array([], pa.string())})
    table = pa.concat_tables(pq.read_table(f, partitioning=None) for f in files)
    return table.sort_by([(c, "ascending") for c in table.column_names if c != "quantity"])


def _state(store: FactStore) -> tuple[object, ...]:
    """Everything a run leaves behind: facts, invoices, quarantine entries."""
    quarantined = sorted(
        (e.sha256, e.reason, e.detail) for e in iter_quarantine(quarantine_dir(store))
    )
    return (_table(store, "facts").to_pylist(), _table(store, "invoices").to_pylist(), quarantined)


def _expected_from_xml(files: list[Path]) -> tuple[dict[str, Decimal], set[str]]:
    """Independent reading with plain lxml XPath: item sums of invoices, cancelled keys."""
    sums: dict[str, Decimal] = {}
    cancelled: set[str] = set()
    for path in files:
        tree = etree.parse(str(path))
        if tree.getroot().tag.endswith("procEventoNFe"):
            cancelled.add(str(tree.xpath("string(//n:evento//n:chNFe)", namespaces=NS)))
            continue
        key = str(tree.xpath("string(//n:protNFe//n:chNFe)", namespaces=NS))
        values = tree.xpath("//n:det/n:prod/n:vProd/text()", namespaces=NS)
        sums[key] = sum((Decimal(str(v)) for v in values), Decimal(0))
    return sums, cancelled


def test_nfelib_samples_each_loaded_or_quarantined_with_its_reason(
    tmp_path: Path, nfe_samples: Path
) -> None:
    store = FactStore(tmp_path / "store")
    summary = ingest([nfe_samples], store)
    files = sorted(nfe_samples.rglob("*.xml"))
    entries = {e.source: e for e in iter_quarantine(quarantine_dir(store))}
    loaded = set(_table(store, "invoices")["access_key"].to_pylist())
    for path in files:
        expected = expected_outcome(str(path.relative_to(nfe_samples)))
        if expected == "loaded":
            assert path.name.split("-")[0] in loaded, path
            assert str(path) not in entries
        else:
            # procNFe.xml repeats a quarantined document: same bytes → one entry for both.
            same = [e for e in entries.values() if e.document.read_bytes() == path.read_bytes()]
            assert same and same[0].reason == expected, path
    assert summary.loaded == len(loaded) == 10
    assert summary.quarantined == len(files) - 10
    facts = _table(store, "facts")
    assert set(facts["issuer_uf"].to_pylist()) == {"SP"}


def test_generated_corpus_with_broken_files_sums_match_the_xml(
    tmp_path: Path, corpus: Path, broken: Path
) -> None:
    store = FactStore(tmp_path / "store")
    summary = ingest([corpus / "valid", broken], store, workers=2, batch_files=120)
    valid = sorted((corpus / "valid").glob("*.xml"))
    sums, cancelled = _expected_from_xml(valid)
    expected = {k: v for k, v in sums.items() if k not in cancelled}
    facts = _table(store, "facts")
    got: dict[str, Decimal] = {}
    for key, value in zip(
        facts["access_key"].to_pylist(), facts["item_value"].to_pylist(), strict=True
    ):
        got[key] = got.get(key, Decimal(0)) + value
    assert got == expected
    invoices = _table(store, "invoices")
    assert sorted(invoices["access_key"].to_pylist()) == sorted(expected)
    assert summary.loaded == len(expected)
    assert summary.cancelled == len(cancelled)
    assert summary.quarantined == 10
    assert summary.reasons == {p.stem: 1 for p in broken.glob("*.xml")}
    reasons = {e.reason.value for e in iter_quarantine(quarantine_dir(store))}
    assert reasons == {p.stem for p in broken.glob("*.xml")}
    for entry in iter_quarantine(quarantine_dir(store)):
        assert entry.document.read_bytes() == Path(entry.source).read_bytes()
    # Issuers from other states are kept with their UF.
    assert "MG" in set(facts["issuer_uf"].to_pylist())
    assert len(set(facts["issuer_uf"].to_pylist())) > 1


def _split_corpus(corpus: Path, tmp_path: Path) -> tuple[Path, Path]:
    invoices, events = tmp_path / "invoices", tmp_path / "events"
    invoices.mkdir()
    events.mkdir()
    for p in (corpus / "valid").glob("*.xml"):
        shutil.copy(p, (events if "procEventoNFe" in p.name else invoices) / p.name)
    return invoices, events


def test_cancellation_withdraws_whether_it_comes_before_or_after(
    tmp_path: Path, corpus: Path
) -> None:
    invoices, events = _split_corpus(corpus, tmp_path)
    after, before, same = (FactStore(tmp_path / n) for n in ("after", "before", "same"))
    first = ingest([invoices], after)
    second = ingest([events], after)
    n_events = len(list(events.iterdir()))
    assert first.cancelled == 0 and second.cancelled == n_events
    early = ingest([events], before)
    assert early.cancellations_awaiting_invoice == n_events
    late = ingest([invoices], before)
    assert late.cancelled == n_events and late.cancellations_awaiting_invoice == 0
    ingest([invoices, events], same)
    assert _state(after)[:2] == _state(before)[:2] == _state(same)[:2]
    keys = set(_table(after, "invoices")["access_key"].to_pylist())
    assert not keys & {p.name[:44] for p in events.iterdir()}


def test_same_access_key_twice_is_a_duplicate(tmp_path: Path, corpus: Path) -> None:
    invoices, _ = _split_corpus(corpus, tmp_path)
    one = sorted(invoices.iterdir())[0]
    shutil.copy(one, invoices / "copy-of-first.xml")
    store = FactStore(tmp_path / "store")
    summary = ingest([invoices], store)
    assert summary.duplicates == 1
    assert summary.loaded == len(list(invoices.iterdir())) - 1
    again = ingest([invoices], store)
    assert again.loaded == 0 and again.duplicates == summary.loaded + 1
    keys = _table(store, "invoices")["access_key"].to_pylist()
    assert len(keys) == len(set(keys)) == summary.loaded


def test_batches_pipelined_through_a_pool_equal_one_serial_batch(
    tmp_path: Path, corpus: Path, broken: Path
) -> None:
    # Batches of 7 files: a cancellation and its invoice often fall in different batches, and
    # the pool parses the next batch while the previous one is committed.
    serial, piped = FactStore(tmp_path / "serial"), FactStore(tmp_path / "piped")
    one = ingest([corpus / "valid", broken], serial, batch_files=100_000)
    many = ingest([corpus / "valid", broken], piped, workers=2, batch_files=7)
    assert many.as_json() == one.as_json()
    assert one.cancelled > 0 and one.quarantined > 0
    assert _state(piped) == _state(serial)
    assert _journal_entries(piped.root) > 40


def test_orphans_of_a_killed_run_are_removed_on_restart(tmp_path: Path, corpus: Path) -> None:
    store = FactStore(tmp_path / "store")
    clean = FactStore(tmp_path / "clean")
    ingest([corpus / "valid"], clean)
    # What a run killed between writing a batch and committing it leaves: files nobody lists.
    orphan = store.partition("facts", 2026, 1) / "ingest-0123456789abcdef0123.parquet"
    orphan.parent.mkdir(parents=True)
    shutil.copy(next((clean.root / "facts").glob("*/*/*.parquet")), orphan)
    (orphan.parent / ".ingest-x.parquet.tmp").write_bytes(b"partial")
    for d in (store.root / "_ingest" / "journal", quarantine_dir(store)):
        d.mkdir(parents=True)
        (d / ".00000001.json.tmp").write_bytes(b"{")
    ingest([corpus / "valid"], store)
    assert not orphan.exists()
    assert not list(store.root.rglob("*.tmp"))
    assert _state(store) == _state(clean)


def test_unreadable_path_is_quarantined(tmp_path: Path) -> None:
    missing = tmp_path / "gone.xml"
    missing.symlink_to(tmp_path / "nowhere.xml")
    store = FactStore(tmp_path / "store")
    summary = ingest([missing], store)
    assert summary.reasons == {"unreadable_file": 1}
    [entry] = iter_quarantine(quarantine_dir(store))
    assert entry.source == str(missing)


def _journal_entries(store: Path) -> int:
    journal = store / "_ingest" / "journal"
    return len(list(journal.glob("*.json"))) if journal.exists() else 0


@pytest.mark.slow
def test_kill_minus_nine_then_rerun_equals_one_clean_run(
    tmp_path: Path, corpus: Path, broken: Path
) -> None:
    clean = FactStore(tmp_path / "clean")
    ingest([corpus / "valid", broken], clean, batch_files=40)
    killed = tmp_path / "killed"
    cmd = [sys.executable, "-m", "dataflow", "data", "ingest", str(corpus / "valid"), str(broken)]
    cmd += ["--store", str(killed), "--workers", "1", "--batch", "40"]
    env = {**os.environ, "DATAFLOW_DATA_DIR": str(tmp_path / "data")}
    # Killed twice at different points (the second time while redoing committed work), then rerun.
    for entries in (2, 5):
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while (
            _journal_entries(killed) < entries
            and proc.poll() is None
            and time.monotonic() < deadline
        ):
            time.sleep(0.002)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
        assert _journal_entries(killed) >= entries
    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    summary = json.loads(rerun.stdout)
    assert summary["duplicates"] > 0  # what the killed runs had committed
    assert _state(FactStore(killed)) == _state(clean)


def test_cli_generate_xml_then_ingest_prints_the_summary(tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"DATAFLOW_DATA_DIR": str(tmp_path)}
    out = tmp_path / "xml"
    gen = runner.invoke(
        app,
        [
            "data",
            "generate-xml",
            "--invoices",
            "30",
            "--seed",
            "2",
            "--out",
            str(out),
            "--cancel-share",
            "0.2",
        ],
        env=env,
    )
    assert gen.exit_code == 0, gen.output
    assert json.loads(gen.stdout)["invoices"] == 30
    # no --workers: the default (one per core) must be accepted, not rejected by ``min=1``
    res = runner.invoke(app, ["data", "ingest", str(out), "--store", str(tmp_path / "s")], env=env)
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    cancelled = len(list(out.glob("*procEventoNFe.xml")))
    assert summary["loaded"] == 30 - cancelled
    assert summary["cancelled"] == cancelled
    assert summary["duplicates"] == summary["quarantined"] == 0
    assert isinstance(IngestSummary().as_json()["quarantine_reasons"], dict)


def test_strict_ingest_quarantines_broken_files_for_the_same_reasons(
    tmp_path: Path, broken: Path
) -> None:
    summary = ingest([broken], FactStore(tmp_path / "store"), strict=True)
    assert summary.loaded == 0
    assert summary.reasons == {p.stem: 1 for p in broken.glob("*.xml")}


def test_workers_do_not_rerun_the_main_script(tmp_path: Path, corpus: Path) -> None:
    # As the `dataflow` console script is: a __main__ with a file and no module spec. Each worker
    # re-running it would re-import the whole CLI.
    script = tmp_path / "run_ingest.py"
    script.write_text(
        "import os, sys\n"
        "from pathlib import Path\n"
        "if __name__ != '__main__':\n"
        "    Path(os.environ['MARKERS'], str(os.getpid())).touch()\n"
        "else:\n"
        "    from dataflow.invoices.factstore import FactStore\n"
        "    from dataflow.invoices.ingest import ingest\n"
        "    s = ingest([Path(sys.argv[1])], FactStore(Path(sys.argv[2])), workers=2)\n"
        "    print(s.loaded)\n"
    )
    markers = tmp_path / "markers"
    markers.mkdir()
    out = subprocess.run(
        [sys.executable, str(script), str(corpus / "valid"), str(tmp_path / "store")],
        env={**os.environ, "MARKERS": str(markers)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert int(out.stdout) == len(_table(FactStore(tmp_path / "store"), "invoices"))
    assert not list(markers.iterdir())


@pytest.mark.slow
@pytest.mark.xdist_group("spark")
def test_spark_ingestion_gives_the_local_pools_store_and_quarantine(
    spark: object, tmp_path: Path, corpus: Path, broken: Path
) -> None:
    """The worker step as Spark jobs (one partition per run of files): the same facts,
    invoices and quarantine records as the local pool; batches of 100 files so cancellations
    and their invoices fall in different batches; a rerun loads nothing twice."""
    from dataflow.invoices.spark import SparkExecutor

    local, on_spark = FactStore(tmp_path / "local"), FactStore(tmp_path / "spark")
    pooled = ingest([corpus / "valid", broken], local, workers=2, batch_files=100)
    executor = SparkExecutor(spark)
    try:
        summary = ingest([corpus / "valid", broken], on_spark, batch_files=100, executor=executor)
        assert summary.as_json() == pooled.as_json()
        assert pooled.cancelled > 0 and pooled.quarantined == len(list(broken.glob("*.xml")))
        assert _state(on_spark) == _state(local)
        again = ingest([corpus / "valid", broken], on_spark, batch_files=100, executor=executor)
        assert again.loaded == 0 and again.duplicates > 0
        assert _state(on_spark) == _state(local)
    finally:
        executor.shutdown()
