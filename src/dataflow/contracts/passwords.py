"""Console passwords: argon2id hashes (argon2-cffi), never the password itself.

Why argon2id and this library: a password, unlike an API key's 256-bit secret, is guessable, so
its hash must be slow and memory-hard to test offline; argon2id won the Password Hashing
Competition, is RFC 9106, and is OWASP's first recommendation. argon2-cffi (Hynek Schlawack) is
the maintained binding, writes the parameters into the PHC string and tells when a hash was made
with older parameters (``needs_rehash``), so a stronger setting applies at the next sign-in.
``hashlib.scrypt`` would have meant encoding salt and parameters, and comparing, by hand.

Parameters: OWASP's argon2id profile of m = 19 MiB, t = 2, p = 1 (about 0.1 s here): the
default profile (64 MiB, t = 3, p = 4) took 0.8 s a sign-in on the shared 2-core machine.
"""

from __future__ import annotations

import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from dataflow.contracts.errors import InvalidInput

__all__ = [
    "MAX_PASSWORD",
    "MIN_PASSWORD",
    "check_password_rules",
    "hash_password",
    "needs_rehash",
    "new_token",
    "token_hash",
    "verify_password",
]

MIN_PASSWORD = 12
MAX_PASSWORD = 256
_HASHER = PasswordHasher(time_cost=2, memory_cost=19_456, parallelism=1)
# Verifying against this when the login is unknown costs the same as a real check, so the time
# a refusal takes does not tell whether the login exists.
_DUMMY = _HASHER.hash(secrets.token_urlsafe(16))


def check_password_rules(password: str, login: str | None = None) -> None:
    """Refuse passwords that are too short or long, or the login itself (NIST SP 800-63B)."""
    if len(password) < MIN_PASSWORD:
        raise InvalidInput("password", f"use at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise InvalidInput("password", f"use at most {MAX_PASSWORD} characters")
    if login and password.strip().lower() == login.strip().lower():
        raise InvalidInput("password", "the password must not be the login")


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(password: str, stored: str | None) -> bool:
    """Whether ``password`` matches ``stored`` (an argon2 PHC string); False for no hash."""
    try:
        return _HASHER.verify(stored or _DUMMY, password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    return _HASHER.check_needs_rehash(stored)


def new_token() -> tuple[str, str]:
    """(token, its SHA-256): session and invitation tokens, 256 random bits, stored hashed."""
    token = secrets.token_urlsafe(32)
    return token, token_hash(token)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
