"""`dataflow data …` and `dataflow release …`."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated

import msgspec
import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from dataflow.aggregation.factstore import FactStore
from dataflow.aggregation.reference import load_reference
from dataflow.aggregation.specs import load_specs
from dataflow.console import err, print_json
from dataflow.settings import Settings

__all__ = ["data_app", "release_app"]

data_app = typer.Typer(
    help="Invoice data: synthetic generation and XML ingestion.", no_args_is_help=True
)
release_app = typer.Typer(help="Protected releases: build and audit.", no_args_is_help=True)


@data_app.command("generate")
def data_generate(
    ctx: typer.Context,
    items: Annotated[
        int, typer.Option(help="Number of invoice items (10⁴ … 10⁸).", min=1)
    ] = 100_000,
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
    from dataflow.aggregation.generator import default_workers, generate, parse_months

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


@release_app.command("build")
def release_build(
    ctx: typer.Context,
    store: Annotated[
        Path | None, typer.Option(help="Fact store (default: DATA_DIR/store).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Releases directory (default: DATA_DIR/releases).")
    ] = None,
    tables: Annotated[Path | None, typer.Option(help="Directory of table specs (*.toml).")] = None,
    allow_revision: Annotated[
        bool,
        typer.Option(
            help="Publish months that changed since a release built before lineage "
            "protection (which cannot be differenced safely)."
        ),
    ] = False,
) -> None:
    """Build, protect and audit an immutable, versioned release of every table spec.

    Every earlier release in the releases directory is protected against too: subtracting
    two releases reveals no taxpayer's revision. A release whose audit fails is not published
    (exit 1; the staging directory is kept).
    """
    from dataflow.aggregation.release import (
        AuditFailed,
        LineageError,
        ReleaseExists,
        RevisedMonths,
        build_release,
    )

    settings: Settings = ctx.obj
    specs = load_specs(tables or settings.tables_dir)
    started = time.perf_counter()
    with err.status("building release…") as status:
        try:
            summary = build_release(
                FactStore(store or settings.store_dir),
                specs,
                out or settings.releases_dir,
                datasets_dir=settings.datasets_dir,
                progress=lambda t: status.update(t),
                allow_revision=allow_revision,
            )
        except (AuditFailed, RevisedMonths, LineageError, ReleaseExists) as e:
            err.print(f"[red]✗[/] {e}")
            raise typer.Exit(1) from None
    elapsed = time.perf_counter() - started
    for table_id, c in summary.tables.items():
        err.print(
            f"  {table_id}: {c['rows']:,} cells, {c['suppressed']:,} suppressed "
            f"({c['primary']:,} primary, {c['revision']:,} for revisions)"
        )
    if summary.lineage:
        err.print(f"  protected against {len(summary.lineage)} earlier release(s) as well")
    if summary.limited:
        err.print(
            f"[yellow]![/] {summary.limited:,} cell(s) were already pinned by earlier releases "
            "closer than their protection; protected as far as possible "
            "(internal/limited.parquet)"
        )
    err.print(f"[green]✓[/] release {summary.version} (audit passed) in {elapsed:.1f}s")
    err.print(f"  → {summary.path}")
    print_json(
        {
            "version": summary.version,
            "path": str(summary.path),
            "tables": summary.tables,
            "lineage": summary.lineage,
            "limited": summary.limited,
            "seconds": {k: round(v, 2) for k, v in summary.timings.items()},
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
    from dataflow.aggregation.xmlgen import generate_xml

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
) -> None:
    """Load NF-e/NFC-e XML into the fact store; rejected documents go to quarantine."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from dataflow.aggregation.ingest import ingest, quarantine_dir

    settings: Settings = ctx.obj
    fact_store = FactStore(store or settings.store_dir)
    n_workers = workers or os.cpu_count() or 1
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
            "workers": n_workers,
            "strict": strict,
            "seconds": round(elapsed, 2),
            "files_per_s": round(summary.files / elapsed, 1) if elapsed else None,
        }
    )


@release_app.command("audit")
def release_audit(
    ctx: typer.Context,
    release: Annotated[Path, typer.Argument(help="Release directory (holds manifest.json).")],
    exact: Annotated[
        bool, typer.Option(help="Exact min and max for every suppressed cell (more LPs).")
    ] = False,
    per_table: Annotated[
        bool, typer.Option(help="Also audit each table alone and report its time.")
    ] = False,
) -> None:
    """Re-run the disclosure audit on a release from its own files; exit 1 on any failure."""
    from dataflow.aggregation.lineage import LineageError
    from dataflow.aggregation.release_audit import audit_release

    settings: Settings = ctx.obj
    try:
        with err.status("auditing…"):
            report = audit_release(
                release, datasets_dir=settings.datasets_dir, exact=exact, per_table=per_table
            )
    except (OSError, ValueError, KeyError, LineageError) as e:
        err.print(f"[red]✗[/] cannot audit {release}: {e}")
        raise typer.Exit(2) from None
    for t in report.tables:
        mark = "[green]✓[/]" if t.failures == 0 else "[red]✗[/]"
        alone = f", {t.seconds:.2f}s alone" if t.seconds is not None else ""
        err.print(f"  {mark} {t.id}: {t.suppressed:,} suppressed, {t.failures} failing{alone}")
    print_json(msgspec.to_builtins(report))
    if not report.passed:
        err.print(f"[red]✗[/] audit failed: {report.failures} sensitive cell(s) under-protected")
        raise typer.Exit(1)
    err.print(f"[green]✓[/] audit passed ({report.lps:,} LPs, {report.seconds:.1f}s)")
