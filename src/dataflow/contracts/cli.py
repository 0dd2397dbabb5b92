"""`dataflow partner …` and `dataflow key …`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dataflow.billing.models import ContractTerms
from dataflow.contracts.errors import ContractsError
from dataflow.contracts.models import Plan
from dataflow.contracts.repository import make_engine
from dataflow.contracts.service import ContractsService
from dataflow.settings import Settings

__all__ = ["key_app", "partner_app"]

partner_app = typer.Typer(help="Partners (data recipients).", no_args_is_help=True)
key_app = typer.Typer(help="API keys.", no_args_is_help=True)


def _service(ctx: typer.Context) -> ContractsService:
    settings: Settings = ctx.obj
    return ContractsService(make_engine(settings.database_url))


@partner_app.command("create")
def partner_create(
    ctx: typer.Context,
    name: str,
    plan: Annotated[Plan, typer.Option(help="sandbox (price waived) or continuous (paid).")],
    cap: Annotated[int | None, typer.Option(help="Monthly access cap.", min=0)] = None,
    contract: Annotated[
        Path | None, typer.Option(help="Contract terms (TOML).", exists=True, dir_okay=False)
    ] = None,
) -> None:
    """Register a partner; its id is printed last."""
    toml = None
    if contract is not None:
        toml = contract.read_text(encoding="utf-8")
        ContractTerms.from_toml(toml, source=str(contract))  # fail now, not at billing time
    partner = _service(ctx).create_partner(name, plan, monthly_cap=cap, contract_toml=toml)
    typer.echo(f"partner {partner.name!r} ({partner.plan}) created with id:", err=True)
    typer.echo(str(partner.id))


@key_app.command("create")
def key_create(ctx: typer.Context, partner: int) -> None:
    """Create an API key for PARTNER; the key is printed last, and only this once."""
    try:
        key = _service(ctx).create_key(partner)
    except ContractsError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from None
    typer.echo("new API key (store it now: it is not shown again):", err=True)
    typer.echo(key)


@key_app.command("revoke")
def key_revoke(ctx: typer.Context, key_id: str) -> None:
    """Revoke a key by its id (the 16 hex characters after 'df_')."""
    if not _service(ctx).revoke_key(key_id):
        typer.echo(f"error: no active key {key_id}", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked {key_id}")
