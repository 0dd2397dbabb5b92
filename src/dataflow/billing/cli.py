"""`dataflow billing …`: preview, monthly run, invoice lifecycle, DAE statements, budgets."""

from __future__ import annotations

import contextlib
import re
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated

import msgspec
import typer

from dataflow.billing.budget import analysis_fee_lines, compute_budget, load_budget_items
from dataflow.billing.errors import BillingError
from dataflow.billing.lifecycle import OPEN
from dataflow.billing.reference import EXAMPLE_WARNING, BillingReference
from dataflow.billing.schedule import schedules
from dataflow.billing.service import BillingService, compute_invoice
from dataflow.billing.ufemg import UfemgTable
from dataflow.contracts.actors import Actor
from dataflow.contracts.cli import cli_actor
from dataflow.contracts.errors import ContractInvalid, ContractsError
from dataflow.contracts.repository import make_engine
from dataflow.contracts.terms import ContractTerms
from dataflow.settings import Settings
from dataflow.terminal import err, print_json

__all__ = ["billing_app"]

billing_app = typer.Typer(help="Monthly billing in UFEMG and DAE statements.", no_args_is_help=True)


def _month(value: str | None) -> str | None:
    if value is not None and not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", value):
        raise typer.BadParameter(f"expected YYYY-MM, got {value!r}")
    return value


def _decimal(value: str | None) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(value)
    except InvalidOperation:
        raise typer.BadParameter(f"expected a decimal number, got {value!r}") from None


def _service(ctx: typer.Context) -> BillingService:
    settings: Settings = ctx.obj
    return BillingService(
        make_engine(settings.database_url),
        BillingReference.load(settings.datasets_dir),
        grace_days=settings.billing_grace_days,
        overdue_warning_days=settings.billing_overdue_warning_days,
    )


def _actor(ctx: typer.Context, service: BillingService) -> Actor:
    """Who acts (DATAFLOW_STAFF_TOKEN names a finance colleague; see `cli_actor`)."""
    return cli_actor(ctx.obj, service.lifecycle.contracts)


def _fail(e: Exception) -> typer.Exit:
    typer.echo(f"error: {e}", err=True)
    return typer.Exit(1)


def _to_json(obj: object) -> object:
    return msgspec.to_builtins(obj)


def _marked(ref: BillingReference, out: dict[str, object], *, cost_items: bool = False) -> None:
    """Add which reference values were examples to a JSON output, and say so on stderr."""
    out["example_values"] = found = ref.example_values(cost_items=cost_items)
    if found:
        err.print(f"[red]warning:[/] {EXAMPLE_WARNING}: {', '.join(found)}")


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
        ref = BillingReference.load(settings.datasets_dir)
        invoice = compute_invoice(
            terms,
            accesses=accesses,
            month=month,
            ufemg=UfemgTable.load(settings.datasets_dir / "ufemg.csv"),
            indices=ref.indices,
        )
    except (BillingError, ContractInvalid) as e:
        raise _fail(e) from None
    print_json(_to_json(invoice))


@billing_app.command("check-contract")
def billing_check_contract(
    ctx: typer.Context,
    contract: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
    until: Annotated[str | None, typer.Option(help="List price schedules up to this date.")] = None,
) -> None:
    """Validate a contract: errors exit 1; warnings (e.g. franchise < 3,000 UFEMG) are listed."""
    settings: Settings = ctx.obj
    try:
        terms = ContractTerms.from_file(contract)
        day = date.fromisoformat(until) if until else (terms.end or terms.start)
        found = schedules(terms, day, BillingReference.load(settings.datasets_dir).indices)
    except (BillingError, ContractInvalid, ValueError) as e:
        raise _fail(e) from None
    for w in terms.warnings():
        err.print(f"[yellow]warning:[/] {w}")
    print_json({"valid": True, "warnings": terms.warnings(), "schedules": _to_json(found)})


