from __future__ import annotations

import json
from decimal import Decimal

import polars as pl
import pytest

from dataflow.aggregation.release import ReleaseSummary, read_manifest
from dataflow.aggregation.suppression import FLAG_SUPPRESSED

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
    json.dumps(manifest)


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
