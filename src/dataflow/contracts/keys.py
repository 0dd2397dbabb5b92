"""API keys: ``df_<key id>_<secret>``; only a SHA-256 of the secret is stored.

The secret has 256 bits of entropy, so a fast hash is enough (no password-style stretching);
comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

__all__ = [
    "KEY_PREFIX",
    "STAFF_PREFIX",
    "hash_secret",
    "key_scope",
    "new_key",
    "parse_key",
    "secret_matches",
]

KEY_PREFIX = "df"
STAFF_PREFIX = "dfa"  # admin/finance credentials: never accepted where a partner key is


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_key(prefix: str = KEY_PREFIX) -> tuple[str, str, str]:
    """(key id, secret, full key). The full key is shown once and never stored."""
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    return key_id, secret, f"{prefix}_{key_id}_{secret}"


def parse_key(token: str, prefix: str = KEY_PREFIX) -> tuple[str, str] | None:
    """(key id, secret) of a well-formed key with ``prefix``; None otherwise."""
    head, _, rest = token.partition("_")
    key_id, _, secret = rest.partition("_")
    if head != prefix or len(key_id) != 16 or not secret:
        return None
    return key_id, secret


def secret_matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored_hash)


def key_scope(
    key_tables: frozenset[str] | None, contract_tables: frozenset[str] | None
) -> frozenset[str] | None:
    """The tables a key may read: its own scope *within* its contract's, never beyond it.

    ``None`` means "no restriction" on either side; the answer is ``None`` only when neither
    restricts. Computed on every request from the current contract, so narrowing a contract
    narrows its keys as soon as the workers reload entitlements.
    """
    if key_tables is None:
        return contract_tables
    if contract_tables is None:
        return key_tables
    return key_tables & contract_tables
