"""Credentials out of logs: any value shaped like a partner key or a staff credential goes.

Partner keys are ``df_<key id>_<secret>`` and staff credentials ``dfa_<key id>_<secret>``
(``contracts/keys.py``: a 16-character id, a URL-safe base64 secret). Redacting by parameter
name only (``?token=…``) let ``?bearer=df_…``, a key pasted into a path segment or an unknown
parameter reach the access log in clear; so the *shape* is matched wherever it appears — query
string, path, an exception's text — with percent-encoded separators too. Names that say
"credential" are still redacted whatever their value (a bare secret has no shape to recognise).

The key id alone (``df_<id>``, no secret) is public — it is how the access log names a key — and
stays. Over-redacting a log line costs nothing; missing a key costs a rotation.
"""

from __future__ import annotations

import re

__all__ = ["REDACTED", "redact"]

REDACTED = "[redacted]"

_PCT = r"%(?:25)*"  # a percent sign, percent-encoded any number of times over
_SEP = rf"(?:_|{_PCT}5f)"
# prefix, separator, the 16-character id, separator, then the secret (and anything glued to it)
_KEY_SHAPE = re.compile(rf"(?i)dfa?{_SEP}[a-z0-9-]{{16}}{_SEP}(?:[a-z0-9_-]|{_PCT}[0-9a-f]{{2}})+")
_WORDS = ("key", "token", "secret", "password", "passwd", "auth", "bearer", "credential")
_SECRET_PARAM = re.compile(rf"(?i)((?:^|[&;?])[^=&;]*(?:{'|'.join(_WORDS)})[^=&;]*=)[^&;]*")


def redact(text: str) -> str:
    """``text`` with every key-shaped value and every credential-named parameter's value
    replaced by ``[redacted]``. Fit for a path, a query string, a message."""
    if not text:
        return text
    # Both patterns need literal letters (a key starts "df", a name holds one of _WORDS): a
    # case-folded substring test rules them out in well under a microsecond, where the regexes
    # cost ~10 µs on a query with a long code list (every request's path and query pass here).
    # casefold, not lower: IGNORECASE also matches "ſ" to "s" and "K" (Kelvin) to "k".
    lowered = text.casefold()
    if "df" in lowered:
        text = _KEY_SHAPE.sub(REDACTED, text)
    if "=" in text and any(word in lowered for word in _WORDS):
        text = _SECRET_PARAM.sub(rf"\1{REDACTED}", text)
    return text
