"""Templates: the Jinja environment (pt-BR filters), pages, redirects, actions with a message."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

from jinja2 import Environment
from litestar import Request
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect, Template
from litestar.template.config import TemplateConfig

from dataflow import ptbr
from dataflow.api.console.context import ConsoleState
from dataflow.api.console.errors import DomainError, explain
from dataflow.api.console.session import ROLE_NAMES, Viewer, flash
from dataflow.billing.reading.wording import CODE_TITLES, line_text

__all__ = [
    "NO_STORE",
    "act",
    "form",
    "page",
    "query_url",
    "see_other",
    "template_config",
]

TEMPLATES = Path(__file__).resolve().parent / "templates"
NO_STORE = {"Cache-Control": "no-store"}
T = TypeVar("T")

STATUS_NAMES = {
    "draft": "rascunho",
    "issued": "emitida",
    "overdue": "vencida",
    "paid": "paga",
    "void": "anulada",
    "active": "ativo",
    "suspended": "suspenso",
    "ended": "encerrado",
    "cancelled": "cancelado",
    "pending": "pendente",
    "requested": "solicitado",
    "fee_paid": "taxa paga",
    "budget_issued": "orçamento emitido",
    "accepted": "aceito",
    "authorized": "autorizado",
    "extended": "prorrogado",
    "sandbox": "SANDBOX",
    "continuous": "contínuo",
    "on_demand": "sob demanda",
    "warning": "advertência",
    "suspension": "suspensão",
    "fine": "multa",
}


# Level and measure names of the tables (DESIGN §10 standard names), for headings and filters.
COLUMN_NAMES = {
    "uf": "UF",
    "mesoregion": "Mesorregião",
    "microregion": "Microrregião",
    "municipality": "Município (código IBGE)",
    "cnae_section": "CNAE seção",
    "cnae_division": "CNAE divisão",
    "cnae_group": "CNAE grupo",
    "cnae_class": "CNAE classe",
    "cnae_subclass": "CNAE subclasse",
    "ncm_chapter": "NCM capítulo",
    "ncm_heading": "NCM posição",
    "ncm_subheading": "NCM subposição",
    "ncm_item": "NCM item",
    "cfop": "CFOP",
    "model": "Modelo (55 NF-e, 65 NFC-e)",
    "year": "Ano",
    "quarter": "Trimestre",
    "month": "Mês (AAAA-MM)",
    "week": "Semana ISO",
    "recipient_uf": "UF de destino",
    "item_value": "Valor dos produtos (R$)",
    "invoice_count": "Notas fiscais",
    "issuer_count": "Contribuintes",
    "flag": "Sinal",
}


def pt(value: object) -> str:
    """A status, plan or kind in Portuguese (the value itself when there is no word for it)."""
    text = str(value)
    return STATUS_NAMES.get(text, text)


def _value(value: object) -> str:
    """A measure from a JSON page (a float): 2 places, the API's own figure otherwise intact."""
    return (
        ptbr.decimal_br(repr(value), 2)
        if isinstance(value, float)
        else ptbr.inteiro(int(str(value)))
    )


def _env(env: Environment) -> None:
    env.filters.update(
        brl=ptbr.brl,
        ufemg=ptbr.ufemg,
        inteiro=ptbr.inteiro,
        numero=ptbr.numero,
        data=ptbr.data,
        data_hora=ptbr.data_hora,
        mes=ptbr.mes,
        mes_curto=ptbr.mes_curto,
        cnpj=ptbr.cnpj,
        pt=pt,
        valor=_value,
        coluna=lambda name: COLUMN_NAMES.get(str(name), str(name)),
        linha=line_text,
        codigo=lambda code: CODE_TITLES.get(str(code), str(code)),
        papel=lambda role: ROLE_NAMES.get(role, str(role)) if role else "",
    )
    env.globals.update(percentual=ptbr.percentual, query_url=query_url)


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    return TemplateConfig(
        directory=TEMPLATES,
        engine=JinjaTemplateEngine,
        engine_callback=lambda engine: _env(engine.engine),
    )


def page(template: str, seen: Viewer | None, *, status: int = 200, **context: Any) -> Template:
    """A console page: the person, their pending message, no caching of private data."""
    message = seen.flash if seen is not None else None
    kind, _, text = (message or "").partition(":")
    return Template(
        template_name=template,
        context={"viewer": seen, "flash": (kind, text) if message else None, **context},
        headers=NO_STORE,
        status_code=status,
    )


def see_other(path: str) -> Redirect:
    """After a form: go (303) to the page that shows the result."""
    return Redirect(path=path, status_code=303)


def query_url(path: str, **params: object) -> str:
    kept = {k: v for k, v in params.items() if v not in (None, "")}
    return f"{path}?{urlencode(kept)}" if kept else path


async def form(request: Request[Any, Any, Any]) -> dict[str, str]:
    """The posted fields (the CSRF middleware has read and checked the body already)."""
    data = await request.form()
    return {k: str(v).strip() for k, v in data.items() if k != "_csrf_token"}


async def act(
    console: ConsoleState,
    seen: Viewer,
    back: str,
    action: Callable[[], T],
    done: Callable[[T], str],
) -> Redirect:
    """Run one service call off the loop; say what happened on the next page, either way."""
    try:
        result = await asyncio.to_thread(action)
    except DomainError as e:
        await flash(console, seen, explain(e), ok=False)
    except ValueError as e:  # a number or date the form could not hold
        await flash(console, seen, f"Valor inválido: {e}. Corrija e envie de novo.", ok=False)
    else:
        await flash(console, seen, done(result))
    return see_other(back)