@billing_app.command("run")
def billing_run(
    ctx: typer.Context,
    month: Annotated[str, typer.Option(help="Billed month, YYYY-MM.", callback=_month)],
    issue_due: Annotated[
        bool, typer.Option(help="Also issue drafts whose grace period is over.")
    ] = False,
) -> None:
    """Bill every contract for MONTH (idempotent: reruns never touch issued invoices)."""
    from rich.progress import Progress

    service = _service(ctx)
    actor = _actor(ctx, service)
    try:
        with Progress(console=err, transient=True) as bar:
            task = bar.add_task(f"billing {month}", total=None)
            summary = service.run_month(
                month,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
                actor=actor,
            )
        issued = service.lifecycle.issue_due(actor=actor) if issue_due else []
    except (BillingError, ContractsError) as e:
        raise _fail(e) from None
    summary.issued = len(issued)
    err.print(
        f"[green]billed {month}:[/] {summary.contracts} contracts → {summary.created} new drafts, "
        f"{summary.updated} updated, {summary.unchanged} unchanged, {summary.adjustments} "
        f"late-usage adjustments ({summary.credit_notes} credit notes), {len(summary.skipped)} "
        f"skipped, {summary.issued} issued"
    )
    for pid, why in summary.skipped:
        err.print(f"[yellow]skipped partner {pid}:[/] {why}")
    if summary.overdue:
        err.print(f"[red]overdue now:[/] {', '.join(summary.overdue)}")
    for proposal in summary.warning_proposals:
        err.print(f"[yellow]proposal:[/] {proposal}")
    if summary.example_values:
        err.print(f"[red]warning:[/] {EXAMPLE_WARNING}: {', '.join(summary.example_values)}")
    print_json(_to_json(summary))


@billing_app.command("runs")
def billing_runs(ctx: typer.Context, limit: Annotated[int, typer.Option(min=1)] = 20) -> None:
    """The latest monthly runs, newest first (JSON): trigger, timings, what changed."""
    from dataflow.billing.repository import recent_runs

    with _service(ctx).engine.connect() as conn:
        print_json(recent_runs(conn, limit))


@billing_app.command("invoices")
def billing_invoices(
    ctx: typer.Context,
    month: Annotated[str | None, typer.Option(callback=_month)] = None,
    status: Annotated[str | None, typer.Option(help="draft, issued, paid or void.")] = None,
) -> None:
    """List invoices (JSON)."""
    print_json(_to_json(_service(ctx).lifecycle.list_invoices(month=month, status=status)))


@billing_app.command("show")
def billing_show(ctx: typer.Context, invoice: int) -> None:
    """One invoice with its lines and credit notes (JSON)."""
    lc = _service(ctx).lifecycle
    try:
        inv, lines = lc.get(invoice)
    except BillingError as e:
        raise _fail(e) from None
    print_json(
        {
            "invoice": _to_json(inv),
            "lines": _to_json(lines),
            "credit_notes": _to_json(lc.credit_notes(invoice)),
        }
    )


@billing_app.command("issue")
def billing_issue(
    ctx: typer.Context,
    invoice: Annotated[list[int] | None, typer.Argument(help="Draft ids to issue now.")] = None,
    due: Annotated[bool, typer.Option(help="Issue every draft past its grace period.")] = False,
) -> None:
    """Issue drafts (finance may issue before the grace period ends)."""
    service = _service(ctx)
    lc, actor = service.lifecycle, _actor(ctx, service)
    try:
        done = (
            lc.issue_due(actor=actor) if due else [lc.issue(i, actor=actor) for i in invoice or []]
        )
    except (BillingError, ContractsError) as e:
        raise _fail(e) from None
    for inv in done:
        err.print(f"issued {inv.number} (DAE {inv.dae_reference}, due {inv.due_date})")
    print_json(_to_json(done))


@billing_app.command("void")
def billing_void(ctx: typer.Context, invoice: int, reason: Annotated[str, typer.Option()]) -> None:
    """Void a draft or an unpaid issued invoice (its number stays used)."""
    service = _service(ctx)
    try:
        print_json(_to_json(service.lifecycle.void(invoice, reason, actor=_actor(ctx, service))))
    except (BillingError, ContractsError) as e:
        raise _fail(e) from None


@billing_app.command("pay")
def billing_pay(
    ctx: typer.Context,
    reference: Annotated[str, typer.Option(help="DAE reference number.")],
    amount: Annotated[str, typer.Option(help="Amount paid in BRL.", callback=_decimal)],
    paid_on: Annotated[str | None, typer.Option(help="Payment date (default today).")] = None,
) -> None:
    """Record a payment against a DAE reference number."""
    day = date.fromisoformat(paid_on) if paid_on else datetime.now(UTC).date()
    service = _service(ctx)
    try:
        inv = service.lifecycle.record_payment(
            reference, Decimal(amount), paid_on=day, actor=_actor(ctx, service)
        )
    except (BillingError, ContractsError) as e:
        raise _fail(e) from None
    print_json(_to_json(inv))


@billing_app.command("credit-note")
def billing_credit_note(
    ctx: typer.Context,
    invoice: int,
    ufemg: Annotated[str, typer.Option(help="Amount credited, UFEMG.", callback=_decimal)],
    reason: Annotated[str, typer.Option()],
) -> None:
    """Credit part of an issued invoice (converted at that invoice's UFEMG value)."""
    service = _service(ctx)
    try:
        note = service.lifecycle.credit_note(
            invoice, Decimal(ufemg), reason, actor=_actor(ctx, service)
        )
    except (BillingError, ContractsError) as e:
        raise _fail(e) from None
    print_json(_to_json(note))


