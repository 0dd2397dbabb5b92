"""SQLAlchemy Core schema of the control plane (SQLite by default, PostgreSQL in production).

This ``metadata`` is the Alembic target: every other package's ``tables.py`` defines its tables on
it, and ``dataflow.contracts.migrations`` holds the revisions. Change a table here → add a revision
(``dataflow db revision -m "why"`` autogenerates it) in the same commit.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

__all__ = [
    "admin_credentials",
    "api_keys",
    "audit_log",
    "console_sessions",
    "contacts",
    "contracts",
    "members",
    "metadata",
    "partners",
    "sanctions",
    "usage_ledger",
]

# Stable constraint names, so migrations can refer to them on every database.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# A partner row is also the *current view* of its contract: plan, cap and terms TOML mirror the
# partner's current contract (billing reads ``contract_toml``), rewritten on every contract change.
partners = Table(
    "partners",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False),
    Column("cnpj", String(14), nullable=True, unique=True),
    Column("plan", String(20), nullable=False),
    Column("monthly_cap", BigInteger, nullable=True),
    Column("contract_toml", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

contacts = Table(
    "contacts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("partner_id", Integer, ForeignKey("partners.id"), nullable=False, index=True),
    Column("kind", String(20), nullable=False),  # legal | technical | billing
    Column("name", String(200), nullable=False),
    Column("email", String(200), nullable=True),
    Column("phone", String(40), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# Paid supply requests and contracts (Art. 8–16) and sandbox authorizations (Art. 35–41).
contracts = Table(
    "contracts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("partner_id", Integer, ForeignKey("partners.id"), nullable=False, index=True),
    Column("kind", String(20), nullable=False),  # sandbox | continuous | on_demand
    Column("state", String(20), nullable=False),
    Column("resume_state", String(20), nullable=True),  # where a suspension returns to
    Column("terms_toml", Text, nullable=True),  # contracts.terms.ContractTerms
    Column("sla", Text, nullable=True),
    Column("modality", String(20), nullable=False),  # Art. 8 / 35 I b: continuous | on_demand
    Column("start_date", Date, nullable=True),
    Column("end_date", Date, nullable=True),
    Column("monthly_cap", BigInteger, nullable=True),
    Column("tables", Text, nullable=True),  # JSON list of table ids; NULL: every table
    Column("rate_per_second", Integer, nullable=True),
    Column("rate_per_minute", Integer, nullable=True),
    Column("secrecy_term_accepted", Boolean, nullable=False, default=False),
    Column("secrecy_signed_by", String(200), nullable=True),  # who signed it (Art. 35 I f)
    # terms finance approved (a contract to activate, a sandbox to migrate): an operator may put
    # exactly these in force; other priced terms need the finance role
    Column("approved_terms_toml", Text, nullable=True),
    Column("requested_at", DateTime(timezone=True), nullable=True),
    Column("fee_paid_at", DateTime(timezone=True), nullable=True),
    Column("budget_due", Date, nullable=True),  # Art. 12/13: 30 or 60 days after the fee
    Column("budget_issued_at", DateTime(timezone=True), nullable=True),
    Column("budget_ufemg", String(32), nullable=True),  # exact decimal as text
    Column("accepted_at", DateTime(timezone=True), nullable=True),
    Column("ended_at", DateTime(timezone=True), nullable=True),
    Column("end_reason", String(40), nullable=True),
    Column("successor_id", Integer, ForeignKey("contracts.id"), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# The authorized team (Art. 35 I e): only its members hold keys.
members = Table(
    "members",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("partner_id", Integer, ForeignKey("partners.id"), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("email", String(200), nullable=True),
    Column("added_at", DateTime(timezone=True), nullable=False),
    Column("removed_at", DateTime(timezone=True), nullable=True),
    # console sign-in (never the API key): argon2id hash, set through a one-time invitation
    Column("password_hash", String(200), nullable=True),
    Column("password_set_at", DateTime(timezone=True), nullable=True),
    Column("invite_hash", String(64), nullable=True, unique=True, index=True),  # its SHA-256
    Column("invite_expires_at", DateTime(timezone=True), nullable=True),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("key_id", String(32), primary_key=True),
    Column("partner_id", Integer, ForeignKey("partners.id"), nullable=False, index=True),
    Column("member_id", Integer, ForeignKey("members.id"), nullable=False, index=True),
    Column("secret_hash", String(64), nullable=False),
    Column("tables", Text, nullable=True),  # JSON list: key scope; NULL: the entitlement decides
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Column("revoke_reason", String(200), nullable=True),
)

# Art. 45: warning | suspension (from starts_at until `until`, then access resumes by itself) |
# fine (amount in UFEMG; billing turns it into an invoice line).
sanctions = Table(
    "sanctions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("partner_id", Integer, ForeignKey("partners.id"), nullable=False, index=True),
    Column("kind", String(20), nullable=False),
    Column("reason", Text, nullable=False),
    Column("imposed_at", DateTime(timezone=True), nullable=False),
    Column("starts_at", DateTime(timezone=True), nullable=False),
    Column("until", DateTime(timezone=True), nullable=True),
    Column("amount_ufemg", String(32), nullable=True),  # exact decimal as text
    Column("lifted_at", DateTime(timezone=True), nullable=True),
    Column("imposed_by", String(200), nullable=False),
    # fines only: a percentage of the month's supply instead of an amount, and the first month
    # whose invoice bills it (billing links the invoice line to the sanction: one path)
    Column("percent", String(32), nullable=True),
    Column("bill_month", String(7), nullable=True),
)

# Staff credentials for the admin/finance API: separate from partner keys.
admin_credentials = Table(
    "admin_credentials",
    metadata,
    Column("key_id", String(32), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("role", String(20), nullable=False),  # operator | finance | auditor
    Column("secret_hash", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    # an optional console password, set from a session opened with the credential itself
    Column("password_hash", String(200), nullable=True),
    Column("password_set_at", DateTime(timezone=True), nullable=True),
)

# Console sessions: the cookie holds a random token, the database its SHA-256. A session ends
# by sign-out, by idle time or by age, and with the credential or membership it was opened by.
console_sessions = Table(
    "console_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("kind", String(10), nullable=False),  # staff | member
    Column("staff_key_id", String(32), ForeignKey("admin_credentials.key_id"), nullable=True),
    Column("member_id", Integer, ForeignKey("members.id"), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_seen_at", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True), nullable=True),
    Column("flash", Text, nullable=True),  # one message for the next page (post/redirect/get)
)

# Append-only (triggers refuse UPDATE and DELETE): every change, who, when, before/after (JSON).
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False, index=True),
    Column("actor", String(200), nullable=False),
    Column("action", String(60), nullable=False),
    Column("entity", String(40), nullable=False),
    Column("entity_id", String(40), nullable=False),
    Column("partner_id", Integer, nullable=True, index=True),
    Column("before", Text, nullable=True),
    Column("after", Text, nullable=True),
)

# Settled access counts per partner and month: what billing reads (the meter settles into it).
usage_ledger = Table(
    "usage_ledger",
    metadata,
    Column("partner_id", Integer, ForeignKey("partners.id"), nullable=False),
    Column("month", String(7), nullable=False),
    Column("accesses", BigInteger, nullable=False),
    Column("settled_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("partner_id", "month", name="uq_usage_partner_month"),
)
