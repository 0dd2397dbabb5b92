"""`dataflow data …`: synthetic generation and XML ingestion into the fact store."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from dataflow.invoices.factstore import FactStore
from dataflow.invoices.reference import load_reference
from dataflow.settings import Settings
from dataflow.terminal import err, print_json

__all__ = ["data_app"]

data_app = typer.Typer(
    help="Invoice data: synthetic generation and XML ingestion.", no_args_is_help=True
)


@data_app.command("generate")
def data_generate(
    ctx: typer.Context,
    items: Annotated[
        int, typer.Option(help="Number of invoice items (10⁴ … 10⁹).", min=1)
    ] = 100_000,
    taxpayers: Annotated[
        int | None,
        typer.Option(
            help="Issuing taxpayers (CNPJ roots); default ~1 per 120 items, at most 250,000 "
            "(an estimate of a real MG month: datasets/README.md).",
            min=2,
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same bytes.", min=0)] = 1,
    months: Annotated[
        str, typer.Option(help="Inclusive range YYYY-MM:YYYY-MM.")
    ] = "2026-01:2026-03",
    out: Annotated[
        Path | None, typer.Option(help="Fact store directory (default: DATA_DIR/store).")
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            help="Worker processes (default: one per core); output does not change.", min=1
        ),
    ] = None,
) -> None:
    """Write a deterministic synthetic MG fact store (Parquet, partitioned by year/month)."""
    from dataflow.invoices.synthetic.generator import default_workers, generate, parse_months

    settings: Settings = ctx.obj
    try:
        month_list = parse_months(months)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--months") from None
    store = FactStore(out or settings.store_dir)
    ref = load_reference(settings.datasets_dir)
    started = time.perf_counter()
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("items"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task("planning…", total=items)
        summary = generate(
            store,
            ref,
            items=items,
            seed=seed,
            months=month_list,
            progress=lambda m, n: bar.update(task, advance=n, description=f"generated {m}"),
            workers=workers or default_workers(),
            taxpayers=taxpayers,
        )
    elapsed = time.perf_counter() - started
    nfce = summary.nfce_invoices / max(summary.invoices, 1)
    err.print(
        f"[green]✓[/] {summary.items:,} items in {summary.invoices:,} invoices "
        f"({nfce:.0%} NFC-e), {summary.taxpayers:,} taxpayers, "
        f"{summary.establishments:,} establishments, {summary.parts} parts "
        f"in {elapsed:.1f}s ({summary.items / max(elapsed, 1e-9):,.0f} items/s) → {store.root}"
    )
    print_json(
        {
            "store": str(store.root),
            "items": summary.items,
            "invoices": summary.invoices,
            "nfce_invoices": summary.nfce_invoices,
            "taxpayers": summary.taxpayers,
            "establishments": summary.establishments,
            "out_of_state_taxpayers": summary.out_of_state_taxpayers,
            "alnum_taxpayers": summary.alnum_taxpayers,
            "months": summary.months,
            "parts": summary.parts,
            "seconds": round(elapsed, 2),
        }
    )


@data_app.command("generate-xml")
def data_generate_xml(
    ctx: typer.Context,
    invoices: Annotated[int, typer.Option(help="Number of nfeProc documents.", min=1)] = 1000,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same bytes.")] = 1,
    out: Annotated[
        Path | None, typer.Option(help="Output directory (default: DATA_DIR/xml).")
    ] = None,
    cancel_share: Annotated[
        float, typer.Option(help="Share of invoices that also get a cancellation event.")
    ] = 0.0,
    alnum_share: Annotated[
        float, typer.Option(help="Share of issuers with an alphanumeric CNPJ (NT 2025.001).")
    ] = 0.1,
) -> None:
    """Write valid NF-e/NFC-e 4.00 nfeProc documents (and optional cancellation events)."""
    from dataflow.invoices.synthetic.xmlgen import generate_xml

    settings: Settings = ctx.obj
    target = out or settings.data_dir / "xml"
    started = time.perf_counter()
    with err.status("generating XML…") as status:
        summary = generate_xml(
            load_reference(settings.datasets_dir),
            target,
            invoices=invoices,
            seed=seed,
            cancel_share=cancel_share,
            alnum_share=alnum_share,
            progress=lambda n: status.update(f"generated {n:,} documents"),
        )
    elapsed = time.perf_counter() - started
    err.print(
        f"[green]✓[/] {summary.invoices:,} invoices ({summary.nfce:,} NFC-e), "
        f"{summary.cancellations:,} cancellations in {elapsed:.1f}s → {target}"
    )
    print_json(
        {
            "out": str(target),
            "invoices": summary.invoices,
            "nfe": summary.nfe,
            "nfce": summary.nfce,
            "cancellations": summary.cancellations,
            "items": summary.items,
            "seconds": round(elapsed, 2),
        }
    )


@data_app.command("ingest")
def data_ingest(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="XML files or directories (recursive).")],
    store: Annotated[
        Path | None, typer.Option(help="Fact store (default: DATA_DIR/store).")
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="Parser processes (default: CPU count).", min=1)
    ] = None,
    strict: Annotated[
        bool, typer.Option(help="Validate every document against the official XSD too.")
    ] = False,
    batch: Annotated[int, typer.Option(help="Files per committed batch.", min=1)] = 4_096,
    engine: Annotated[
        str,
        typer.Option(
            help="Who parses: local (a process pool) or spark (one Spark job per batch; "
            "the commit stays here)."
        ),
    ] = "local",
    master: Annotated[
        str | None,
        typer.Option(help="Spark master URL (default: spark-submit's, else local[*])."),
    ] = None,
) -> None:
    """Load NF-e/NFC-e XML into the fact store; rejected documents go to quarantine."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from dataflow.invoices.ingest import ingest, quarantine_dir

    settings: Settings = ctx.obj
    if engine not in ("local", "spark"):
        raise typer.BadParameter("local or spark", param_hint="--engine")
    fact_store = FactStore(store or settings.store_dir)
    n_workers = workers or os.cpu_count() or 1
    executor = None
    if engine == "spark":
        from dataflow.invoices.spark import SparkExecutor, spark_session

        executor = SparkExecutor(spark_session(master))
    started = time.perf_counter()
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task("ingesting", total=None)
        summary = ingest(
            paths,
            fact_store,
            workers=n_workers,
            strict=strict,
            batch_files=batch,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
            executor=executor,
        )
    elapsed = time.perf_counter() - started
    err.print(
        f"[green]✓[/] {summary.loaded:,} loaded, {summary.duplicates:,} duplicates, "
        f"{summary.cancelled:,} cancelled, {summary.quarantined:,} quarantined "
        f"of {summary.files:,} files in {elapsed:.1f}s → {fact_store.root}"
    )
    print_json(
        {
            "store": str(fact_store.root),
            **summary.as_json(),
            "quarantine": str(quarantine_dir(fact_store)),
            "workers": n_workers if executor is None else None,
            "engine": engine,
            "strict": strict,
            "seconds": round(elapsed, 2),
            "files_per_s": round(summary.files / elapsed, 1) if elapsed else None,
        }
    )
