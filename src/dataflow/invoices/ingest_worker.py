"""The worker side of XML ingestion: one task (a run of files) → facts, invoices, what was rejected.

Each file is read and parsed once. Invoices in the usual layout take the fast path
(``nfe.batch``), checked in bulk at the end of the task; everything else, and whatever the fast
path hands back, is read by the reference (``nfe.reader``), which quarantines with a reason.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from lxml import etree

from dataflow.invoices.nfe.batch import FastTask
from dataflow.invoices.nfe.reader import (
    ParsedCancellation,
    ParsedInvoice,
    document_from_tree,
    parse_document,
    parser,
)
from dataflow.invoices.nfe.xsd import SchemaSet
from dataflow.invoices.quarantine import Reason, Rejection, quarantine
from dataflow.invoices.schema import FACT_SCHEMA, INVOICE_SCHEMA, MONEY

__all__ = ["TaskResult", "parse_files"]


@dataclass(slots=True)
class TaskResult:
    """What a worker returns for a run of files, in file order."""

    # One (kind, access key or path) per file: "i" invoice, "c" cancellation, "r" rejected.
    order: list[tuple[str, str]] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    # Arrow tables of the task's invoices, built in the worker (cheap to ship, no per-row objects
    # for the parent to handle); ``_doc`` is the invoice's file position in ``order``.
    facts: pa.Table | None = None
    invoices: pa.Table | None = None


def _read(path: str) -> bytes:
    """The file's bytes in one read call: no file object (a third of ``open().read()``'s cost
    here); reads on to the end if the size changed or is not known (pipes, /proc)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        data = os.read(fd, size + 1)
        if len(data) != size:
            parts = [data]
            while part := os.read(fd, 1 << 20):
                parts.append(part)
            data = b"".join(parts)
        return data
    except OSError as e:
        if e.filename is None:  # os.read errors (a directory) do not name the file
            e.filename = path
        raise
    finally:
        os.close(fd)


def parse_files(paths: list[str], strict: bool, qdir: str) -> TaskResult:
    """Read, parse and check ``paths``; quarantine the rejected documents under ``qdir``."""
    schemas: SchemaSet | None = None
    if strict:
        from dataflow.invoices.nfe.xsd import schema_set

        schemas = schema_set()
    order: list[tuple[str, str]] = [("r", p) for p in paths]
    rejected: list[tuple[str, str]] = []
    slow: list[tuple[int, ParsedInvoice]] = []

    def settle(i: int, data: bytes, doc: ParsedInvoice | ParsedCancellation | Rejection) -> None:
        if isinstance(doc, ParsedInvoice):
            order[i] = ("i", doc.access_key)
            slow.append((i, doc))
        elif isinstance(doc, ParsedCancellation):
            order[i] = ("c", doc.access_key)
        else:
            quarantine(Path(qdir), paths[i], data, doc)
            rejected.append((paths[i], doc.reason.value))

    fast = FastTask()
    taken: dict[int, bytes] = {}
    xml_parser = parser()
    for i, path in enumerate(paths):
        try:
            data = _read(path)
        except OSError as e:
            # Nothing to copy: record the reason with an empty document.
            quarantine(Path(qdir), path, b"", Rejection(Reason.UNREADABLE, f"cannot read: {e}"))
            rejected.append((path, Reason.UNREADABLE.value))
            continue
        try:
            root = etree.fromstring(data, parser=xml_parser)
        except etree.XMLSyntaxError:
            settle(i, data, parse_document(data))
            continue
        schema = schemas.for_root(root.tag) if schemas is not None else None
        valid = schema is not None and schema.validate(root)
        key = fast.add(i, root) if schema is None or valid else None
        if key is None:
            # Once the XSD has passed, the reference gives the same verdict without running it.
            settle(i, data, document_from_tree(root, schemas=None if valid else schemas))
        else:
            order[i] = ("i", key)
            taken[i] = data
    facts, invoices, deferred = fast.finish()
    for i in deferred:
        order[i] = ("r", paths[i])
        settle(i, taken[i], parse_document(taken[i], schemas=schemas))
    if slow:
        slow.sort(key=lambda s: s[0])
        more_facts, more_invoices = reference_tables([d for _, d in slow], [i for i, _ in slow])
        if facts is None or invoices is None:
            facts, invoices = more_facts, more_invoices
        else:
            facts = pa.concat_tables([facts, more_facts])
            invoices = pa.concat_tables([invoices, more_invoices])
    return TaskResult(order=order, rejected=rejected, facts=facts, invoices=invoices)


