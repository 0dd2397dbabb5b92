from __future__ import annotations

import json
import shutil
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from dataflow.aggregation.disclosure.suppression import FLAG_SUPPRESSED
from dataflow.aggregation.release import ReleaseSummary, read_manifest
from dataflow.cli import app

REPO = Path(__file__).resolve().parents[2]

TABLE = "sales_municipality_cnae_division_month"


@pytest.fixture(scope="module")
def frames(release: ReleaseSummary) -> tuple[pl.DataFrame, pl.DataFrame]:
    public = pl.read_parquet(release.path / "tables" / f"{TABLE}.parquet")
    internal = pl.read_parquet(release.path / "internal" / f"{TABLE}.parquet")
    return public, internal


def test_manifest_format(release: ReleaseSummary) -> None:
    manifest = read_manifest(release.path)
    assert manifest["version"] == release.version
    entry = next(t for t in manifest["tables"] if t["id"] == TABLE)  # type: ignore[union-attr]
    assert entry["file"] == f"tables/{TABLE}.parquet"
    assert [h["levels"] for h in entry["hierarchies"]] == [
        ["municipality"],
        ["cnae_division"],
        ["month"],
    ]
    assert entry["measures"] == ["item_value", "invoice_count"]
    assert len(entry["sha256"]) == 64
    assert entry["title_pt"] == "Vendas por município, divisão CNAE e mês"  # people's pages
    json.dumps(manifest)


def test_every_standard_table_is_titled_for_people_in_portuguese() -> None:
    from dataflow.aggregation.specs import load_specs

    for spec in load_specs(REPO / "tables"):
        assert spec.title_pt and spec.description_pt, spec.id


