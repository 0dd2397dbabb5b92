"""`dataflow serve`."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Annotated

import typer

from dataflow.api.metrics import use_multiprocess_dir
from dataflow.settings import METER_OFF_WARNING, MeterKind, Settings

__all__ = ["serve"]


def serve(
    ctx: typer.Context,
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    workers: Annotated[int, typer.Option(help="Worker processes.", min=1)] = 1,
    release: Annotated[
        Path | None, typer.Option(help="Release directory (default: newest).")
    ] = None,
) -> None:
    """Run the partner API (granian, ASGI)."""
    from granian import Granian

    settings: Settings = ctx.obj
    if settings.meter is MeterKind.EMBEDDED and workers > 1:
        typer.echo(
            "error: the embedded meter lives in one process; use --workers 1 or set "
            "DATAFLOW_REDIS_URL so every worker counts in Redis",
            err=True,
        )
        raise typer.Exit(2)
    # Prometheus multiprocess mode: every worker writes its samples here, /metrics sums them.
    # A fresh directory per server, so counters of a previous run never leak into this one. Set
    # before the app's modules are imported: the meter's metrics are made at import.
    metrics_dir = settings.data_dir / "run" / f"metrics-{port}"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    use_multiprocess_dir(metrics_dir)

    if settings.migration_database_url:  # workers connect as the app's role: it may not migrate
        from dataflow.contracts.repository import make_engine
        from dataflow.contracts.schema import ensure_schema

        ensure_schema(make_engine(settings.migration_database_url))

    from dataflow.api.app import resolve_release

    path = (release or resolve_release(settings)).resolve()
    os.environ["DATAFLOW_RELEASE_DIR"] = str(path)  # workers rebuild settings from the environment
    os.environ["DATAFLOW_DATA_DIR"] = str(settings.data_dir)
    typer.echo(
        f"serving release {path.name} on http://{host}:{port} "
        f"({workers} worker(s), meter={settings.meter})",
        err=True,
    )
    if settings.meter is MeterKind.OFF:
        typer.secho(f"WARNING: {METER_OFF_WARNING}", err=True, fg="red", bold=True)
    Granian(
        target="dataflow.api.app:create_app_from_env",
        factory=True,
        address=host,
        port=port,
        interface="asgi",  # type: ignore[arg-type]
        workers=workers,
        log_access=False,  # our own structured access log (dataflow.access), without secrets
        # SIGTERM/SIGINT: stop accepting, let in-flight requests finish, then the app's shutdown
        # hooks settle the meter; a worker still busy after this long is killed.
        workers_kill_timeout=30,
        # A worker that dies (the OOM killer, a crash in a C extension) is replaced while the
        # others keep serving; without this granian shuts the whole server down. Granian gives
        # up (and exits) only when the same worker dies again within 5.5 s of its respawn.
        respawn_failed_workers=True,
    ).serve()
    shutil.rmtree(metrics_dir, ignore_errors=True)