@billing_app.command("fine")
def billing_fine(
    ctx: typer.Context,
    partner: int,
    month: Annotated[str, typer.Option(help="First invoice month that bills it.", callback=_month)],
    reason: Annotated[str, typer.Option(help="The CGMD-SEF decision (Art. 45 III).")],
    ufemg: Annotated[str | None, typer.Option(callback=_decimal)] = None,
    percent: Annotated[
        str | None, typer.Option(help="% of the month's supply value.", callback=_decimal)
    ] = None,
) -> None:
    """Impose an Art. 45 III fine (the same sanction as `partner fine`); billed at the next run.

    It goes on MONTH's invoice, or on the partner's next draft if that month is issued already.
    """
    service = _service(ctx)
    contracts = service.lifecycle.contracts
    try:
        fine = contracts.fine(
            partner,
            reason,
            Decimal(ufemg) if ufemg else None,
            percent=Decimal(percent) if percent else None,
            month=month,
            actor=_actor(ctx, service),
        )
    except ContractsError as e:
        raise _fail(e) from None
    typer.echo(str(fine.id))


@billing_app.command("overdue")
def billing_overdue(ctx: typer.Context) -> None:
    """Mark issued invoices past their due date overdue and list every overdue one (JSON).

    With DATAFLOW_BILLING_OVERDUE_WARNING_DAYS set, also proposes Art. 45 I warnings (stderr);
    nothing is ever imposed or suspended automatically.
    """
    service = _service(ctx)
    try:
        service.lifecycle.mark_overdue(actor=_actor(ctx, service))
    except (BillingError, ContractsError) as e:
        raise _fail(e) from None
    if service.overdue_warning_days is not None:
        for proposal in service.lifecycle.warning_proposals(service.overdue_warning_days):
            err.print(f"[yellow]proposal:[/] {proposal}")
    print_json(_to_json(service.lifecycle.overdue()))


@billing_app.command("statement")
def billing_statement(
    ctx: typer.Context,
    invoice: Annotated[list[int] | None, typer.Argument(help="Invoice ids.")] = None,
    month: Annotated[str | None, typer.Option(help="Every issued invoice of a month.")] = None,
    out: Annotated[Path, typer.Option(help="Output directory.")] = Path("statements"),
    allow_example_codes: Annotated[
        bool,
        typer.Option(help="Write statements although datasets/dae.toml holds example codes."),
    ] = False,
) -> None:
    """Write DAE statements: one PDF per invoice and one CSV for the finance systems."""
    from dataflow.billing.dae import Statement, statement_csv, write_statement_pdf  # reportlab

    service = _service(ctx)
    examples = service.ref.example_values()
    if examples and not allow_example_codes:
        raise _fail(
            ValueError(
                f"datasets/dae.toml holds EXAMPLE codes ({', '.join(examples)}): a DAE made with "
                "them cannot be paid. Put SEF/MG's revenue code and barcode agency code there "
                "(and set example = false), or pass --allow-example-codes for a marked specimen"
            )
        )
    lc = service.lifecycle
    ids = list(invoice or [])
    if month:
        ids += [i.id for i in lc.list_invoices(month=month) if i.status in (*OPEN, "paid")]
    if not ids:
        raise _fail(ValueError("no invoices given (ids or --month with issued invoices)"))
    out.mkdir(parents=True, exist_ok=True)
    statements = []
    try:
        for i in ids:
            inv, lines = lc.get(i)
            s = Statement(inv, lines, service.ref.dae)
            write_statement_pdf(s, out / f"dae-{inv.dae_reference}.pdf")
            statements.append(s)
    except BillingError as e:
        raise _fail(e) from None
    csv_path = out / (f"dae-{month}.csv" if month else f"dae-{ids[0]}.csv")
    csv_path.write_text(statement_csv(statements), encoding="utf-8")
    err.print(f"[green]{len(statements)} DAE statements[/] in {out} (CSV {csv_path.name})")
    result: dict[str, object] = {
        "pdf": [f"dae-{s.inv.dae_reference}.pdf" for s in statements],
        "csv": csv_path.name,
    }
    _marked(service.ref, result)
    print_json(result)


