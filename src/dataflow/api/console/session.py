"""Who is looking: the session cookie, the guards every console handler calls, flash messages.

The cookie holds a random token (the database keeps its SHA-256): HttpOnly, SameSite=Strict,
path ``/console``, Secure when the request came over https (or the settings say so). Guards raise
``SignInRequired`` (→ the sign-in page) or ``Forbidden`` (→ a 403 page); a partner's member can
only ever reach their own partner's data, because their partner comes from the session, never
from the URL.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, cast

from litestar import Request
from litestar.datastructures import Cookie

from dataflow.api.console.context import ConsoleState
from dataflow.contracts.actors import Actor
from dataflow.contracts.models import ConsoleUser, Role

__all__ = [
    "SESSION_COOKIE",
    "Forbidden",
    "SignInRequired",
    "Viewer",
    "flash",
    "member",
    "session_cookie",
    "staff",
    "viewer",
]

SESSION_COOKIE = "df_console"
_SCOPE_KEY = "dataflow.console.viewer"


class SignInRequired(Exception):
    """No session, or it ended: the person signs in again."""


class Forbidden(Exception):
    """Signed in, but this page or action is not for them."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class Viewer:
    user: ConsoleUser
    token: str
    flash: str | None  # the message the previous action left (taken: shown once)

    @property
    def role(self) -> Role | None:
        return self.user.role

    @property
    def partner_id(self) -> int:
        assert self.user.partner_id is not None
        return self.user.partner_id

    @property
    def actor(self) -> Actor:
        """Who acts, for the services (which check the role themselves): a staff member with
        their role. A partner's member holds no staff role; the console only lets them revoke
        their own keys and set their own password, which no role governs."""
        return Actor(self.user.actor, self.user.role if self.user.is_staff else None)

    def can(self, *roles: Role) -> bool:
        return self.user.is_staff and self.user.role in roles


def secure(request: Request[Any, Any, Any], console: ConsoleState) -> bool:
    return console.secure_cookies or request.url.scheme == "https"


def session_cookie(
    request: Request[Any, Any, Any], console: ConsoleState, token: str, *, end: bool = False
) -> Cookie:
    return Cookie(
        key=SESSION_COOKIE,
        value="" if end else token,
        path="/console",
        httponly=True,
        samesite="strict",
        secure=secure(request, console),
        max_age=0 if end else None,
    )


async def viewer(request: Request[Any, Any, Any], console: ConsoleState) -> Viewer | None:
    """The signed-in person, or None (looked up once per request)."""
    scope = cast(dict[str, Any], request.scope)
    if _SCOPE_KEY in scope:
        return cast(Viewer | None, scope[_SCOPE_KEY])
    token = request.cookies.get(SESSION_COOKIE)
    found = None
    if token:
        found = await asyncio.to_thread(console.contracts.console_session, token, console.policy)
    seen = Viewer(user=found[0], token=token, flash=found[1]) if found and token else None
    scope[_SCOPE_KEY] = seen
    return seen


async def staff(request: Request[Any, Any, Any], console: ConsoleState, *roles: Role) -> Viewer:
    """A staff member with one of ``roles`` (any role when none are named)."""
    seen = await viewer(request, console)
    if seen is None:
        raise SignInRequired
    if not seen.user.is_staff:
        raise Forbidden("Esta página é da equipe da SEF/MG; a sua conta é de parceiro.")
    if roles and seen.role not in roles:
        names = ", ".join(_ROLE_NAMES[r] for r in roles)
        mine = _ROLE_NAMES[seen.role or Role.AUDITOR]
        raise Forbidden(f"Esta ação é do perfil {names}; o seu perfil é {mine}.")
    return seen


async def member(request: Request[Any, Any, Any], console: ConsoleState) -> Viewer:
    """A member of a partner's authorized team."""
    seen = await viewer(request, console)
    if seen is None:
        raise SignInRequired
    if seen.user.is_staff:
        raise Forbidden(
            "Esta página é da área do parceiro; entre com a conta de um membro da equipe."
        )
    return seen


async def flash(console: ConsoleState, seen: Viewer, message: str, *, ok: bool = True) -> None:
    """Leave a message for the next page the person sees (post/redirect/get)."""
    text = ("ok:" if ok else "erro:") + message
    await asyncio.to_thread(console.contracts.flash, seen.token, text)


_ROLE_NAMES = {Role.OPERATOR: "operação", Role.FINANCE: "financeiro", Role.AUDITOR: "auditoria"}
ROLE_NAMES = _ROLE_NAMES