def _cents(values: list[int]) -> pa.Array:
    c = np.asarray(values, dtype=np.int64)
    words = np.empty((len(c), 2), dtype=np.int64)
    words[:, 0] = c
    words[:, 1] = np.where(c < 0, -1, 0)  # two's-complement sign extension to 128 bits
    return pa.Array.from_buffers(MONEY, len(c), [None, pa.py_buffer(words.tobytes())])


def reference_tables(docs: list[ParsedInvoice], positions: list[int]) -> tuple[pa.Table, pa.Table]:
    """Facts (one row per item) and invoices (one row per invoice) of ``docs``."""
    ts = INVOICE_SCHEMA.field("issued_at").type
    invoices = pa.table(
        {
            "access_key": pa.array([d.access_key for d in docs], pa.string()),
            "model": pa.array([d.model for d in docs], pa.int16()),
            "issued_at": pa.array([d.issued_at_us for d in docs], pa.int64()).cast(ts),
            "issuer_cnpj": pa.array([d.issuer_cnpj for d in docs], pa.string()),
            "total_value": _cents([d.total_cents for d in docs]),
            "status": pa.array(["authorized"] * len(docs), pa.string()),
        },
        schema=INVOICE_SCHEMA,
    )
    counts = np.array([len(d.value_cents) for d in docs], dtype=np.int64)
    take = pa.array(np.repeat(np.arange(len(docs)), counts))
    per_invoice = {
        "access_key": invoices["access_key"],
        "model": invoices["model"],
        "issued_at": invoices["issued_at"],
        "issuer_cnpj": invoices["issuer_cnpj"],
        "issuer_root": pa.array([d.issuer_cnpj[:8] for d in docs], pa.string()),
        "issuer_cnae": pa.array([d.issuer_cnae for d in docs], pa.string()),
        "issuer_uf": pa.array([d.issuer_uf for d in docs], pa.string()),
        "issuer_municipality": pa.array([d.issuer_municipality for d in docs], pa.string()),
        "recipient_uf": pa.array([d.recipient_uf for d in docs], pa.string()),
    }
    columns: dict[str, pa.Array | pa.ChunkedArray] = {
        name: pc.take(col, take) for name, col in per_invoice.items()
    }
    columns["cfop"] = pa.array([c for d in docs for c in d.cfop], pa.string())
    columns["ncm"] = pa.array([c for d in docs for c in d.ncm], pa.string())
    columns["quantity"] = pa.array([q for d in docs for q in d.quantity], pa.float64())
    columns["unit"] = pa.array([u for d in docs for u in d.unit], pa.string())
    columns["item_value"] = _cents([v for d in docs for v in d.value_cents])
    columns["icms_value"] = _cents([v for d in docs for v in d.icms_cents])
    facts = pa.table({f.name: columns[f.name] for f in FACT_SCHEMA}, schema=FACT_SCHEMA)
    # Helper columns, dropped before writing: file position in the task, partition of issue.
    helpers = {
        "_doc": pa.array(positions, pa.int32()),
        "_year": pa.array([d.year for d in docs], pa.int16()),
        "_month": pa.array([d.month for d in docs], pa.int8()),
    }
    for name, col in helpers.items():
        invoices = invoices.append_column(name, col)
        facts = facts.append_column(name, pc.take(col, take))
    return facts, invoices
