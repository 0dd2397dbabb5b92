"""The Litestar application, built from explicit settings and services."""

from __future__ import annotations

from pathlib import Path

from litestar import Litestar
from litestar.datastructures import State

from dataflow.aggregation.catalog import load_release
from dataflow.aggregation.release import newest_release
from dataflow.api.admin import account_router, admin_router
from dataflow.api.auth import KeyRing
from dataflow.api.errors import exception_handlers
from dataflow.api.routes import routes
from dataflow.api.state import ApiState
from dataflow.contracts.repository import make_engine
from dataflow.contracts.service import ContractsService
from dataflow.metering.factory import make_meter
from dataflow.metering.protocol import Meter
from dataflow.metering.settlement import PeriodicSettler
from dataflow.settings import Settings

__all__ = ["create_app", "create_app_from_env", "resolve_release"]


def resolve_release(settings: Settings) -> Path:
    path = settings.release_dir or newest_release(settings.releases_dir)
    if path is None:
        raise FileNotFoundError(
            f"no release under {settings.releases_dir}; build one with `dataflow release build`"
        )
    return path


def create_app(
    settings: Settings, *, meter: Meter | None = None, contracts: ContractsService | None = None
) -> Litestar:
    contracts = contracts or ContractsService(make_engine(settings.database_url))
    meter = meter if meter is not None else make_meter(settings)
    api = ApiState(
        release=load_release(resolve_release(settings)),
        keys=KeyRing(contracts),
        contracts=contracts,
        meter=meter,
    )

    settler = (
        PeriodicSettler(api.meter, contracts, interval=settings.settle_interval)
        if api.meter is not None
        else None
    )

    async def _start() -> None:
        if settler is not None:
            await settler.start()

    async def _close() -> None:
        if settler is not None:
            await settler.stop()  # settles one last time
        if api.meter is not None:
            await api.meter.aclose()

    return Litestar(
        route_handlers=[*routes, admin_router, account_router],
        state=State({"api": api}),
        exception_handlers=exception_handlers,
        on_startup=[_start],
        on_shutdown=[_close],
        openapi_config=None,
    )


def create_app_from_env() -> Litestar:
    """Factory for the ASGI server: one settings object per worker, from the environment."""
    return create_app(Settings.from_env())
