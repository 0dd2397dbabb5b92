"""`dataflow usage …`: settle the access streams into the ledger, reconcile, show."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from dataflow.contracts.repository import make_engine
from dataflow.metering.factory import make_meter
from dataflow.metering.models import billing_month
from dataflow.metering.protocol import Meter
from dataflow.metering.repository import SettlementRepository
from dataflow.metering.settlement import reconcile_month, settle
from dataflow.settings import MeterKind, Settings
from dataflow.terminal import err, print_json

__all__ = ["usage_app"]

usage_app = typer.Typer(help="Metered usage: settlement and reconciliation.", no_args_is_help=True)

_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def _month(value: str | None) -> str:
    if value is None:
        return billing_month(datetime.now(UTC))
    if not _MONTH.match(value):
        raise typer.BadParameter(f"{value!r}: expected YYYY-MM, e.g. 2026-11")
    return value


def _meter(settings: Settings) -> Meter:
    if settings.meter is not MeterKind.REDIS:
        err.print(
            "[red]error:[/] the embedded meter lives inside the server process, which settles "
            "it itself; `dataflow usage` needs the shared meter (set DATAFLOW_REDIS_URL)"
        )
        raise typer.Exit(2)
    meter = make_meter(settings)
    assert meter is not None
    return meter


async def _settle(settings: Settings, batch: int) -> dict[str, object]:
    meter = _meter(settings)
    repo = await asyncio.to_thread(SettlementRepository, make_engine(settings.database_url))
    try:
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TextColumn("{task.completed:,} entries"),
            TimeElapsedColumn(),
            console=err,
            transient=True,
        ) as progress:
            task = progress.add_task("settling access streams", total=None)

            def advance(partner_id: int, n: int) -> None:
                progress.update(task, advance=n, description=f"settling partner {partner_id}")

            summary = await settle(meter, repo, batch=batch, on_batch=advance)
    finally:
        await meter.aclose()
    return {
        "partners": summary.partners,
        "entries": summary.entries,
        "batches": summary.batches,
        "months": summary.months,
    }


async def _follow(settings: Settings, batch: int, every: float) -> dict[str, object]:
    """Settle every ``every`` seconds until interrupted (a settler process beside the API).

    One meter and one engine for the whole run: each round then costs what it settles, not a
    reconnect and a schema check. A line on stderr after each round says what it did.
    """
    meter = _meter(settings)
    repo = await asyncio.to_thread(SettlementRepository, make_engine(settings.database_url))
    entries = batches = partners = rounds = 0
    try:
        while True:
            try:
                summary = await settle(meter, repo, batch=batch)
            except Exception as e:  # Redis or the database away: entries wait in the stream
                err.print(f"settlement round failed ({type(e).__name__}: {e}); retrying")
            else:
                entries += summary.entries
                batches += summary.batches
                partners = summary.partners
                err.print(
                    f"settled {summary.entries:,} stream entries of {summary.partners} "
                    f"partner(s) in {summary.batches} batch(es)",
                    highlight=False,
                )
            rounds += 1
            await asyncio.sleep(every)
    except asyncio.CancelledError:
        pass
    finally:
        await meter.aclose()
    return {"partners": partners, "entries": entries, "batches": batches, "rounds": rounds}


@usage_app.command("settle")
def usage_settle(
    ctx: typer.Context,
    batch: Annotated[int, typer.Option(help="Stream entries per SQL transaction.", min=1)] = 5000,
    every: Annotated[
        float | None,
        typer.Option(
            help="Keep settling every SECONDS until interrupted (settler process).", min=0.1
        ),
    ] = None,
) -> None:
    """Move access records from the meter's streams into the usage ledger (idempotent)."""
    if every is not None:
        try:
            summary = asyncio.run(_follow(ctx.obj, batch, every))
        except KeyboardInterrupt:
            summary = {"stopped": True}
        print_json(summary)
        return
    summary = asyncio.run(_settle(ctx.obj, batch))
    err.print(
        f"settled {summary['entries']:,} stream entries of {summary['partners']} partner(s) "
        f"in {summary['batches']} batch(es)"
    )
    print_json(summary)


async def _reconcile(settings: Settings, month: str, settle_first: bool) -> list[dict[str, int]]:
    meter = _meter(settings)
    repo = await asyncio.to_thread(SettlementRepository, make_engine(settings.database_url))
    try:
        if settle_first:
            await settle(meter, repo)
        rows = await reconcile_month(meter, repo, month)
    finally:
        await meter.aclose()
    return [
        {
            "partner_id": r.partner_id,
            "counter": r.counter,
            "stream": r.stream,
            "records": r.records,
            "ledger": r.ledger,
            "agrees": r.agrees,
        }
        for r in rows
    ]


@usage_app.command("reconcile")
def usage_reconcile(
    ctx: typer.Context,
    month: Annotated[str | None, typer.Option(help="YYYY-MM (default: this month).")] = None,
    settle_first: Annotated[
        bool, typer.Option("--settle/--no-settle", help="Settle pending entries first.")
    ] = True,
) -> None:
    """Prove counters, stream and ledger agree for MONTH; exit 1 when any partner does not.

    Run it when no traffic is in flight (e.g. after the month closed): a live access counted
    between the reads shows up as a disagreement.
    """
    chosen = _month(month)
    rows = asyncio.run(_reconcile(ctx.obj, chosen, settle_first))
    bad = [r for r in rows if not r["agrees"]]
    print_json({"month": chosen, "partners": rows, "agrees": not bad})
    if bad:
        err.print(
            f"[red]{len(bad)} partner(s) disagree for {chosen}[/]: "
            + ", ".join(
                f"{r['partner_id']} (counter {r['counter']}, stream {r['stream']}, "
                f"records {r['records']}, ledger {r['ledger']})"
                for r in bad
            )
        )
        raise typer.Exit(1)
    err.print(f"[green]{chosen}: counters, stream and ledger agree for {len(rows)} partner(s)[/]")
