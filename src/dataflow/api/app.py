"""The Litestar application, built from explicit settings and services."""

from __future__ import annotations

import gc
import logging
from pathlib import Path

from litestar import Litestar
from litestar.datastructures import State
from litestar.exceptions import HTTPException

from dataflow import __version__
from dataflow.aggregation.catalog import load_release
from dataflow.aggregation.release import newest_release
from dataflow.api.admin import account_router, admin_router
from dataflow.api.auth import KeyRing
from dataflow.api.console import (
    ConsoleState,
    console_routers,
    html_not_found,
    template_config,
)
from dataflow.api.console.context import console_secret
from dataflow.api.encode import PageEncoder
from dataflow.api.errors import exception_handlers
from dataflow.api.execute import QueryRunner
from dataflow.api.metrics import Metrics, OverdueCollector
from dataflow.api.observe import observe
from dataflow.api.openapi import complete_openapi, openapi_config
from dataflow.api.routes import routes
from dataflow.api.routes.rows import table_routes
from dataflow.api.state import ApiState
from dataflow.contracts.repository import make_engine
from dataflow.contracts.service import ContractsService
from dataflow.invoices.reference import ReferenceData, load_reference
from dataflow.metering.factory import make_meter
from dataflow.metering.protocol import Meter
from dataflow.metering.settlement import PeriodicSettler
from dataflow.settings import METER_OFF_WARNING, Settings

__all__ = ["create_app", "create_app_from_env", "resolve_release"]


def resolve_release(settings: Settings) -> Path:
    path = settings.release_dir or newest_release(settings.releases_dir)
    if path is None:
        raise FileNotFoundError(
            f"no release under {settings.releases_dir}; build one with `dataflow release build`"
        )
    return path


def _reference(settings: Settings) -> ReferenceData | None:
    try:
        return load_reference(settings.datasets_dir)
    except (OSError, KeyError, ValueError):  # code lists are labels: serve codes without them
        logging.getLogger("dataflow.api").warning("reference data unavailable; codes unlabelled")
        return None


def create_app(
    settings: Settings, *, meter: Meter | None = None, contracts: ContractsService | None = None
) -> Litestar:
    contracts = contracts or ContractsService(make_engine(settings.database_url))
    meter = meter if meter is not None else make_meter(settings)
    if meter is None:
        logging.getLogger("dataflow.api").warning(METER_OFF_WARNING)
    reference = _reference(settings)
    release = load_release(resolve_release(settings), reference)
    metrics = Metrics()
    metrics.add_collector(OverdueCollector(contracts.engine))
    api = ApiState(
        release=release,
        keys=KeyRing(contracts),
        contracts=contracts,
        meter=meter,
        runner=QueryRunner(
            PageEncoder(release),
            timeout_seconds=settings.api_query_seconds,
            cache_bytes=settings.api_cache_mb << 20,
        ),
        metrics=metrics,
    )

    settler = (
        PeriodicSettler(api.meter, contracts, interval=settings.settle_interval)
        if api.meter is not None
        else None
    )

    async def _start() -> None:
        if settler is not None:
            await settler.start()
        # Everything alive now lives as long as the worker: keep it out of the collector's
        # generations, so collections stay short and rare (tail latency under load).
        gc.collect()
        gc.freeze()

    async def _close() -> None:
        # Litestar runs this after the server stopped taking requests and in-flight ones ended.
        if settler is not None:
            await settler.stop()  # settles one last time
        if api.meter is not None:
            await api.meter.aclose()
        api.runner.close()
        api.charts.close()
        metrics.flush()
        # Frozen objects are never collected, not even at exit: DuckDB's bindings would then
        # report them as leaks when the interpreter shuts down.
        gc.unfreeze()

    console = ConsoleState.build(settings, contracts)
    app = Litestar(
        route_handlers=[
            *routes,
            *table_routes(sorted(release.tables)),
            admin_router,
            account_router,
            *console_routers(
                console_secret(settings), secure_cookies=settings.console_secure_cookies
            ),
        ],
        state=State({"api": api, "console": console}),
        template_config=template_config(),
        exception_handlers={
            **exception_handlers,
            HTTPException: html_not_found(exception_handlers[HTTPException]),
        },
        on_startup=[_start],
        on_shutdown=[_close],
        openapi_config=openapi_config(__version__),
    )
    complete_openapi(app, release)
    # Observation wraps the whole ASGI handler, routing included: as a Litestar middleware it
    # only ran for matched routes, so 404s and 405s (raised by the router, before any route's
    # middleware) escaped the access log, the metrics and the size limits.
    app.asgi_handler = observe(metrics)(app.asgi_handler)
    return app


def _logs_to_stderr() -> None:
    """The server's log stream (stderr): one JSON line per request, nothing else added; the
    app's own warnings (``dataflow.api``: meter off, reference data missing) with level and name."""
    for name, fmt, level in (
        ("dataflow.access", "%(message)s", logging.INFO),
        ("dataflow.api", "%(levelname)s %(name)s: %(message)s", logging.WARNING),
    ):
        log = logging.getLogger(name)
        if not log.handlers:
            handler = logging.StreamHandler()
            handler.setFormatter(logging.Formatter(fmt))
            log.addHandler(handler)
            log.setLevel(level)
            log.propagate = False


def create_app_from_env() -> Litestar:
    """Factory for the ASGI server: one settings object per worker, from the environment."""
    _logs_to_stderr()
    return create_app(Settings.from_env())
