"""Shared fixtures: real Redis and PostgreSQL (never fakes), small real releases.

Servers come from DATAFLOW_TEST_REDIS_URL / DATAFLOW_TEST_DATABASE_URL (defaults: the local ones).
With CI=true a missing server fails the run; elsewhere the tests that need it are skipped.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa
from hypothesis import settings as hypothesis_settings

from dataflow.aggregation.release import ReleaseSummary, build_release
from dataflow.aggregation.specs import load_specs
from dataflow.invoices.factstore import FactStore
from dataflow.invoices.reference import ReferenceData, load_reference
from dataflow.invoices.synthetic.generator import generate, parse_months
from dataflow.settings import MeterKind, Settings

REPO = Path(__file__).resolve().parents[1]
REDIS_URL = os.environ.get("DATAFLOW_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
DATABASE_URL = os.environ.get(
    "DATAFLOW_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

# No per-example deadline: on a shared, loaded 2-core machine an example's wall time says more
# about the neighbours than about the code, and deadlines made property tests flaky. Tests that
# must be fast say so with their own bounds (examples, timeouts), not with wall-clock deadlines.
hypothesis_settings.register_profile("dataflow", deadline=None)
hypothesis_settings.load_profile("dataflow")


def _unavailable(what: str, why: Exception) -> None:
    message = f"{what} is not reachable ({why}); it is required"
    if IN_CI:
        pytest.fail(message + " under CI=true", pytrace=False)
    pytest.skip(message + " (not in CI, skipping)")


@pytest.fixture(scope="session")
def redis_url() -> str:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as e:
        _unavailable(f"Redis at {REDIS_URL}", e)
    return REDIS_URL


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards."""
    prefix = f"dftest-{uuid.uuid4().hex[:12]}"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    if keys:
        client.delete(*keys)


@pytest.fixture(scope="session")
def postgres_base_url() -> str:
    try:
        engine = sa.create_engine(DATABASE_URL)
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        engine.dispose()
    except sa.exc.SQLAlchemyError as e:
        _unavailable(f"PostgreSQL at {DATABASE_URL}", e)
    return DATABASE_URL


@pytest.fixture
def postgres_url(postgres_base_url: str) -> Iterator[str]:
    """A schema of this test's own (search_path), dropped afterwards."""
    schema = f"dftest_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(postgres_base_url)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = sa.engine.make_url(postgres_base_url).update_query_dict(
        {"options": f"-csearch_path={schema}"}
    )
    yield url.render_as_string(hide_password=False)
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Every control-plane test runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'dataflow.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture(scope="session")
def reference() -> ReferenceData:
    return load_reference(REPO / "datasets")


@pytest.fixture(scope="session")
def fact_store(tmp_path_factory: pytest.TempPathFactory, reference: ReferenceData) -> FactStore:
    store = FactStore(tmp_path_factory.mktemp("store"))
    generate(store, reference, items=60_000, seed=11, months=parse_months("2026-01:2026-02"))
    return store


@pytest.fixture(scope="session")
def spark() -> Iterator[object]:
    """One small local Spark for the whole test session (tests using it share the xdist group
    "spark", so one worker starts one JVM): two cores, two shuffle partitions, no UI. Java
    missing is a failure, never a skip (`make test` checks it first)."""
    from dataflow.aggregation.spark import spark_session

    session = spark_session(
        "local[2]",
        conf={
            "spark.sql.shuffle.partitions": "2",
            "spark.default.parallelism": "2",
            "spark.sql.adaptive.enabled": "false",
            "spark.driver.memory": "1g",
            "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
        },
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def release(tmp_path_factory: pytest.TempPathFactory, fact_store: FactStore) -> ReleaseSummary:
    return build_release(
        fact_store, load_specs(REPO / "tables"), tmp_path_factory.mktemp("releases")
    )


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    """Settings for a test: everything under tmp_path unless overridden."""
    base = Settings(
        data_dir=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'dataflow.db'}",
        redis_url=None,
        meter=MeterKind.EMBEDDED,
    )
    return base.with_(**overrides)
