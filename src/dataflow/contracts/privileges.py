"""The least-privilege PostgreSQL role the application connects as (README, "Security").

The schema owner runs the migrations; the app's role owns nothing, so it can neither alter the
audit log nor disable its triggers (both need ownership), and is granted only what the app does:
read and write every table, except the audit log (read and append) and Alembic's version table
(read). Default privileges give it the same on tables the owner creates later (new revisions, the
billing scheduler's job table), so a migration never leaves it locked out; rerunning the grant
after an upgrade is harmless and re-applies the audit log's restriction to whatever is new.
"""

from __future__ import annotations

from sqlalchemy import Connection, Engine, text

from dataflow.contracts.errors import InvalidInput

__all__ = ["APPEND_ONLY", "READ_ONLY", "app_role_grants", "grant_app_role"]

APPEND_ONLY = ("audit_log",)  # the app may read and insert; UPDATE/DELETE/TRUNCATE are refused
READ_ONLY = ("alembic_version",)  # the app checks the revision at start-up; the owner moves it


def _role_problem(conn: Connection, role: str, owner: str) -> str | None:
    """Why ``role`` would not be least-privilege (or does not exist); None when it is fine."""
    row = conn.execute(
        text(
            "SELECT rolsuper, rolbypassrls, pg_has_role(:role, :owner, 'MEMBER') "
            "FROM pg_roles WHERE rolname = :role"
        ),
        {"role": role, "owner": owner},
    ).first()
    if row is None:
        return f"role {role!r} does not exist; create it first (CREATE ROLE {role} LOGIN …)"
    superuser, bypass_rls, acts_as_owner = row
    if superuser or bypass_rls:
        return f"role {role!r} is a superuser: no privilege or trigger binds it"
    if acts_as_owner:
        return (
            f"role {role!r} is, or is a member of, the schema owner {owner!r}: it could alter "
            "the audit log or disable its triggers; the app needs a role of its own"
        )
    return None


def app_role_grants(conn: Connection, role: str) -> list[str]:
    """The statements that make ``role`` the app's role in the connection's schema.

    ``conn`` is the schema owner's (or a superuser's); the owner is whoever owns the audit log.
    Refuses a role that is a superuser, the owner or a member of it: privileges would not bind
    it."""
    if conn.dialect.name != "postgresql":
        raise InvalidInput(
            "database", "SQLite has no roles: the database file's permissions decide who writes"
        )
    schema, owner = conn.execute(
        text(
            "SELECT current_schema(), (SELECT tableowner FROM pg_tables "
            "WHERE schemaname = current_schema() AND tablename = 'audit_log')"
        )
    ).one()
    if owner is None:
        raise InvalidInput("schema", f"{schema!r} has no audit_log: run `dataflow db upgrade`")
    problem = _role_problem(conn, role, owner)
    if problem:
        raise InvalidInput("role", problem)
    q = conn.dialect.identifier_preparer.quote
    r, s, o = q(role), q(schema), q(owner)
    statements = [
        f"GRANT USAGE ON SCHEMA {s} TO {r}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {s} TO {r}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {s} TO {r}",
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {o} IN SCHEMA {s} "
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {r}",
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {o} IN SCHEMA {s} "
        f"GRANT USAGE, SELECT ON SEQUENCES TO {r}",
    ]
    for table in APPEND_ONLY:
        statements += [f"REVOKE ALL ON {s}.{q(table)} FROM {r}"]
        statements += [f"GRANT SELECT, INSERT ON {s}.{q(table)} TO {r}"]
    for table in READ_ONLY:
        statements += [f"REVOKE ALL ON {s}.{q(table)} FROM {r}"]
        statements += [f"GRANT SELECT ON {s}.{q(table)} TO {r}"]
    return statements


def grant_app_role(owner_engine: Engine, role: str) -> list[str]:
    """Grant ``role`` the app's privileges, as the schema owner, in one transaction; the
    statements run."""
    with owner_engine.begin() as conn:
        statements = app_role_grants(conn, role)
        for statement in statements:
            conn.execute(text(statement))
    return statements
