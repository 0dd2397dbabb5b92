"""The OpenAPI document, and schemathesis against it: no 5xx, no response outside the schema."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from litestar import Litestar
from schemathesis.specs.openapi.checks import positive_data_acceptance

from dataflow.aggregation.release import ReleaseSummary
from dataflow.api.app import create_app
from dataflow.contracts.models import Plan
from dataflow.contracts.repository import make_engine
from dataflow.contracts.service import ContractsService
from dataflow.metering.embedded import EmbeddedMeter
from tests.api.conftest import TABLE, Env
from tests.conftest import make_settings


@pytest.fixture
def fuzzed_app(tmp_path: Path, release: ReleaseSummary) -> Iterator[tuple[Litestar, str]]:
    settings = make_settings(tmp_path, release_dir=release.path)
    contracts = ContractsService(make_engine(settings.database_url))
    partner = contracts.create_partner("Fuzz", Plan.CONTINUOUS)
    app = create_app(settings, meter=EmbeddedMeter(), contracts=contracts)
    yield app, contracts.create_key(partner.id)


def test_api_conforms_to_its_openapi_document(fuzzed_app: tuple[Litestar, str]) -> None:
    """Every operation, generated inputs (bounded, to stay fast), every schemathesis check."""
    app, key = fuzzed_app
    schema = schemathesis.openapi.from_asgi("/docs/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {
        "/v1/tables",
        "/v1/tables/{table_id}",
        "/v1/tables/{table_id}/rows",
        "/v1/usage",
    }
    for operation in operations:
        examples = 40 if operation.path.endswith("/rows") else 10

        @given(case=operation.as_strategy())
        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: schemathesis.Case) -> None:
            # A cursor is opaque: a generated one is rightly refused (400), so only for those
            # cases is "schema-valid input is accepted" not expected; every other check runs.
            opaque = bool(case.query and "cursor" in case.query)
            # Admin routes are called with a partner key: refusal (401) is the right answer, so
            # acceptance of schema-valid input is not expected there; the other checks still run.
            opaque = opaque or case.operation.path.startswith("/admin/")
            # On the generic {table_id} path, `columns`/`sort` list every table's columns, so a
            # schema-valid pick may not exist in the chosen table (the per-table paths are exact).
            generic = case.operation.path == "/v1/tables/{table_id}/rows"
            opaque = opaque or (
                generic and bool(case.query) and bool({"columns", "sort"} & set(case.query))
            )
            case.call_and_validate(
                headers={"Authorization": f"Bearer {key}"},
                excluded_checks=[positive_data_acceptance] if opaque else None,
            )

        check()


async def test_document_describes_problems_formats_filters_and_auth(env: Env) -> None:
    r = await env.client.get("/docs/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    rows = doc["paths"]["/v1/tables/{table_id}/rows"]["get"]
    names = {p["name"] for p in rows["parameters"]}
    assert {"limit", "cursor", "sort", "columns", "format"} <= names
    concrete = doc["paths"][f"/v1/tables/{TABLE}/rows"]["get"]
    filters = {p["name"]: p["schema"] for p in concrete["parameters"]}
    assert {"municipality", "cnae_division", "month"} <= set(filters)
    assert filters["month"]["pattern"].startswith("^")
    assert set(rows["responses"]["200"]["content"]) == {
        "application/json",
        "text/csv",
        "application/vnd.apache.arrow.stream",
        "application/vnd.apache.parquet",
    }
    for status in ("400", "401", "403", "404", "406", "422", "429", "500", "503"):
        assert "application/problem+json" in rows["responses"][status]["content"], status
    assert rows["security"] == [{"bearer": []}]
    assert "cursor-mismatch" in doc["info"]["description"]
    page = await env.client.get("/docs")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
