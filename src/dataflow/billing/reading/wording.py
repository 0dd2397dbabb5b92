"""Invoice lines as people read them: in Portuguese, from the line's code and values.

Text stays within the PDF's standard fonts (WinAnsi: ``×``, ``—``, ``º`` but no arrows). The
stored ``description`` is the English record the JSON/CSV interfaces keep; what the DAE and
the console show is rendered here from ``code``, ``quantity``, ``unit_price_ufemg``, the amounts
and ``params`` (the values the description states). Lines stored before ``params`` existed are
rendered from their code and amounts alone: less detail, never English.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from decimal import Decimal

from dataflow import ptbr
from dataflow.billing.models import InvoiceLine
from dataflow.billing.ufemg import COST_ITEMS

__all__ = ["CODE_TITLES", "line_text"]

# A short name per line code (table headings, filters); ``line_text`` says the rest.
CODE_TITLES = {
    "usage": "Acessos",
    "franchise_true_up": "Complemento da franquia",
    "consumption_band": "Faixa de consumo",
    "minimum_floor": "Consumo mínimo mensal",
    "support": "Suporte técnico mensal",
    "development": "Desenvolvimento",
    "sandbox_usage": "Acessos no SANDBOX",
    "sandbox_window": "Janela de autorização do SANDBOX",
    "migration": "Migração para o fornecimento pago",
    "price_schedule": "Tabela de preços",
    "fine": "Multa",
    "adjustment": "Ajuste",
    "analysis_fee": "Taxa de análise",
}

_UNITS = {"licence-month": "licença-mês", "month": "mês", "hour": "hora", "unit": "unidade"}


_num = ptbr.numero


def _count(value: str | int | None) -> str:
    return ptbr.inteiro(int(value)) if value not in (None, "") else "—"


def _day(value: str | None) -> str:
    return ptbr.data(date.fromisoformat(value)) if value else "—"


def _prorated(p: Mapping[str, str]) -> str:
    if "days" not in p:
        return ""
    return f" proporcional a {p['days']}/{p['month_days']} dias"


def _usage(line: InvoiceLine, p: Mapping[str, str]) -> str:
    return f"Acessos: {_count(line.quantity)} × {_num(line.unit_price_ufemg)} UFEMG"


def _true_up(line: InvoiceLine, p: Mapping[str, str]) -> str:
    head = (
        f"Franquia de {_count(p['franchise'])} acessos (Art. 10, III)"
        if "franchise" in p
        else "Complemento da franquia (Art. 10, III)"
    )
    text = f"{head}: {_count(line.quantity)} acessos não utilizados × "
    text += f"{_num(line.unit_price_ufemg)} UFEMG"
    if "franchise_full" in p:
        text += f"; franquia de {_count(p['franchise_full'])}{_prorated(p)}"
        text += f" = {_count(p['franchise'])}"
    return text


def _band(line: InvoiceLine, p: Mapping[str, str]) -> str:
    used = f"{_count(line.quantity)} acessos utilizados"
    if p.get("franchise"):
        used += f", franquia de {_count(p['franchise'])} faturada"
    up_to = f" até {_count(p['up_to'])} acessos" if "up_to" in p else ""
    return f"Faixa de consumo{up_to} ({used})"


def _floor(line: InvoiceLine, p: Mapping[str, str]) -> str:
    text = "Consumo mínimo mensal de 3.000 UFEMG (Art. 10, II)"
    if "days" in p:
        text += f",{_prorated(p)} = {ptbr.ufemg(Decimal(p['floor']))}"
    if "consumption" in p:
        text += f": consumo de {ptbr.ufemg(Decimal(p['consumption']))} UFEMG"
    return text + f"; acrescidos {ptbr.ufemg(line.amount_ufemg)} UFEMG"


def _support(line: InvoiceLine, p: Mapping[str, str]) -> str:
    text = "Suporte técnico mensal (Art. 10, IV)"
    if "support_full" in p:
        text += f": {ptbr.ufemg(Decimal(p['support_full']))} UFEMG{_prorated(p)}"
    return text


def _development(line: InvoiceLine, p: Mapping[str, str]) -> str:
    text = "Desenvolvimento dos processos de extração e transformação (Art. 13, I)"
    if "instalments" not in p:
        return text
    what = (
        "pagamento único"
        if p["instalments"] == "1"
        else f"parcela {p['instalment']} de {p['instalments']}"
    )
    return f"{text}: {what} de {ptbr.ufemg(Decimal(p['cost']))} UFEMG"


def _sandbox_usage(line: InvoiceLine, p: Mapping[str, str]) -> str:
    period = f" de {_day(p['from'])} a {_day(p['to'])}" if "from" in p else ""
    text = f"Acessos no SANDBOX{period} (preço público afastado, Art. 29): {_count(line.quantity)}"
    if "cap" in p:
        share = ptbr.decimal_br(Decimal(p["share"]), 1)
        return text + f" de um limite de {_count(p['cap'])} ({share}%)"
    return text + (", sem limite definido" if "from" in p else "")


def _sandbox_window(line: InvoiceLine, p: Mapping[str, str]) -> str:
    if "start" not in p:
        return "Janela de autorização do SANDBOX (Art. 36)"
    if "end" not in p:
        return (
            f"Janela de autorização do SANDBOX a partir de {_day(p['start'])}, sem término "
            "(defina o fim: o Art. 36 permite 12 meses, 18 com prorrogação)"
        )
    return (
        f"Janela de autorização do SANDBOX de {_day(p['start'])} a {_day(p['end'])}: "
        f"dia {_count(p['day'])} de {_count(p['days'])} em {_day(p['at'])}"
    )


def _migration(line: InvoiceLine, p: Mapping[str, str]) -> str:
    if "start" not in p:
        return "Migração do SANDBOX para o fornecimento pago (Art. 40, III)"
    return (
        f"Migração para o fornecimento pago em {_day(p['start'])}: "
        f"{_count(p['accesses'])} acessos divididos por dias, {p['sandbox_days']} no SANDBOX / "
        f"{p['paid_days']} pagos = {_count(p['sandbox_accesses'])} / "
        f"{_count(p['paid_accesses'])}"
    )


def _schedule(line: InvoiceLine, p: Mapping[str, str]) -> str:
    if "effective" not in p:
        return "Preços em vigor (aditivo ou reajuste do contrato)"
    head = f"Preços em vigor desde {_day(p['effective'])}: "
    if p.get("kind") == "amendment":
        note = f" ({p['note']})" if p.get("note") else ""
        return head + f"aditivo de {_day(p['effective'])}{note}"
    if p.get("kind") == "readjustment":
        pct = _num(p.get("percent"))
        why = (
            f"{p['index']} acumulado em 12 meses até {ptbr.mes_curto(p['window'])}"
            if p.get("index")
            else "taxa fixa do contrato"
        )
        return head + f"reajuste de {pct}% ({why})"
    return head + "preços do contrato"


def _fine(line: InvoiceLine, p: Mapping[str, str]) -> str:
    text = "Multa (Art. 45, III)"
    if p.get("reason"):
        ref = f"sanção {p['sanction']}: " if p.get("sanction") else ""
        text += f" — {ref}{p['reason']}"
    if "percent" in p:
        text += f": {_num(p['percent'])}% de {ptbr.ufemg(Decimal(p['supply']))} UFEMG"
    if p.get("decided_for"):
        text += (
            f" (decidida para {ptbr.mes_curto(p['decided_for'])}, "
            "cobrada na fatura seguinte ainda aberta)"
        )
    return text


def _adjustment(line: InvoiceLine, p: Mapping[str, str]) -> str:
    if "for_month" not in p:
        return "Ajuste de acessos apurados após a emissão de fatura anterior"
    text = (
        f"Ajuste de {ptbr.mes(p['for_month'])}: acessos apurados passaram de "
        f"{_count(p['from'])} para {_count(p['to'])}"
    )
    return text + (f" após a emissão da fatura {p['number']}" if p.get("number") else "")


def _analysis_fee(line: InvoiceLine, p: Mapping[str, str]) -> str:
    return (
        "Análise de viabilidade e elaboração de orçamento (Art. 9º, I): "
        f"{ptbr.ufemg(line.amount_ufemg)} UFEMG"
    )


def _cost_item(line: InvoiceLine, p: Mapping[str, str]) -> str:
    item = p.get("item") or line.code.removeprefix("cost_item_")
    text = f"{item}. {COST_ITEMS.get(item, 'Item de custo')} (Art. 6º)"
    if "quantity" not in p:
        return text
    unit = _UNITS.get(p["unit"], p["unit"])
    text += (
        f": {_num(p['quantity'])} {unit} × {_num(line.unit_price_ufemg)} UFEMG "
        f"(em vigor desde {_day(p['effective_from'])}; {p['source']})"
    )
    return text + (f" — {p['note']}" if p.get("note") else "")


_RENDER: dict[str, Callable[[InvoiceLine, Mapping[str, str]], str]] = {
    "usage": _usage,
    "franchise_true_up": _true_up,
    "consumption_band": _band,
    "minimum_floor": _floor,
    "support": _support,
    "development": _development,
    "sandbox_usage": _sandbox_usage,
    "sandbox_window": _sandbox_window,
    "migration": _migration,
    "price_schedule": _schedule,
    "fine": _fine,
    "adjustment": _adjustment,
    "analysis_fee": _analysis_fee,
}


def line_text(line: InvoiceLine) -> str:
    """The line in Portuguese; a code this module does not know shows its code, never English."""
    if line.code.startswith("cost_item_"):
        return _cost_item(line, line.params)
    render = _RENDER.get(line.code)
    if render is None:
        return f"Item {line.code}"
    return render(line, line.params)
