"""`dataflow release …`: build and audit protected releases."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import msgspec
import typer

from dataflow.aggregation.specs import load_specs
from dataflow.invoices.factstore import FactStore
from dataflow.settings import Settings
from dataflow.terminal import err, print_json

__all__ = ["release_app"]

release_app = typer.Typer(help="Protected releases: build and audit.", no_args_is_help=True)


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
    memory_limit: Annotated[
        float | None,
        typer.Option(
            help="Peak memory (GB) for the whole build: DuckDB gets a share of it, spills past "
            "it, and the facts are split into taxpayer-hash partitions that fit.",
            min=0.2,
        ),
    ] = None,
    partitions: Annotated[
        int | None,
        typer.Option(help="Taxpayer-hash partitions (default: from the store's size).", min=1),
    ] = None,
    engine: Annotated[
        str,
        typer.Option(
            help="Where contributions and cells are computed: duckdb (this machine) or spark "
            "(suppression and the audit stay on this machine, on the cells)."
        ),
    ] = "duckdb",
    master: Annotated[
        str | None,
        typer.Option(
            help="Spark master URL (spark://…, yarn, k8s://…, local[N]); default: spark-submit's, "
            "else local[*]."
        ),
    ] = None,
    spark_facts: Annotated[
        str | None,
        typer.Option(
            help="The facts as Spark reads them (hdfs://…, s3a://…; default: STORE/facts)."
        ),
    ] = None,
) -> None:
    """Build, protect and audit an immutable, versioned release of every table spec.

    Every earlier release in the releases directory is protected against too: subtracting
    two releases reveals no taxpayer's revision. A release whose audit fails is not published
    (exit 1; the staging directory is kept).
    """
    from dataflow.aggregation.release import (
        AuditFailed,
        BuildResources,
        LineageError,
        OutOfResources,
        ReleaseExists,
        RevisedMonths,
        build_release,
    )

    settings: Settings = ctx.obj
    if engine not in ("duckdb", "spark"):
        raise typer.BadParameter("duckdb or spark", param_hint="--engine")
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
                resources=BuildResources(
                    memory_gb=memory_limit,
                    partitions=partitions,
                    engine=engine,
                    master=master,
                    facts=spark_facts,
                ),
            )
        except (AuditFailed, RevisedMonths, LineageError, ReleaseExists, OutOfResources) as e:
            err.print(f"[red]✗[/] {e}", soft_wrap=True)  # one line, whatever the terminal
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
            "partitions": summary.partitions,
            "seconds": {k: round(v, 2) for k, v in summary.timings.items()},
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
