"""The fast path of XML ingestion: a worker task's invoices read into columns, checked in bulk.

``reader.document_from_tree`` is the reference reading: it takes any document and says precisely
why one is rejected, but costs about twice the parse. Nearly every document that reaches ingestion
is an authorized ``nfeProc``, so this module reads those with plain child iterations that keep the
reference's semantics (the last child of a tag wins, the first ``enderEmit``, the same item walk),
keeps their values as strings, and checks a whole task of documents at once: one regex run per
group of columns, access-key check digits in numpy, totals in integer centavos cast by Arrow,
dates by Arrow's ISO 8601 parser and zone database.

The reading itself (``read_python``) is also compiled (``_read.pyx``, built by ``uv sync``):
the same steps on libxml2's nodes, without a Python object per element, about 8 µs a document
instead of 60. ``READ`` is the compiled one when it is built, ``read_python`` otherwise; tests
check that both give the same result on every document.

It never rejects anything. A document it cannot read this way (bare NFe, events, CPF issuers,
repeated sections), or that fails any check, goes back to the reference reading, which accepts or
rejects it with its reason. So it accepts a document only when the reference would accept it with
the same facts (the tests compare the two on every sample and on thousands of mutated documents),
and both quarantine the same files for the same reasons.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
from lxml import etree

from dataflow.invoices.checkdigits import access_key_check_digits_array
from dataflow.invoices.nfe.reader import (
    _AMB,
    _CFOP,
    _CNAE,
    _CNF,
    _CNPJ,
    _DATETIME,
    _IBGE7,
    _KEY,
    _MOD,
    _MONEY,
    _NCM,
    _NNF,
    _ONE,
    _QTY,
    _SERIE,
    _UF,
    _UF_CODE,
    _UNIT,
    AUTHORIZED_STATUS,
    DS,
    NS,
    SEP,
    encoded_key,
    instant,
    joined,
)
from dataflow.invoices.schema import FACT_SCHEMA, INVOICE_SCHEMA, MONEY

__all__ = ["COMPILED_READ", "READ", "FastTask", "read_python"]

_N = "{" + NS + "}"


def _tags(*names: str) -> list[str]:
    return [_N + n for n in names]


_NFEPROC = _N + "nfeProc"
_ROOT_KIDS = _tags("NFe", "protNFe")
_INF, _SIG = _N + "infNFe", "{" + DS + "}Signature"
_IDE, _EMIT, _DEST, _TOTAL = _tags("ide", "emit", "dest", "total")
_IDE_VALUES = _tags("cUF", "cNF", "mod", "serie", "nNF", "dhEmi", "tpEmis", "cDV", "tpAmb")
_ID_DEST = _N + "idDest"
_CNPJ_TAG, _CNAE_TAG, _ENDER_EMIT = _tags("CNPJ", "CNAE", "enderEmit")
_CMUN, _UF_TAG, _ENDER_DEST = _tags("cMun", "UF", "enderDest")
_ICMSTOT, _ISSQNTOT, _VSERV = _tags("ICMSTot", "ISSQNtot", "vServ")
_ICMSTOT_VALUES = _tags(
    "vICMSDeson",
    "vST",
    "vFCPST",
    "vProd",
    "vFrete",
    "vSeg",
    "vDesc",
    "vII",
    "vIPI",
    "vIPIDevol",
    "vOutro",
    "vNF",
)
_INFPROT = _N + "infProt"
_PROT_VALUES = _tags("tpAmb", "chNFe", "cStat")

# Items: the reference's walk (every det and item value under infNFe, up to total), its tags coded
# one character each so that a string comparison checks the layout of all items at once.
_ITEM_CODES = {
    "det": "D",
    "NCM": "N",
    "CFOP": "C",
    "uCom": "U",
    "qCom": "Q",
    "vProd": "V",
    "indTot": "I",
    "vICMS": "c",
    "total": "T",
}
_CODE = {_N + name: code for name, code in _ITEM_CODES.items()}
_ITEM_WALK = tuple(_CODE)
_N_ITEM_COLUMNS = 7
_T_TOTAL = _N + "total"
_MAX_ITEMS = 990
_WITH_ICMS = "DNCUQVIc" * _MAX_ITEMS
_NO_ICMS = "DNCUQVI" * _MAX_ITEMS
_MIXED = re.compile("(?:DNCUQVIc?){1,990}")
_NITEMS = [str(i) for i in range(1, _MAX_ITEMS + 1)]

# Header values, in the order ``read_python`` lists them, checked per group of columns that share a
# pattern: (columns, pattern, optional). An optional column may be empty (element absent).
_MONEY_COLUMNS = range(15, 27)  # ICMSTot, in _ICMSTOT_VALUES order; vServ is column 27
_KEY_COL, _MOD_COL, _DH_COL, _CNPJ_COL, _CNAE_COL, _CMUN_COL, _UF_COL, _DEST_COL = (
    0,
    3,
    6,
    10,
    11,
    12,
    13,
    14,
)
_HEADER_CHECKS: tuple[tuple[tuple[int, ...], re.Pattern[str], bool], ...] = (
    ((0,), _KEY, False),
    ((1,), _UF_CODE, False),
    ((2,), _CNF, False),
    ((3,), _MOD, False),
    ((4,), _SERIE, False),
    ((5,), _NNF, False),
    ((6,), _DATETIME, False),
    ((7, 8), _ONE, False),  # tpEmis, cDV
    ((9,), _AMB, False),
    ((10,), _CNPJ, False),
    ((11,), _CNAE, True),
    ((12,), _IBGE7, False),
    ((13,), _UF, False),
    ((14,), _UF, True),  # recipient UF (or the issuer's for idDest 1)
    (tuple(_MONEY_COLUMNS), _MONEY, False),
    ((27,), _MONEY, True),  # ISSQNtot/vServ
)
_ITEM_CHECKS: tuple[tuple[tuple[int, ...], re.Pattern[str], bool], ...] = (
    ((0,), _NCM, False),
    ((1,), _CFOP, False),
    ((2,), _UNIT, False),
    ((3,), _QTY, False),
    ((4, 6), _MONEY, False),  # vProd, vICMS ("0" where the item has none)
    ((5,), re.compile(r"[01]"), False),
)
_JOINED = {p: joined(p) for _, p, _ in (*_HEADER_CHECKS, *_ITEM_CHECKS)}
_INVOICES = INVOICE_SCHEMA.append(pa.field("_doc", pa.int32()))
_INVOICES = _INVOICES.append(pa.field("_year", pa.int16())).append(pa.field("_month", pa.int8()))
_FACTS = FACT_SCHEMA.append(pa.field("_doc", pa.int32()))
_FACTS = _FACTS.append(pa.field("_year", pa.int16())).append(pa.field("_month", pa.int8()))
_TS_UTC = pa.timestamp("us", tz="UTC")
_TS_LOCAL = INVOICE_SCHEMA.field("issued_at").type
# ICMSTot columns (positions in _ICMSTOT_VALUES) that add to and subtract from vNF.
_NAMES = [t[len(_N) :] for t in _ICMSTOT_VALUES]
_V_PROD, _V_NF = _NAMES.index("vProd"), _NAMES.index("vNF")
_VNF_PLUS = [_NAMES.index(n) for n in ("vST", "vFCPST", "vFrete", "vSeg", "vOutro", "vII")]
_VNF_PLUS += [_NAMES.index(n) for n in ("vIPI", "vIPIDevol")]
_VNF_MINUS = [_NAMES.index(n) for n in ("vDesc", "vICMSDeson")]


def _texts(elements: list[etree._Element]) -> list[str]:
    return [e.text or "" for e in elements]


def _children(element: etree._Element) -> dict[object, etree._Element]:
    """Tag → the last child with that tag: the reference's reading, in one plain iteration
    (tag-filtered iterators cost more to set up than the few children they skip)."""
    return {c.tag: c for c in element}


def _first(element: etree._Element, tag: str) -> etree._Element | None:
    for c in element:
        if c.tag == tag:
            return c
    return None


_Reader = Callable[[etree._Element], tuple[list[str], list[list[str]]] | None]


def read_python(root: etree._Element) -> tuple[list[str], list[list[str]]] | None:
    """An authorized nfeProc read as the reference reads it → (header values, item columns), or
    None where the reference should read it (other layouts, failed checks)."""
    if root.tag != _NFEPROC or root.get("versao") != "4.00":
        return None
    kids = list(root)
    if [k.tag for k in kids] != _ROOT_KIDS:  # one NFe (the reference takes the first), one protocol
        return None
    nfe, prot = kids
    kids = list(nfe)
    tags = [k.tag for k in kids]
    if tags[:1] != [_INF] or tags.count(_INF) != 1 or tags.count(_SIG) != 1:  # also: no children
        return None
    inf = kids[0]
    ident = inf.get("Id") or ""
    if inf.get("versao") != "4.00" or not ident.startswith("NFe"):
        return None
    sections = _children(inf)
    ide, emit, total = sections.get(_IDE), sections.get(_EMIT), sections.get(_TOTAL)
    if ide is None or emit is None or total is None:
        return None
    values = {c.tag: c.text for c in ide}
    c_uf, c_nf, mod, serie, n_nf, dh_emi, tp_emis, c_dv, tp_amb = (
        values.get(t) or "" for t in _IDE_VALUES
    )
    id_dest = values.get(_ID_DEST)
    kids = list(emit)
    tags = [k.tag for k in kids]
    issuer = dict(zip(tags, kids, strict=True))
    cnpj_el, cnae_el = issuer.get(_CNPJ_TAG), issuer.get(_CNAE_TAG)
    cnpj = (cnpj_el.text or "") if cnpj_el is not None else ""
    cnae = (cnae_el.text or "") if cnae_el is not None else ""
    if not cnpj or tags.count(_ENDER_EMIT) != 1:  # a CPF issuer; the reference takes the first
        return None
    values = {c.tag: c.text for c in issuer[_ENDER_EMIT]}
    c_mun, uf = values.get(_CMUN) or "", values.get(_UF_TAG) or ""
    dest_uf = ""
    dest = sections.get(_DEST)
    ender = _first(dest, _ENDER_DEST) if dest is not None else None
    if ender is not None:
        found = _first(ender, _UF_TAG)
        dest_uf = (found.text or "") if found is not None else ""
    icms_tot = _first(total, _ICMSTOT)
    if icms_tot is None:
        return None
    values = {c.tag: c.text for c in icms_tot}
    money = [values.get(t) or "" for t in _ICMSTOT_VALUES]
    v_serv = ""
    for part in total:  # the reference's findtext("ISSQNtot/vServ"): the first one anywhere
        if part.tag == _ISSQNTOT:
            found = _first(part, _VSERV)
            if found is not None:
                v_serv = found.text or ""
                break
    info = _first(prot, _INFPROT)
    if info is None:
        return None
    values = {c.tag: c.text for c in info}
    p_amb, p_key, p_stat = (values.get(t) or "" for t in _PROT_VALUES)
    key = ident[3:]
    if (
        p_stat not in AUTHORIZED_STATUS
        or p_key != key
        or tp_amb != "1"
        or p_amb == "2"
        or key != encoded_key(c_uf, dh_emi, cnpj, mod, serie, n_nf, tp_emis, c_nf, c_dv)
    ):
        return None
    items = _read_items(inf)
    if items is None:
        return None
    header = [key, c_uf, c_nf, mod, serie, n_nf, dh_emi, tp_emis, c_dv, tp_amb, cnpj, cnae]
    header += (c_mun, uf, dest_uf or (uf if id_dest == "1" else ""), *money, v_serv)
    return header, items


def _read_items(inf: etree._Element) -> list[list[str]] | None:
    found = list(inf.iter(*_ITEM_WALK))
    tags = [e.tag for e in found]
    try:
        end = tags.index(_T_TOTAL)
    except ValueError:
        return None
    codes = "".join(map(_CODE.__getitem__, tags[:end]))
    texts = _texts(found[:end])
    if codes == _WITH_ICMS[:end] and end % 8 == 0:  # every item has its vICMS
        starts = range(0, end, 8)
        icms = texts[7::8]
    elif codes == _NO_ICMS[:end] and end % 7 == 0:  # no item has one (Simples Nacional)
        starts = range(0, end, 7)
        icms = ["0"] * len(starts)
    elif _MIXED.fullmatch(codes):
        starts = range(0)
        positions = [m.start() for m in re.finditer("D", codes)]
        ends = [*positions[1:], end]
        icms = [texts[e - 1] if e - s == 8 else "0" for s, e in zip(positions, ends, strict=True)]
        columns = [[texts[s + k] for s in positions] for k in range(1, 7)]
        dets = [found[s] for s in positions]
    else:
        return None
    if starts:
        columns = [texts[k : end : starts.step] for k in range(1, 7)]
        dets = found[0 : end : starts.step]
    elif not icms:
        return None
    if [d.get("nItem") for d in dets] != _NITEMS[: len(dets)]:
        return None
    columns.append(icms)
    return columns


def _compiled() -> _Reader | None:
    try:
        from dataflow.invoices.nfe._read import read
    except ImportError:  # a source tree used without its build step
        return None
    return read


COMPILED_READ = _compiled()
READ: _Reader = COMPILED_READ or read_python


def _bad(
    columns: list[list[str]], checks: tuple[tuple[tuple[int, ...], re.Pattern[str], bool], ...]
) -> set[int]:
    """Rows with a value that does not match its column's pattern: one regex run per group of
    columns when all match, a scan of the group's values otherwise."""
    bad: set[int] = set()
    for group, pattern, optional in checks:
        values = columns[group[0]] if len(group) == 1 else [v for c in group for v in columns[c]]
        if _JOINED[pattern].fullmatch(SEP.join(filter(None, values) if optional else values)):
            continue
        n = len(columns[group[0]])
        bad.update(
            i % n
            for i, v in enumerate(values)
            if not (optional and not v) and not pattern.fullmatch(v)
        )
    return bad