def _payer(
    service: BillingService, contract: int | None, payer: str | None, cnpj: str | None
) -> tuple[str, str | None]:
    """The payer given, or the partner of the request the DAE belongs to."""
    if payer:
        return payer, cnpj
    if contract is None:
        raise _fail(ValueError("say who pays: --payer NAME, or --contract ID of the request"))
    contracts = service.lifecycle.contracts
    try:
        partner = contracts.partner(contracts.contract(contract).partner_id)
    except ContractsError as e:
        raise _fail(e) from None
    return partner.name, cnpj or partner.cnpj


@billing_app.command("analysis-fee")
def billing_analysis_fee(
    ctx: typer.Context,
    payer: Annotated[str | None, typer.Option(help="Requester's name.")] = None,
    cnpj: Annotated[str | None, typer.Option(help="Requester's CNPJ.")] = None,
    on: Annotated[str | None, typer.Option(help="UFEMG of this date (default today).")] = None,
    contract: Annotated[
        int | None, typer.Option(help="The request it starts: its payment records pay-fee.")
    ] = None,
) -> None:
    """Issue the Art. 9 DAE of 50 UFEMG that starts a request (no budget before it is paid)."""
    service = _service(ctx)
    day = date.fromisoformat(on) if on else datetime.now(UTC).date()
    name, tax_id = _payer(service, contract, payer, cnpj)
    try:
        rate, lines = analysis_fee_lines(day, service.ref.ufemg)
        inv = service.lifecycle.create_request_invoice(
            kind="analysis_fee",
            payer_name=name,
            payer_cnpj=tax_id,
            lines=lines,
            brl_per_ufemg=rate,
            contract_id=contract,
            actor=_actor(ctx, service),
        )
    except (BillingError, ContractsError) as e:
        raise _fail(e) from None
    result = msgspec.to_builtins(inv)
    _marked(service.ref, result)
    print_json(result)


@billing_app.command("budget")
def billing_budget(
    ctx: typer.Context,
    items: Annotated[Path, typer.Option(help="Cost items (TOML [[items]]).", exists=True)],
    on: Annotated[str | None, typer.Option(help="Prices in force on (default today).")] = None,
    requested: Annotated[str | None, typer.Option(help="Request formalized on.")] = None,
    modality: Annotated[str, typer.Option(help="on_demand or continuous.")] = "on_demand",
    payer: Annotated[str | None, typer.Option(help="Issue its DAE to this payer.")] = None,
    cnpj: Annotated[str | None, typer.Option()] = None,
    contract: Annotated[
        int | None,
        typer.Option(help="The request it answers: records issue-budget; its payment, accept."),
    ] = None,
) -> None:
    """Quote a budget (Art. 12: Σ quantity × unit value per Art. 6 cost item); --payer or
    --contract issues its DAE."""
    service = _service(ctx)
    today = datetime.now(UTC).date()
    day = date.fromisoformat(on) if on else today
    try:
        budget = compute_budget(
            load_budget_items(items),
            on=day,
            requested_on=date.fromisoformat(requested) if requested else day,
            cost_items=service.ref.cost_items,
            ufemg=service.ref.ufemg,
            modality=modality,
        )
        out: dict[str, object] = {"budget": _to_json(budget)}
        if payer or contract is not None:
            name, tax_id = _payer(service, contract, payer, cnpj)
            inv = service.lifecycle.create_request_invoice(
                kind="on_demand",
                payer_name=name,
                payer_cnpj=tax_id,
                lines=budget.lines,
                brl_per_ufemg=budget.brl_per_ufemg,
                contract_id=contract,
                budget_ufemg=budget.total_ufemg,
                actor=_actor(ctx, service),
            )
            out["invoice"] = _to_json(inv)
    except (BillingError, ContractsError, KeyError) as e:
        raise _fail(e) from None
    _marked(service.ref, out, cost_items=True)
    print_json(out)


@billing_app.command("scheduler")
def billing_scheduler(ctx: typer.Context) -> None:
    """Run the monthly job (day 1, 06:00 America/Sao_Paulo) in the foreground until stopped."""
    from dataflow.billing.jobs import create_job_table, make_scheduler, schedule_monthly

    settings: Settings = ctx.obj
    if settings.migration_database_url:  # the app's role may not create the job table
        create_job_table(make_engine(settings.migration_database_url))
    engine = make_engine(settings.database_url)
    scheduler = make_scheduler(engine, blocking=True)
    schedule_monthly(
        scheduler,
        database_url=settings.database_url,
        datasets_dir=settings.datasets_dir,
        grace_days=settings.billing_grace_days,
    )
    err.print("billing scheduler started (Ctrl-C to stop); job store: the control-plane DB")
    with contextlib.suppress(KeyboardInterrupt, SystemExit):
        scheduler.start()
