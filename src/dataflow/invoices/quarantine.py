"""Quarantine: every rejected document, copied under the store with a machine-readable reason.

Entries are named by the SHA-256 of the document's bytes, so quarantining the same bytes twice (a
rerun after a crash, the same file under two names) yields one entry: idempotent by content.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

__all__ = ["QuarantineEntry", "Reason", "Rejection", "iter_quarantine", "quarantine"]


class Reason(StrEnum):
    """Why a document was not loaded (stable codes: tests and operators match on them)."""

    UNREADABLE = "unreadable_file"
    MALFORMED_XML = "malformed_xml"
    NOT_NFE_4_00 = "not_nfe_4_00"
    SCHEMA_VIOLATION = "schema_violation"
    ACCESS_KEY_CHECK_DIGIT = "access_key_check_digit"
    ACCESS_KEY_MISMATCH = "access_key_inconsistent"
    TOTALS_MISMATCH = "totals_mismatch"
    NO_PROTOCOL = "no_authorization_protocol"
    NOT_AUTHORIZED = "rejected_status"
    TEST_ENVIRONMENT = "test_environment"
    UNSUPPORTED_EVENT = "unsupported_event"


@dataclass(frozen=True, slots=True)
class Rejection:
    """A document that failed a check: the reason code and a sentence a person can act on."""

    reason: Reason
    detail: str


@dataclass(frozen=True, slots=True)
class QuarantineEntry:
    sha256: str
    source: str
    reason: Reason
    detail: str
    document: Path


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


def quarantine(root: Path, source: str, data: bytes, rejection: Rejection) -> str:
    """Copy ``data`` into ``root`` with its reason; return the entry id (content SHA-256)."""
    digest = hashlib.sha256(data).hexdigest()
    root.mkdir(parents=True, exist_ok=True)
    meta = {
        "sha256": digest,
        "source": source,
        "reason": rejection.reason.value,
        "detail": rejection.detail,
        "bytes": len(data),
    }
    # The document first, then its reason: an entry is complete once its .json exists.
    _atomic_write(root / f"{digest}.xml", data)
    _atomic_write(
        root / f"{digest}.json", (json.dumps(meta, ensure_ascii=False, indent=1) + "\n").encode()
    )
    return digest


def iter_quarantine(root: Path) -> Iterator[QuarantineEntry]:
    """Every complete quarantine entry under ``root``, in id order."""
    if not root.exists():
        return
    for meta_path in sorted(root.glob("*.json")):
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        yield QuarantineEntry(
            sha256=meta["sha256"],
            source=meta["source"],
            reason=Reason(meta["reason"]),
            detail=meta["detail"],
            document=meta_path.with_suffix(".xml"),
        )