def _money(values: list[str]) -> pa.Array:
    return pa.array(values, pa.string()).cast(MONEY)


def _cents(money: pa.Array) -> npt.NDArray[np.int64]:
    """Integer centavos of a fresh, non-negative decimal128 array (the low word of each value)."""
    words = np.frombuffer(money.buffers()[1], dtype=np.int64)
    return words[2 * money.offset : 2 * (money.offset + len(money)) : 2]


def _instants(dh: list[str]) -> tuple[pa.Array, pa.Array, pa.Array, npt.NDArray[np.bool_]]:
    """UTC instants, local year and month (America/Sao_Paulo) of ``_DATETIME``-shaped values, and
    which of them exist as dates: Arrow's ISO 8601 parser and time-zone conversion in one pass,
    or ``reader.instant`` one by one where Arrow refuses (a date such as 2026-02-30; no zone
    database)."""
    try:
        utc = pa.array(dh, pa.string()).cast(_TS_UTC)
        local = utc.cast(_TS_LOCAL)
        return (
            local,
            pc.year(local).cast(pa.int16()),
            pc.month(local).cast(pa.int8()),
            (np.ones(len(dh), dtype=bool)),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        found = [instant(v) for v in dh]
        parts = [f or (0, 0, 0) for f in found]
        return (
            pa.array([p[0] for p in parts], pa.int64()).cast(_TS_LOCAL),
            pa.array([p[1] for p in parts], pa.int16()),
            pa.array([p[2] for p in parts], pa.int8()),
            np.array([f is not None for f in found], dtype=bool),
        )


class FastTask:
    """The fast-path invoices of one worker task: ``add`` each parsed document, then ``finish``."""

    def __init__(self) -> None:
        self.positions: list[int] = []
        self.header: list[list[str]] = []
        self.items: list[list[str]] = [[] for _ in range(_N_ITEM_COLUMNS)]
        self.counts: list[int] = []

    def add(self, position: int, root: etree._Element) -> str | None:
        """Take the document at ``position`` (→ its access key) or leave it to the reference."""
        read = READ(root)
        if read is None:
            return None
        header, items = read
        self.positions.append(position)
        self.header.append(header)
        for column, values in zip(self.items, items, strict=True):
            column += values
        self.counts.append(len(items[0]))
        return header[0]

    def finish(self) -> tuple[pa.Table | None, pa.Table | None, list[int]]:
        """(facts, invoices) of the documents that pass every check, with ``_doc`` = position,
        and the positions of the others, for the reference reading."""
        if not self.positions:
            return None, None, []
        header = [list(c) for c in zip(*self.header, strict=True)]
        items, counts = self.items, np.asarray(self.counts)
        doc_of_item = np.repeat(np.arange(len(counts)), counts)
        bad = _bad(header, _HEADER_CHECKS)
        bad.update(doc_of_item[i] for i in _bad(items, _ITEM_CHECKS))
        positions = np.asarray(self.positions)
        if bad:  # rare: leave those out before the numeric checks, which need valid values
            keep = np.ones(len(counts), dtype=bool)
            keep[list(bad)] = False
            item_keep = keep[doc_of_item]
            header = [[v for v, k in zip(c, keep, strict=True) if k] for c in header]
            items = [[v for v, k in zip(c, item_keep, strict=True) if k] for c in items]
            counts, positions = counts[keep], positions[keep]
        deferred = sorted(self.positions[i] for i in bad)
        if not len(positions):
            return None, None, deferred
        ok, facts, invoices = _checked(header, items, counts, positions)
        if not ok.all():
            deferred = sorted([*deferred, *positions[~ok].tolist()])
        return facts, invoices, deferred


def _checked(
    header: list[list[str]],
    items: list[list[str]],
    counts: npt.NDArray[np.int64],
    positions: npt.NDArray[np.int64],
) -> tuple[npt.NDArray[np.bool_], pa.Table | None, pa.Table | None]:
    """The numeric checks over well-formed values; the tables of the documents that pass them."""
    n = len(counts)
    keys = header[_KEY_COL]
    ascii_keys = np.frombuffer("".join(keys).encode("ascii"), dtype=np.uint8).reshape(n, 44)
    ok = (
        access_key_check_digits_array(np.ascontiguousarray(ascii_keys[:, :43]))
        == (ascii_keys[:, 43])
    )
    # Totals in integer centavos: the items entering vProd (indTot 1), and vNF's components.
    value = _money(items[4])
    entering = np.where(np.asarray(items[5]) == "1", _cents(value), 0)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    money = [v for c in _MONEY_COLUMNS for v in header[c]]
    totals = _cents(_money(money)).reshape(len(_MONEY_COLUMNS), n)
    v_serv = _cents(_money([v or "0" for v in header[27]]))
    v_nf = totals[_V_PROD] + totals[_VNF_PLUS].sum(axis=0) - totals[_VNF_MINUS].sum(axis=0)
    ok &= np.add.reduceat(entering, starts) == totals[_V_PROD]
    ok &= v_nf + v_serv == totals[_V_NF]
    issued, year, month, exists = _instants(header[_DH_COL])
    ok &= exists
    if not ok.any():
        return ok, None, None
    invoices = pa.table(
        {
            "access_key": pa.array(keys, pa.string()),
            "model": pa.array(header[_MOD_COL], pa.string()).cast(pa.int16()),
            "issued_at": issued,
            "issuer_cnpj": pa.array(header[_CNPJ_COL], pa.string()),
            "total_value": _money(header[15 + _V_NF]),
            "status": pa.repeat(pa.scalar("authorized"), n),
            "_doc": pa.array(positions.tolist(), pa.int32()),
            "_year": year,
            "_month": month,
        },
        schema=_INVOICES,
    )
    take = pa.array(np.repeat(np.arange(n), counts))
    per_invoice = {
        "access_key": invoices["access_key"],
        "model": invoices["model"],
        "issued_at": invoices["issued_at"],
        "issuer_cnpj": invoices["issuer_cnpj"],
        "issuer_root": pc.utf8_slice_codeunits(invoices["issuer_cnpj"], 0, 8),
        "issuer_cnae": pa.array([v or None for v in header[_CNAE_COL]], pa.string()),
        "issuer_uf": pa.array(header[_UF_COL], pa.string()),
        "issuer_municipality": pa.array(header[_CMUN_COL], pa.string()),
        "recipient_uf": pa.array([v or None for v in header[_DEST_COL]], pa.string()),
        "_doc": invoices["_doc"],
        "_year": year,
        "_month": month,
    }
    repeated = pa.table(per_invoice).take(take)  # one row per item
    columns = dict(zip(per_invoice, repeated.columns, strict=True))
    columns["ncm"] = pa.array(items[0], pa.string())
    columns["cfop"] = pa.array(items[1], pa.string())
    columns["unit"] = pa.array(items[2], pa.string())
    columns["quantity"] = pa.array(items[3], pa.string()).cast(pa.float64())
    columns["item_value"] = value
    columns["icms_value"] = _money(items[6])
    facts = pa.table({name: columns[name] for name in _FACTS.names}, schema=_FACTS)
    if not ok.all():
        invoices = invoices.filter(pa.array(ok))
        facts = facts.filter(pa.array(ok[np.repeat(np.arange(n), counts)]))
    return ok, facts, invoices
