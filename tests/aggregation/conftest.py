"""Fixtures: small linked tables for suppression."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from dataflow.aggregation.cube import build_cells
from dataflow.aggregation.disclosure.suppression import primary
from dataflow.aggregation.levels import register_references
from dataflow.aggregation.release import ReleaseSummary, build_release
from dataflow.aggregation.specs import TableSpec, load_specs
from dataflow.invoices.factstore import FactStore

REPO = Path(__file__).resolve().parents[2]


# Two catalogue tables that share their division × month margins: the linked-table case.
LINKED = ("sales_model_cnae_division_month", "sales_cnae_section_division_quarter_month")


@pytest.fixture(scope="session")
def catalogue() -> list[TableSpec]:
    return load_specs(REPO / "tables")


@pytest.fixture(scope="session")
def linked_specs(catalogue: list[TableSpec]) -> list[TableSpec]:
    return [s for s in catalogue if s.id in LINKED]


@pytest.fixture(scope="session")
def linked_cells(fact_store: FactStore, linked_specs: list[TableSpec]):  # type: ignore[no-untyped-def]
    con = duckdb.connect()
    register_references(con, REPO / "datasets")
    out = []
    for spec in linked_specs:
        cells = build_cells(fact_store, spec, con)
        out.append((spec, cells, primary(cells, spec.rules)))
    return out


@pytest.fixture(scope="session")
def linked_release(
    fact_store: FactStore, linked_specs: list[TableSpec], tmp_path_factory: pytest.TempPathFactory
) -> ReleaseSummary:
    return build_release(fact_store, linked_specs, tmp_path_factory.mktemp("linked"))
