"""`dataflow billing …`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import msgspec
import typer

from dataflow.billing.errors import BillingError
from dataflow.billing.models import ContractTerms
from dataflow.billing.service import compute_invoice
from dataflow.billing.ufemg import UfemgTable
from dataflow.console import print_json
from dataflow.settings import Settings

__all__ = ["billing_app"]

billing_app = typer.Typer(help="Monthly billing in UFEMG and DAE statements.", no_args_is_help=True)


def _month(value: str) -> str:
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", value):
        raise typer.BadParameter(f"expected YYYY-MM, got {value!r}")
    return value


@billing_app.command("preview")
def billing_preview(
    ctx: typer.Context,
    contract: Annotated[
        Path, typer.Option(help="Contract terms (TOML).", exists=True, dir_okay=False)
    ],
    accesses: Annotated[int, typer.Option(help="Data accesses in the month.", min=0)],
    month: Annotated[str, typer.Option(help="Billed month, YYYY-MM.", callback=_month)],
) -> None:
    """Print the month's invoice for a contract as JSON (amounts as decimal strings)."""
    settings: Settings = ctx.obj
    try:
        terms = ContractTerms.from_file(contract)
        invoice = compute_invoice(
            terms,
            accesses=accesses,
            month=month,
            ufemg=UfemgTable.load(settings.datasets_dir / "ufemg.csv"),
        )
    except BillingError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from None
    print_json(msgspec.to_builtins(invoice))
