"""The one `dataflow` command line: every job is a sub-command."""

from __future__ import annotations

import typer

from dataflow.aggregation.cli import release_app
from dataflow.api.cli import serve
from dataflow.billing.cli import billing_app
from dataflow.contracts.cli import (
    audit_app,
    contract_app,
    db_app,
    key_app,
    member_app,
    partner_app,
    report_app,
    sanction_app,
    staff_app,
)
from dataflow.contracts.errors import SchemaNotMigrated
from dataflow.invoices.cli import data_app
from dataflow.metering.cli import usage_app
from dataflow.settings import Settings, SettingsError

__all__ = ["app", "main"]

app = typer.Typer(
    help="dataflow: protected aggregates of MG electronic invoices, metered and billed in UFEMG.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(data_app, name="data")
app.add_typer(release_app, name="release")
app.add_typer(partner_app, name="partner")
app.add_typer(key_app, name="key")
app.add_typer(contract_app, name="contract")
app.add_typer(member_app, name="member")
app.add_typer(sanction_app, name="sanction")
app.add_typer(audit_app, name="audit")
app.add_typer(report_app, name="report")
app.add_typer(staff_app, name="staff")
app.add_typer(db_app, name="db")
app.add_typer(billing_app, name="billing")
app.add_typer(usage_app, name="usage")
app.command("serve")(serve)


@app.command("demo")
def demo(ctx: typer.Context) -> None:
    """Run the whole story on embedded defaults and say where the outputs are."""
    from dataflow.demo import run_demo

    run_demo(ctx.obj)


@app.callback()
def _root(ctx: typer.Context) -> None:
    try:
        ctx.obj = Settings.from_env()
    except SettingsError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None


def main() -> None:
    try:
        app()
    except SchemaNotMigrated as e:  # an operator's set-up step, not a bug: no traceback
        typer.echo(f"error: {e}", err=True)
        raise SystemExit(1) from None
