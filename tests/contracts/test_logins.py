"""Console sign-in in the control plane (SQLite and PostgreSQL): passwords, invitations,
staff credentials, sessions; every change audited."""

from __future__ import annotations

from pathlib import Path

import pytest

from dataflow.contracts.actors import Actor
from dataflow.contracts.errors import InvalidInput, MemberNotFound
from dataflow.contracts.models import Plan, Role
from dataflow.contracts.repository import make_engine
from dataflow.contracts.service import ContractsService, SessionPolicy

from .conftest import Clock

GOOD = "uma senha bem comprida"


def _member(service: ContractsService, email: str | None = "ana@acme.example") -> int:
    p = service.register_partner("Acme", Plan.CONTINUOUS)
    return service.add_member(p.id, "Ana", email=email).id


def test_members_sign_in_with_their_email_and_password_never_their_key(
    service: ContractsService,
) -> None:
    mid = _member(service)
    key = service.create_key(service.member(mid).partner_id, member_id=mid)
    with pytest.raises(InvalidInput, match="at least 12"):
        service.set_member_password(mid, "curta")
    service.set_member_password(mid, GOOD, actor=Actor("staff:x(operator)", Role.OPERATOR))
    user = service.authenticate("ANA@acme.example ", GOOD)
    assert user is not None and user.member_id == mid and not user.is_staff
    assert service.authenticate("ana@acme.example", key) is None
    assert service.authenticate("ana@acme.example", GOOD + "x") is None
    assert service.authenticate("bia@acme.example", GOOD) is None
    with service.engine.connect() as conn:
        stored = conn.exec_driver_sql("SELECT password_hash FROM members").scalars().all()
    assert any(h and h.startswith("$argon2id$") for h in stored) and GOOD not in str(stored)
    assert [e.action for e in service.audit(entity="member")][-1] == "member.password"


def test_one_console_login_per_email(service: ContractsService) -> None:
    a = _member(service)
    p2 = service.register_partner("Beta", Plan.SANDBOX)
    b = service.add_member(p2.id, "Ana (Beta)", email="Ana@Acme.example").id
    service.set_member_password(a, GOOD)
    with pytest.raises(InvalidInput, match="already signs in"):
        service.set_member_password(b, GOOD)
    with pytest.raises(InvalidInput, match="e-mail"):
        service.invite_member(_member(service, email=None))


def test_an_invitation_works_once_and_expires(service: ContractsService, clock: Clock) -> None:
    mid = _member(service)
    token = service.invite_member(mid, actor=Actor("staff:x(operator)", Role.OPERATOR))
    user = service.accept_invitation(token, GOOD)
    assert user.member_id == mid
    with pytest.raises(InvalidInput, match="invitation"):
        service.accept_invitation(token, GOOD)
    late = service.invite_member(mid)
    clock.advance(days=8)
    with pytest.raises(InvalidInput, match="expired"):
        service.accept_invitation(late, GOOD)
    actions = [e.action for e in service.audit(entity="member")]
    assert actions.count("member.invite") == 2


def test_staff_sign_in_with_their_credential_or_a_password_set_from_it(
    service: ContractsService,
) -> None:
    token = service.create_staff("Fernanda", Role.FINANCE)
    user = service.authenticate("", token)
    assert (
        user is not None and user.role is Role.FINANCE and user.actor == "staff:Fernanda(finance)"
    )
    key_id = token.split("_")[1]
    login = service.set_staff_password(key_id, GOOD, actor=Actor(user.actor, user.role))
    assert login == f"dfa_{key_id}"
    assert service.authenticate(login, GOOD) == user
    assert service.authenticate(key_id, GOOD) == user
    assert service.authenticate(login, "errada mas longa") is None
    service.revoke_staff(key_id)
    assert service.authenticate(login, GOOD) is None and service.authenticate("", token) is None


def test_sessions_end_idle_old_signed_out_or_with_their_member(
    service: ContractsService, clock: Clock
) -> None:
    mid = _member(service)
    service.set_member_password(mid, GOOD)
    user = service.authenticate("ana@acme.example", GOOD)
    assert user is not None
    policy = SessionPolicy(idle_minutes=30, max_hours=12)
    token = service.open_session(user, via="password")
    service.flash(token, "ok:feito")
    assert service.console_session(token, policy) == (user, "ok:feito")
    assert service.console_session(token, policy) == (user, None)  # a message is shown once
    clock.advance(minutes=29)
    assert service.console_session(token, policy) is not None  # used: the idle clock restarts
    clock.advance(minutes=29)
    assert service.console_session(token, policy) is not None
    clock.advance(minutes=31)
    assert service.console_session(token, policy) is None
    clock.advance(minutes=1)
    assert service.console_session(token, policy) is None  # ended stays ended
    second = service.open_session(user, via="password")
    clock.advance(hours=13)
    assert service.console_session(second, SessionPolicy(idle_minutes=10**6)) is None
    third = service.open_session(user, via="password")
    service.end_session(third, user)
    assert service.console_session(third, policy) is None
    fourth = service.open_session(user, via="password")
    service.remove_member(mid)
    assert service.console_session(fourth, policy) is None
    with pytest.raises(MemberNotFound):
        service.set_member_password(mid, GOOD)
    actions = [e.action for e in service.audit()]
    assert actions.count("console.sign_in") == 4 and actions.count("console.sign_out") == 1


def test_the_cli_sets_a_password_and_invites(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from dataflow.cli import app

    env = {"DATAFLOW_DATA_DIR": str(tmp_path)}
    run = CliRunner().invoke
    assert run(app, ["partner", "create", "X Ltda", "--plan", "sandbox"], env=env).exit_code == 0
    added = run(app, ["member", "add", "1", "Ana", "--email", "ana@x.example"], env=env)
    member = added.stdout.strip().splitlines()[-1]
    short = run(app, ["member", "set-password", member, "--stdin"], input="curta\n", env=env)
    assert short.exit_code != 0
    done = run(app, ["member", "set-password", member, "--stdin"], input=GOOD + "\n", env=env)
    assert done.exit_code == 0, done.output
    invited = run(app, ["member", "invite", member], env=env)
    assert invited.stdout.strip().startswith("/console/convite?token=")
    service = ContractsService(make_engine(f"sqlite:///{tmp_path / 'dataflow.db'}"))
    assert service.authenticate("ana@x.example", GOOD) is not None
