"""Signing in and out, passwords and invitations; ``/console/`` sends each person to their area."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

from litestar import Request, get, post
from litestar.datastructures import State
from litestar.response import Redirect, Template

from dataflow.api.console.context import console_state
from dataflow.api.console.errors import DomainError, explain
from dataflow.api.console.render import form, page, see_other
from dataflow.api.console.session import (
    SignInRequired,
    flash,
    session_cookie,
    viewer,
)
from dataflow.contracts.models import ConsoleUser, Role

__all__ = ["AUTH_HANDLERS"]

_HOME = {
    Role.FINANCE: "/console/financeiro",
    Role.OPERATOR: "/console/parceiros",
    Role.AUDITOR: "/console/auditoria",
}


def _home(user: ConsoleUser) -> str:
    if not user.is_staff:
        return "/console/conta"
    return _HOME[user.role or Role.AUDITOR]


def _safe_next(raw: str | None) -> str | None:
    """Only a path inside the console (never another site) after signing in."""
    if not raw:
        return None
    parts = urlsplit(raw)
    ok = not parts.scheme and not parts.netloc and parts.path.startswith("/console/")
    return raw if ok and "\\" not in raw else None


@get("/", name="console-home")
async def home(request: Request[Any, Any, Any], state: State) -> Redirect:
    seen = await viewer(request, console_state(state))
    if seen is None:
        return Redirect("/console/entrar")
    return Redirect(_home(seen.user))


@get("/entrar")
async def sign_in_page(request: Request[Any, Any, Any], state: State) -> Template:
    seen = await viewer(request, console_state(state))
    return page("entrar.html", None, proximo=request.query_params.get("proximo", ""), ja=seen)


@post("/entrar")
async def sign_in(request: Request[Any, Any, Any], state: State) -> Template | Redirect:
    console = console_state(state)
    fields = await form(request)
    login, secret = fields.get("login", ""), fields.get("segredo", "")
    user = await asyncio.to_thread(console.contracts.authenticate, login, secret)
    if user is None:
        return page(
            "entrar.html",
            None,
            status=401,
            erro=(
                "Usuário ou senha não conferem. Membros de parceiros entram com o e-mail e a "
                "senha definidos pelo convite; a equipe da SEF/MG, com a credencial dfa_… ou "
                "com o usuário dfa_… e a senha definida a partir dela."
            ),
            login=login,
            proximo=fields.get("proximo", ""),
        )
    via = "credential" if secret.strip().startswith("dfa_") else "password"
    token = await asyncio.to_thread(console.contracts.open_session, user, via=via)
    target = _safe_next(fields.get("proximo")) or _home(user)
    response = see_other(target)
    response.set_cookie(session_cookie(request, console, token))
    return response


@post("/sair")
async def sign_out(request: Request[Any, Any, Any], state: State) -> Redirect:
    console = console_state(state)
    seen = await viewer(request, console)
    if seen is not None:
        await asyncio.to_thread(console.contracts.end_session, seen.token, seen.user)
    response = see_other("/console/entrar")
    response.set_cookie(session_cookie(request, console, "", end=True))
    return response


@get("/senha")
async def password_page(request: Request[Any, Any, Any], state: State) -> Template:
    seen = await viewer(request, console_state(state))
    if seen is None:
        raise SignInRequired
    return page("senha.html", seen)


@post("/senha")
async def set_password(request: Request[Any, Any, Any], state: State) -> Redirect:
    """Change one's own password; the current secret (password or ``dfa_…``) proves it is them."""
    console = console_state(state)
    seen = await viewer(request, console)
    if seen is None:
        raise SignInRequired
    fields = await form(request)
    user = seen.user
    if fields.get("nova") != fields.get("confirmacao"):
        await flash(console, seen, "A confirmação não é igual à nova senha.", ok=False)
        return see_other("/console/senha")
    login = f"dfa_{user.staff_key_id}" if user.is_staff else ""
    if not user.is_staff:
        member = await asyncio.to_thread(console.contracts.member_login, user.member_id or 0)
        login = member or ""
    who = await asyncio.to_thread(console.contracts.authenticate, login, fields.get("atual", ""))
    if who is None or who.actor != user.actor:
        await flash(console, seen, "A senha (ou credencial) atual não confere.", ok=False)
        return see_other("/console/senha")
    try:
        if user.is_staff:
            assert user.staff_key_id is not None
            await asyncio.to_thread(
                console.contracts.set_staff_password,
                user.staff_key_id,
                fields.get("nova", ""),
                actor=seen.actor,
            )
            done = f"Senha definida. Seu usuário para entrar com ela: {login}."
        else:
            await asyncio.to_thread(
                console.contracts.set_member_password,
                user.member_id or 0,
                fields.get("nova", ""),
                actor=seen.actor,
            )
            done = "Senha alterada."
    except DomainError as e:
        await flash(console, seen, explain(e), ok=False)
        return see_other("/console/senha")
    await flash(console, seen, done)
    return see_other(_home(user))


@get("/convite")
async def invitation_page(request: Request[Any, Any, Any]) -> Template:
    return page("convite.html", None, token=request.query_params.get("token", ""))


@post("/convite")
async def accept_invitation(request: Request[Any, Any, Any], state: State) -> Template | Redirect:
    console = console_state(state)
    fields = await form(request)
    token = fields.get("token", "")
    if fields.get("nova") != fields.get("confirmacao"):
        return page(
            "convite.html", None, status=422, token=token, erro="A confirmação não confere."
        )
    try:
        user = await asyncio.to_thread(
            console.contracts.accept_invitation, token, fields.get("nova", "")
        )
    except DomainError as e:
        return page("convite.html", None, status=422, token=token, erro=explain(e))
    session = await asyncio.to_thread(console.contracts.open_session, user, via="invitation")
    response = see_other("/console/conta")
    response.set_cookie(session_cookie(request, console, session))
    return response


AUTH_HANDLERS = [
    home,
    sign_in_page,
    sign_in,
    sign_out,
    password_page,
    set_password,
    invitation_page,
    accept_invitation,
]