def test_levels_are_strings_with_margins(frames: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    public, _ = frames
    for level in ("municipality", "cnae_division", "month"):
        assert public.schema[level] == pl.String
    grand = public.filter(
        (pl.col("municipality") == "_T")
        & (pl.col("cnae_division") == "_T")
        & (pl.col("month") == "_T")
    )
    assert grand.height == 1
    assert grand["flag"][0] == ""


def test_no_thin_cell_is_published(frames: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    public, internal = frames
    joined = public.join(internal, on=["municipality", "cnae_division", "month"])
    thin = joined.filter(pl.col("n_taxpayers") < 3)
    assert thin.height > 0, "the test data should have thin cells to protect"
    assert (thin["flag"] == FLAG_SUPPRESSED).all()
    assert thin["item_value"].is_null().all()
    assert thin["invoice_count"].is_null().all()
    published = joined.filter(pl.col("flag") == "")
    assert (published["n_taxpayers"] >= 3).all()
    assert published["item_value"].is_not_null().all()


def test_margins_add_up(frames: tuple[pl.DataFrame, pl.DataFrame], fact_store) -> None:  # type: ignore[no-untyped-def]
    import duckdb

    public, _ = frames
    grand = public.filter(
        (pl.col("municipality") == "_T")
        & (pl.col("cnae_division") == "_T")
        & (pl.col("month") == "_T")
    )["item_value"][0]
    total = duckdb.execute(
        # The table covers MG issuers only (its filter); the store also holds interstate sellers.
        f"SELECT sum(item_value) FROM read_parquet('{fact_store.facts_glob()}') "
        "WHERE issuer_uf = 'MG'"
    ).fetchone()[0]  # type: ignore[index]
    assert Decimal(grand) == total


def test_no_sensitive_cell_is_published_in_any_table(release: ReleaseSummary) -> None:
    manifest = read_manifest(release.path)
    for entry in manifest["tables"]:  # type: ignore[union-attr]
        public = pl.read_parquet(release.path / entry["file"])
        internal = pl.read_parquet(release.path / "internal" / f"{entry['id']}.parquet")
        assert public.height == internal.height
        sensitive = internal["reason"].str.starts_with("primary")
        hidden = public["flag"] == FLAG_SUPPRESSED
        assert (hidden | ~sensitive).all(), entry["id"]
        for m in entry["measures"]:
            assert public.filter(hidden)[m].is_null().all()  # counts share the value's fate
        assert (internal.filter(hidden)["reason"] != "").all()  # every X has an internal reason


def test_parameters_are_confidential(release: ReleaseSummary) -> None:
    text = (release.path / "manifest.json").read_text()
    for secret in ("min_taxpayers", "p_percent", "dominance_k", "threshold_protection"):
        assert secret not in text
    manifest = read_manifest(release.path)
    assert manifest["parameters"]["file"] == "internal/parameters.json"  # type: ignore[index]
    params = json.loads((release.path / "internal" / "parameters.json").read_text())
    assert params["tables"][TABLE]["min_taxpayers"] == 3
    assert params["audit"]["passed"] is True
    entry = next(t for t in manifest["tables"] if t["id"] == TABLE)  # type: ignore[union-attr]
    assert "p-percent" in entry["rules"]


def test_standard_catalogue_passes_the_audit_and_cli(release: ReleaseSummary) -> None:
    ids = {t["id"] for t in read_manifest(release.path)["tables"]}  # type: ignore[union-attr]
    assert len(ids) >= 6
    result = CliRunner().invoke(app, ["release", "audit", str(release.path)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["passed"] and report["hashes_ok"] and report["failures"] == 0
    assert {t["id"] for t in report["tables"]} == ids


def test_cli_audit_fails_on_a_tampered_release(
    linked_release: ReleaseSummary, tmp_path: Path
) -> None:
    copy = tmp_path / "tampered"
    shutil.copytree(linked_release.path, copy)
    linked = "sales_model_cnae_division_month"
    path = copy / "tables" / f"{linked}.parquet"
    public = pl.read_parquet(path)
    internal = pl.read_parquet(copy / "internal" / f"{linked}.parquet")
    i = int(internal["reason"].str.starts_with("primary").arg_true()[0])
    public = public.with_columns(  # publish one sensitive cell: value shown, flag cleared
        pl.when(pl.int_range(pl.len()) == i)
        .then(internal["value"])
        .otherwise(pl.col("item_value"))
        .alias("item_value"),
        pl.when(pl.int_range(pl.len()) == i)
        .then(pl.lit(""))
        .otherwise(pl.col("flag"))
        .alias("flag"),
    )
    public.write_parquet(path)
    result = CliRunner().invoke(app, ["release", "audit", str(copy)])
    assert result.exit_code == 1, (result.output, result.exception)
    report = json.loads(result.stdout)
    assert not report["passed"] and not report["hashes_ok"] and report["failures"] >= 1


def test_rebuilding_the_same_data_gives_the_same_pattern(
    release: ReleaseSummary,
    fact_store,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    from dataflow.aggregation.release import build_release
    from dataflow.aggregation.specs import load_specs

    small = "sales_model_cnae_division_month"
    specs = [s for s in load_specs(REPO / "tables") if s.id == small]
    again = build_release(fact_store, specs, tmp_path)
    second = pl.read_parquet(again.path / "tables" / f"{small}.parquet")
    third = build_release(fact_store, specs, tmp_path / "again")
    assert (pl.read_parquet(third.path / "tables" / f"{small}.parquet")).equals(second)


def test_the_same_release_twice_in_one_second_is_refused_not_overwritten(
    fact_store,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    from datetime import UTC, datetime

    from dataflow.aggregation.release import ReleaseExists, build_release
    from dataflow.aggregation.specs import load_specs

    specs = [s for s in load_specs(REPO / "tables") if s.id == "sales_model_cnae_division_month"]
    now = datetime(2026, 12, 3, 12, 0, 0, tzinfo=UTC)
    first = build_release(fact_store, specs, tmp_path, now=now)
    before = sorted(p.name for p in tmp_path.iterdir())
    # Same data, same second: the second build (protected against the first, which publishes
    # the same cells) has the same content hash, hence the same version.
    with pytest.raises(ReleaseExists, match="already published") as refused:
        build_release(fact_store, specs, tmp_path, now=now)
    assert refused.value.existing == first.path
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no staging left behind


def test_a_revised_month_is_protected_or_refused(
    fact_store,
    reference,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    """Against a release that kept its contributions a revision is protected (lineage.py);
    against one built before (no contributions: the revision cannot be measured) it is
    refused unless the operator says so."""
    from dataflow.aggregation.release import RevisedMonths, build_release
    from dataflow.aggregation.specs import load_specs
    from dataflow.invoices.factstore import FactStore
    from dataflow.invoices.synthetic.generator import generate, parse_months

    specs = [s for s in load_specs(REPO / "tables") if s.id == "sales_model_cnae_division_month"]
    releases = tmp_path / "releases"
    first = build_release(fact_store, specs, releases)
    revised = FactStore(tmp_path / "revised")
    generate(revised, reference, items=20_000, seed=99, months=parse_months("2026-01:2026-02"))
    second = build_release(revised, specs, releases)
    assert second.lineage == [first.version]
    shutil.rmtree(second.path)
    shutil.rmtree(first.path / "internal" / "contributions")  # as releases of format 2
    with pytest.raises(RevisedMonths) as caught:
        build_release(revised, specs, releases)
    assert caught.value.months == ["2026-01", "2026-02"]
    assert build_release(revised, specs, releases, allow_revision=True).path.is_dir()
