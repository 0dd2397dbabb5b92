"""Files: DAE statements (PDF, CSV) and access records (CSV, Parquet).

Staff of any role may download any invoice's files; a partner's member only their own partner's
(another partner's invoice is "not found", so its existence is not revealed either).
"""

from __future__ import annotations

import asyncio
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from litestar import Request, Response, get
from litestar.datastructures import State
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Stream

from dataflow.api.access_records import csv_chunks, parquet_body
from dataflow.api.console.context import ConsoleState, console_state
from dataflow.api.console.render import NO_STORE
from dataflow.api.console.session import SignInRequired, viewer
from dataflow.api.console.views import month_param
from dataflow.api.encode import PARQUET
from dataflow.billing.dae import Statement, statement_csv, write_statement_pdf
from dataflow.billing.errors import BillingError, InvoiceNotFound
from dataflow.billing.models import InvoiceLine
from dataflow.billing.repository import StoredInvoice
from dataflow.metering.models import billing_month

__all__ = ["DOWNLOAD_HANDLERS"]


async def _invoice(
    request: Request[Any, Any, Any], console: ConsoleState, invoice_id: int
) -> tuple[StoredInvoice, list[InvoiceLine]]:
    seen = await viewer(request, console)
    if seen is None:
        raise SignInRequired
    try:
        inv, lines = await asyncio.to_thread(console.billing.lifecycle.get, invoice_id)
    except InvoiceNotFound:
        raise NotFoundException(f"fatura {invoice_id}") from None
    if not seen.user.is_staff and inv.partner_id != seen.user.partner_id:
        raise NotFoundException(f"fatura {invoice_id}")
    return inv, lines


def _attachment(name: str) -> dict[str, str]:
    return {**NO_STORE, "Content-Disposition": f'attachment; filename="{name}"'}


def _statement(console: ConsoleState, inv: StoredInvoice, lines: list[InvoiceLine]) -> Statement:
    try:
        return Statement(inv, lines, console.reference.dae)
    except BillingError:
        raise NotFoundException(f"a fatura {inv.id} ainda não tem DAE (emita-a antes)") from None


def _pdf(statement: Statement) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = write_statement_pdf(statement, Path(tmp) / "dae.pdf")
        return path.read_bytes()


@get("/faturas/{invoice_id:int}/dae.pdf")
async def dae_pdf(
    request: Request[Any, Any, Any], state: State, invoice_id: FromPath[int]
) -> Response[bytes]:
    console = console_state(state)
    inv, lines = await _invoice(request, console, invoice_id)
    body = await asyncio.to_thread(_pdf, _statement(console, inv, lines))
    return Response(
        body, media_type="application/pdf", headers=_attachment(f"dae-{inv.dae_reference}.pdf")
    )


@get("/faturas/{invoice_id:int}/dae.csv")
async def dae_csv(
    request: Request[Any, Any, Any], state: State, invoice_id: FromPath[int]
) -> Response[bytes]:
    console = console_state(state)
    inv, lines = await _invoice(request, console, invoice_id)
    body = statement_csv([_statement(console, inv, lines)]).encode()
    return Response(
        body,
        media_type="text/csv",
        headers=_attachment(f"dae-{inv.dae_reference}.csv"),
    )


def _records(console: ConsoleState, pid: int, month: str, fmt: str) -> Response[bytes] | Stream:
    name = f"acessos-{pid}-{month}.{fmt}"
    engine = console.contracts.engine
    if fmt == "csv":
        return Stream(
            csv_chunks(engine, pid, month),
            media_type="text/csv",
            headers=_attachment(name),
        )
    return Response(parquet_body(engine, pid, month), media_type=PARQUET, headers=_attachment(name))


async def _invoice_records(
    request: Request[Any, Any, Any], state: State, invoice_id: int, fmt: str
) -> Response[bytes] | Stream:
    """The access records behind an invoice: its partner's counted accesses of its month."""
    console = console_state(state)
    inv, _ = await _invoice(request, console, invoice_id)
    if inv.partner_id is None or not inv.month:
        raise NotFoundException(f"fatura {invoice_id}: não é mensal, não tem registros de acesso")
    return await asyncio.to_thread(_records, console, inv.partner_id, inv.month, fmt)


@get("/faturas/{invoice_id:int}/acessos.csv")
async def invoice_records_csv(
    request: Request[Any, Any, Any], state: State, invoice_id: FromPath[int]
) -> Response[bytes] | Stream:
    return await _invoice_records(request, state, invoice_id, "csv")


@get("/faturas/{invoice_id:int}/acessos.parquet")
async def invoice_records_parquet(
    request: Request[Any, Any, Any], state: State, invoice_id: FromPath[int]
) -> Response[bytes] | Stream:
    return await _invoice_records(request, state, invoice_id, "parquet")


async def _own_records(
    request: Request[Any, Any, Any], state: State, fmt: str
) -> Response[bytes] | Stream:
    console = console_state(state)
    seen = await viewer(request, console)
    if seen is None or seen.user.is_staff:
        raise SignInRequired
    month = month_param(request.query_params.get("mes")) or billing_month(datetime.now(UTC))
    return await asyncio.to_thread(_records, console, seen.partner_id, month, fmt)


@get("/conta/acessos.csv")
async def own_records_csv(
    request: Request[Any, Any, Any], state: State
) -> Response[bytes] | Stream:
    return await _own_records(request, state, "csv")


@get("/conta/acessos.parquet")
async def own_records_parquet(
    request: Request[Any, Any, Any], state: State
) -> Response[bytes] | Stream:
    return await _own_records(request, state, "parquet")


DOWNLOAD_HANDLERS = [
    dae_pdf,
    dae_csv,
    invoice_records_csv,
    invoice_records_parquet,
    own_records_csv,
    own_records_parquet,
]
