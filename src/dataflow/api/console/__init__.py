"""The console: server-rendered pages for finance, operators, auditors and partners (``/console``),
the public Art. 43 page (``/transparencia``), and every static asset the app serves itself.

Jinja templates, a small hand-written stylesheet, htmx for a few GET interactions; no JavaScript
build step and nothing from a CDN. Pages are Brazilian Portuguese. The console calls the same
services as the admin API, with the signed-in person as the actor, so it adds no back door:
roles, lifecycle rules and the audit log are the services'.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar import Request, Response, Router
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import ResponseHeader
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.middleware import DefineMiddleware
from litestar.middleware.csrf import CSRFMiddleware
from litestar.response import Redirect, Template
from litestar.static_files import create_static_files_router

from dataflow.aggregation.catalog import TableNotFound
from dataflow.aggregation.query import QueryError
from dataflow.api.console.auth import AUTH_HANDLERS
from dataflow.api.console.context import ConsoleState
from dataflow.api.console.downloads import DOWNLOAD_HANDLERS
from dataflow.api.console.errors import DomainError, explain
from dataflow.api.console.explorer import EXPLORER_HANDLERS
from dataflow.api.console.finance import FINANCE_HANDLERS
from dataflow.api.console.operators import OPERATOR_HANDLERS
from dataflow.api.console.partner import PARTNER_HANDLERS
from dataflow.api.console.public import PUBLIC_HANDLERS
from dataflow.api.console.render import page, query_url, template_config
from dataflow.api.console.session import SESSION_COOKIE, Forbidden, SignInRequired
from dataflow.api.errors import Problem

__all__ = ["STATIC_PATH", "ConsoleState", "console_routers", "template_config"]

STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_PATH = "/static"

_SECURITY_HEADERS = [
    ResponseHeader(
        name="Content-Security-Policy",
        value=(
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        ),
    ),
    ResponseHeader(name="X-Content-Type-Options", value="nosniff"),
    ResponseHeader(name="Referrer-Policy", value="same-origin"),
    ResponseHeader(name="X-Frame-Options", value="DENY"),
]


def _sign_in(request: Request[Any, Any, Any], exc: SignInRequired) -> Redirect:
    target = query_url("/console/entrar", proximo=request.url.path)
    response = Redirect(target, status_code=303)
    if request.cookies.get(SESSION_COOKIE):  # an ended session: drop its cookie
        response.delete_cookie(SESSION_COOKIE, path="/console")
    return response


def _error(
    request: Request[Any, Any, Any], status: int, title: str, message: str
) -> Template | Response[Any]:
    return page("erro.html", None, status=status, title=title, message=message)


def _forbidden(request: Request[Any, Any, Any], exc: Forbidden) -> Template | Response[Any]:
    return _error(request, 403, "Acesso não permitido", exc.message)


def _csrf(
    request: Request[Any, Any, Any], exc: PermissionDeniedException
) -> Template | Response[Any]:
    return _error(
        request,
        403,
        "Formulário expirado ou de outra origem",
        "O envio não trouxe o código de segurança (CSRF) desta sessão do navegador, então nada "
        "foi feito. Volte à página, recarregue-a e envie o formulário de novo.",
    )


def _not_found(request: Request[Any, Any, Any], exc: Exception) -> Template | Response[Any]:
    return _error(
        request,
        404,
        "Página não encontrada",
        f"Não há nada em {request.url.path} — ou não é visível para a sua conta. "
        "Use o menu para voltar.",
    )


def _problem(request: Request[Any, Any, Any], exc: Problem) -> Template | Response[Any]:
    return _error(request, exc.status, exc.title, exc.detail)


def _domain(request: Request[Any, Any, Any], exc: Exception) -> Template | Response[Any]:
    return _error(request, 422, "Não foi possível", explain(exc))


def _query(request: Request[Any, Any, Any], exc: QueryError) -> Template | Response[Any]:
    return _error(request, 400, "Consulta inválida", f"{exc.parameter}: {exc}")


def html_not_found(
    fallback: Any,
) -> Any:  # app-level: an unknown path under the console gets the console's 404 page
    def handler(request: Request[Any, Any, Any], exc: Exception) -> Any:
        path = request.url.path
        if path.startswith(("/console", "/transparencia")) and isinstance(exc, NotFoundException):
            return _not_found(request, exc)
        return fallback(request, exc)

    return handler


_HANDLERS: dict[type[Exception] | int, Any] = {
    SignInRequired: _sign_in,
    Forbidden: _forbidden,
    PermissionDeniedException: _csrf,
    NotFoundException: _not_found,
    TableNotFound: _not_found,
    Problem: _problem,
    QueryError: _query,
    **dict.fromkeys(DomainError, _domain),
}


def console_routers(secret: str, *, secure_cookies: bool) -> list[Router]:
    """The console (CSRF-protected), the public page and the static files."""
    csrf = CSRFConfig(
        secret=secret,
        cookie_name="df_csrf",
        cookie_path="/console",
        cookie_samesite="strict",
        cookie_secure=secure_cookies,
        cookie_httponly=True,  # the token reaches forms through the templates, not scripts
        header_name="x-csrftoken",
    )
    console = Router(
        path="/console",
        route_handlers=[
            *AUTH_HANDLERS,
            *FINANCE_HANDLERS,
            *OPERATOR_HANDLERS,
            *PARTNER_HANDLERS,
            *EXPLORER_HANDLERS,
            *DOWNLOAD_HANDLERS,
        ],
        middleware=[DefineMiddleware(CSRFMiddleware, config=csrf)],
        exception_handlers=_HANDLERS,
        response_headers=_SECURITY_HEADERS,
        include_in_schema=False,
    )
    public = Router(
        path="/",
        route_handlers=PUBLIC_HANDLERS,
        exception_handlers=_HANDLERS,
        response_headers=_SECURITY_HEADERS,
        include_in_schema=False,
    )
    static = create_static_files_router(
        path=STATIC_PATH,
        directories=[STATIC_DIR],
        cache_control=None,
        include_in_schema=False,
        name="static",
    )
    return [console, public, static]
