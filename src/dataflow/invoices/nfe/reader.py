"""NF-e / NFC-e 4.00 documents: parse one document into facts, or say precisely why not.

The hot path checks what the facts depend on, with targeted structural checks (required elements,
the formats of every value we keep, the signature element, versions) instead of a full XSD pass,
which would cost more than the parse itself; ``strict=True`` adds the official XSD (shipped in the
``nfelib`` wheel) in front of the same checks. Either way the domain checks follow: access-key check
digit, key against content, totals, authorization protocol and status, environment.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, cast
from zoneinfo import ZoneInfo

from lxml import etree

from dataflow.invoices.checkdigits import access_key_check_digit
from dataflow.invoices.nfe.xsd import SchemaSet
from dataflow.invoices.quarantine import Reason, Rejection
from dataflow.invoices.schema import TZ

__all__ = [
    "AUTHORIZED_STATUS",
    "CANCEL_EVENT",
    "CANCEL_REGISTERED_STATUS",
    "NS",
    "SEP",
    "ParsedCancellation",
    "ParsedInvoice",
    "document_from_tree",
    "encoded_key",
    "instant",
    "joined",
    "parse_document",
    "parser",
    "to_cents",
]

NS = "http://www.portalfiscal.inf.br/nfe"
DS = "http://www.w3.org/2000/09/xmldsig#"
AUTHORIZED_STATUS = frozenset({"100", "150"})  # authorized; authorized out of time
# 135 registered and linked, 136 registered not linked, 155 cancelled out of time
CANCEL_REGISTERED_STATUS = frozenset({"135", "136", "155"})
CANCEL_EVENT = "110111"

_N = "{" + NS + "}"
_NFEPROC, _NFE, _PROCEVENTO = _N + "nfeProc", _N + "NFe", _N + "procEventoNFe"
_SIGNATURE = "{" + DS + "}Signature"
_INF_IN_PROC = _NFE + "/" + _N + "infNFe"

_KEY = re.compile(r"[0-9]{6}[0-9A-Z]{12}[0-9]{26}")
_CNPJ = re.compile(r"[0-9A-Z]{12}[0-9]{2}")
_CPF = re.compile(r"[0-9]{11}")
# TDec_1302: no decimals or exactly two, no leading zero (0, 0.50, 12, 12.50); written without
# alternatives that share a prefix, which the regex engine would retry per value.
_MONEY = re.compile(r"(?:0|[1-9][0-9]{0,12})(?:\.[0-9]{2})?")
_QTY = re.compile(r"[0-9]{1,11}(\.[0-9]{1,4})?")
_DATETIME = re.compile(
    r"20[0-9]{2}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-5][0-9][-+][01][0-9]:00"
)
_UF = re.compile(r"[A-Z]{2}")
_IBGE7 = re.compile(r"[0-9]{7}")
_CFOP = re.compile(r"[1235-7][0-9]{3}")
_NCM = re.compile(r"[0-9]{2}|[0-9]{8}")
_CNAE = re.compile(r"[0-9]{7}")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)

# ICMSTot fields that make up vNF (MOC 4.00, rule W16-xx: vNF = vProd - vDesc - vICMSDeson + vST
# + vFCPST + vFrete + vSeg + vOutro + vII + vIPI + vIPIDevol + vServ of ISSQNtot).
_VNF_PLUS = ("vST", "vFCPST", "vFrete", "vSeg", "vOutro", "vII", "vIPI", "vIPIDevol")
_VNF_MINUS = ("vDesc", "vICMSDeson")


@cache
def _sao_paulo() -> ZoneInfo:
    return ZoneInfo(TZ)


def instant(dh: str) -> tuple[int, int, int] | None:
    """A ``_DATETIME``-shaped value → (µs since the epoch, local year, local month); None for a
    date that does not exist (the pattern lets 2026-02-31 or 25:00 through)."""
    try:
        issued = datetime.fromisoformat(dh)
    except ValueError:
        return None
    local = issued.astimezone(_sao_paulo())
    return (issued - _EPOCH) // _US, local.year, local.month


def _instant(dh: str) -> tuple[int, int, int]:
    found = instant(dh)
    if found is None:
        raise _Reject(Reason.SCHEMA_VIOLATION, f"ide/dhEmi {dh!r} is not a valid date and time")
    return found


@dataclass(slots=True)
class ParsedInvoice:
    """An authorized invoice, reduced to the fact-store columns (money in integer centavos)."""

    access_key: str
    model: int
    issued_at_us: int  # UTC instant, microseconds since the epoch
    year: int  # of issue, in America/Sao_Paulo
    month: int
    issuer_cnpj: str
    issuer_cnae: str | None
    issuer_uf: str
    issuer_municipality: str
    recipient_uf: str | None
    total_cents: int
    status: str  # cStat of the protocol
    cfop: list[str] = field(default_factory=list)
    ncm: list[str] = field(default_factory=list)
    quantity: list[float] = field(default_factory=list)
    unit: list[str] = field(default_factory=list)
    value_cents: list[int] = field(default_factory=list)
    icms_cents: list[int] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ParsedCancellation:
    """A registered cancellation event (tpEvento 110111) for ``access_key``."""

    access_key: str
    status: str


class _Reject(Exception):
    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.rejection = Rejection(reason, detail)


def encoded_key(
    c_uf: str,
    dh_emi: str,
    cnpj: str,
    mod: str,
    serie: str,
    n_nf: str,
    tp_emis: str,
    c_nf: str,
    c_dv: str,
) -> str:
    """The access key the content encodes; with every part in its fixed width (checked apart),
    an equal key means equal parts (the fast path's check)."""
    aamm = dh_emi[2:4] + dh_emi[5:7]
    return "".join((c_uf, aamm, cnpj, mod, serie.zfill(3), n_nf.zfill(9), tp_emis, c_nf, c_dv))


def to_cents(text: str) -> int:
    """An NF-e money value (``TDec_1302``: no decimals or exactly two) → integer centavos."""
    if text[-3:-2] == ".":
        return int(text[:-3] + text[-2:])
    whole, dot, frac = text.partition(".")
    if dot:
        return int(whole) * 100 + int(frac) * (10 if len(frac) == 1 else 1)
    return int(whole) * 100


def _fields(element: etree._Element) -> dict[object, str | None]:
    """Tag → text of an element's children: one C-level walk, then dictionary look-ups."""
    return {child.tag: child.text for child in element}


def _text(fields: dict[object, str | None], name: str, what: str, pattern: re.Pattern[str]) -> str:
    value = fields.get(_N + name)
    if value is None:
        raise _Reject(Reason.SCHEMA_VIOLATION, f"missing required element {what}")
    if not pattern.fullmatch(value):
        raise _Reject(Reason.SCHEMA_VIOLATION, f"{what} has an invalid value {value[:60]!r}")
    return value


_DIGITS = re.compile(r"[0-9]+")
_SERIE = re.compile(r"[0-9]{1,3}")
_NNF = re.compile(r"[1-9][0-9]{0,8}")
_CNF = re.compile(r"[0-9]{8}")
_ONE = re.compile(r"[0-9]")
_MOD = re.compile(r"55|65")
_STAT = re.compile(r"[0-9]{3,4}")


# Tag-filtered child iteration: lxml walks in C and makes Python objects only for the elements we
# keep; XPath calls or per-field find() cost more than the parse itself.
_NL = len(_N)
_IDE_TAGS = tuple(
    _N + t
    for t in ("cUF", "cNF", "mod", "serie", "nNF", "dhEmi", "tpEmis", "cDV", "tpAmb", "idDest")
)
_EMIT_TAGS = (_N + "CNPJ", _N + "CPF", _N + "CNAE")
_ADDRESS_TAGS = (_N + "UF", _N + "cMun")
_TOTAL_TAGS = tuple(_N + t for t in ("vProd", "vNF", *_VNF_PLUS, *_VNF_MINUS))
_PROT_TAGS = tuple(_N + t for t in ("cStat", "chNFe", "tpAmb", "xMotivo"))
_SECTIONS = tuple(_N + t for t in ("ide", "emit", "dest", "total"))
_T_IDE, _T_EMIT, _T_DEST, _T_TOTAL = _SECTIONS
_T_ADDRESS, _T_DEST_ADDRESS = _N + "enderEmit", _N + "enderDest"
_T_ICMSTOT, _T_ISSQN = _N + "ICMSTot", _N + "ISSQNtot"
_T_PROT, _T_INFPROT = _N + "protNFe", _N + "infProt"


def _texts(
    element: etree._Element | None, tags: tuple[str, ...], prefix: str = ""
) -> dict[str, str]:
    if element is None:
        return {}
    return {prefix + e.tag[_NL:]: e.text or "" for e in element.iterchildren(*tags)}


def _header(inf: etree._Element) -> dict[str, str]:
    """Every header value the facts and checks need; absent elements are simply not there."""
    parts = {e.tag: e for e in inf.iterchildren(*_SECTIONS)}
    emit = parts.get(_T_EMIT)
    dest = parts.get(_T_DEST)
    total = parts.get(_T_TOTAL)
    h = _texts(parts.get(_T_IDE), _IDE_TAGS)
    h.update(_texts(emit, _EMIT_TAGS))
    h.update(_texts(emit.find(_T_ADDRESS) if emit is not None else None, _ADDRESS_TAGS))
    dest_address = dest.find(_T_DEST_ADDRESS) if dest is not None else None
    if dest_address is not None:
        h["destUF"] = dest_address.findtext(_N + "UF") or ""
    if total is not None:
        h.update(_texts(total.find(_T_ICMSTOT), _TOTAL_TAGS))
        serv = total.findtext(f"{_T_ISSQN}/{_N}vServ")
        if serv is not None:
            h["vServ"] = serv
    nfe = inf.getparent()
    h["signatures"] = str(len(nfe.findall(_SIGNATURE))) if nfe is not None else "0"
    proc = nfe.getparent() if nfe is not None else None
    prot = proc.find(_T_PROT) if proc is not None else None
    if prot is not None:
        h["protocols"] = "1"
        h.update(_texts(prot.find(_T_INFPROT), _PROT_TAGS, "p"))
    return h


# Items: one walk over infNFe keeping each det element and its values, stopping at total.
_ITEM_FIELDS = ("NCM", "CFOP", "uCom", "qCom", "vProd", "indTot")
_T_DET = _N + "det"
_T_VICMS = _N + "vICMS"
_ITEM_WALK = (_T_DET, *(_N + t for t in _ITEM_FIELDS), _T_VICMS, _T_TOTAL)
# uCom: 1 to 6 characters, no blank at either end. The separator is spelled out of the classes
# only so that joined checks (below) cannot match across it; XML text never holds it.
_UNIT = re.compile(r"[^\s\x1f](?:[^\n\x1f]{0,4}[^\s\x1f])?")
_ITEM_PATTERNS = (_NCM, _CFOP, _UNIT, _QTY, _MONEY, re.compile(r"[01]"))


def _check(value: str, what: str, pattern: re.Pattern[str]) -> str:
    if not value:
        raise _Reject(Reason.SCHEMA_VIOLATION, f"missing required element {what}")
    if not pattern.fullmatch(value):
        raise _Reject(Reason.SCHEMA_VIOLATION, f"{what} has an invalid value {value[:60]!r}")
    return value


# Joins values for one regex run per column instead of one per value. U+001F cannot occur in
# parsed XML text (not even as a character reference), and no value pattern matches it, so a
# joined string matches exactly when every value does (a newline separator would let "31\n22"
# pass as two valid NCMs).
SEP = "\x1f"


def joined(pattern: re.Pattern[str]) -> re.Pattern[str]:
    """A pattern matching ``SEP``-joined values that each match ``pattern``."""
    return re.compile(f"(?:{pattern.pattern})(?:{SEP}(?:{pattern.pattern}))*")


_ITEM_JOINED = tuple(joined(p) for p in _ITEM_PATTERNS)
_MONEY_JOINED = joined(_MONEY)


def _items(inf: etree._Element, doc: ParsedInvoice) -> int:
    """Fill the item columns of ``doc``; return the sum of the items that enter ICMSTot/vProd."""
    columns: dict[str, list[str]] = {_N + name: [] for name in _ITEM_FIELDS}
    required = list(columns.values())
    n_fields = len(required)
    icms: list[tuple[int, str]] = []
    n = 0
    for el in inf.iter(*_ITEM_WALK):
        tag = el.tag
        if tag == _T_DET:
            # Each item brings its six values (counted per item here; per column at the end).
            if sum(map(len, required)) != n_fields * n:
                raise _Reject(Reason.SCHEMA_VIOLATION, f"det {n} lacks or repeats a prod value")
            n += 1
            if el.get("nItem") != str(n):
                raise _Reject(Reason.SCHEMA_VIOLATION, f"det #{n} has nItem {el.get('nItem')!r}")
        elif tag == _T_TOTAL:
            break
        elif tag == _T_VICMS:
            icms.append((n, el.text or ""))
        elif n:
            columns[tag].append(el.text or "")
    if any(len(c) != n for c in required):
        raise _Reject(Reason.SCHEMA_VIOLATION, f"det {n} lacks or repeats a prod value")
    if not 1 <= n <= 990:
        raise _Reject(Reason.SCHEMA_VIOLATION, f"{n} det items (1 to 990 allowed)")
    for name, values, pattern, joined_pattern in zip(
        _ITEM_FIELDS, required, _ITEM_PATTERNS, _ITEM_JOINED, strict=True
    ):
        if not joined_pattern.fullmatch(SEP.join(values)):
            bad = next(v for v in values if not pattern.fullmatch(v))
            raise _Reject(Reason.SCHEMA_VIOLATION, f"prod/{name} has an invalid value {bad[:60]!r}")
    ncm, cfop, unit, qty, v_prod, ind_tot = required
    cents = list(map(to_cents, v_prod))
    doc.ncm, doc.cfop, doc.unit = ncm, cfop, unit
    doc.quantity = list(map(float, qty))
    doc.value_cents = cents
    item_icms = [0] * n
    if icms:
        if not _MONEY_JOINED.fullmatch(SEP.join(v for _, v in icms)) or len(icms) != len(
            {i for i, _ in icms}
        ):
            raise _Reject(Reason.SCHEMA_VIOLATION, "det imposto/ICMS vICMS values are invalid")
        for i, v in icms:
            item_icms[i - 1] = to_cents(v)
    doc.icms_cents = item_icms
    if "0" in ind_tot:  # indTot 0: the item does not enter ICMSTot/vProd
        return sum(c for c, t in zip(cents, ind_tot, strict=True) if t == "1")
    return sum(cents)


def _invoice(inf: etree._Element, is_proc: bool) -> ParsedInvoice:
    version = inf.get("versao")
    if version != "4.00":
        raise _Reject(Reason.NOT_NFE_4_00, f"infNFe versao is {version!r}, expected '4.00'")
    ident = inf.get("Id") or ""
    if not (ident.startswith("NFe") and _KEY.fullmatch(ident[3:])):
        raise _Reject(
            Reason.SCHEMA_VIOLATION, f"infNFe Id {ident[:60]!r} is not 'NFe' + 44-char key"
        )
    key = ident[3:]
    h = defaultdict(str, _header(inf))
    if h["signatures"] != "1":
        raise _Reject(Reason.SCHEMA_VIOLATION, "NFe has no ds:Signature element")
    c_uf = _check(h["cUF"], "ide/cUF", _UF_CODE)
    c_nf = _check(h["cNF"], "ide/cNF", _CNF)
    model = _check(h["mod"], "ide/mod", _MOD)
    serie = _check(h["serie"], "ide/serie", _SERIE)
    n_nf = _check(h["nNF"], "ide/nNF", _NNF)
    dh_emi = _check(h["dhEmi"], "ide/dhEmi", _DATETIME)
    tp_emis = _check(h["tpEmis"], "ide/tpEmis", _ONE)
    c_dv = _check(h["cDV"], "ide/cDV", _ONE)
    tp_amb = _check(h["tpAmb"], "ide/tpAmb", _AMB)
    if h["CNPJ"]:
        cnpj = key_doc = _check(h["CNPJ"], "emit/CNPJ", _CNPJ)
    else:
        cnpj = _check(h["CPF"], "emit/CNPJ or emit/CPF", _CPF)
        key_doc = "000" + cnpj  # a CPF issuer fills the key's CNPJ field with zeros
    issuer_uf = _check(h["UF"], "emit/enderEmit/UF", _UF)
    issuer_muni = _check(h["cMun"], "emit/enderEmit/cMun", _IBGE7)
    cnae = _check(h["CNAE"], "emit/CNAE", _CNAE) if h["CNAE"] else None
    recipient_uf = _check(h["destUF"], "dest/enderDest/UF", _UF) if h["destUF"] else None
    if recipient_uf is None and h["idDest"] == "1":
        recipient_uf = issuer_uf  # idDest 1: an operation inside the issuer's state

    # Access key: check digit first, then every field it encodes against the content.
    if access_key_check_digit(key[:43]) != int(key[43]):
        raise _Reject(
            Reason.ACCESS_KEY_CHECK_DIGIT,
            f"access key {key} has check digit {key[43]}, "
            f"expected {access_key_check_digit(key[:43])}",
        )
    expected = (
        ("cUF", key[0:2], c_uf),
        ("AAMM", key[2:6], dh_emi[2:4] + dh_emi[5:7]),
        ("CNPJ", key[6:20], key_doc),
        ("mod", key[20:22], model),
        ("serie", key[22:25], serie.zfill(3)),
        ("nNF", key[25:34], n_nf.zfill(9)),
        ("tpEmis", key[34], tp_emis),
        ("cNF", key[35:43], c_nf),
        ("cDV", key[43], c_dv),
    )
    wrong = [
        f"{name} {in_key!r} ≠ {content!r}"
        for name, in_key, content in expected
        if in_key != content
    ]
    if wrong:
        raise _Reject(
            Reason.ACCESS_KEY_MISMATCH,
            f"access key {key} disagrees with content: " + ", ".join(wrong),
        )

    doc = ParsedInvoice(
        access_key=key,
        model=int(model),
        issued_at_us=0,
        year=0,
        month=0,
        issuer_cnpj=cnpj,
        issuer_cnae=cnae,
        issuer_uf=issuer_uf,
        issuer_municipality=issuer_muni,
        recipient_uf=recipient_uf,
        total_cents=0,
        status="",
    )
    counted = _items(inf, doc)
    v_prod = to_cents(_check(h["vProd"], "ICMSTot/vProd", _MONEY))
    v_nf = to_cents(_check(h["vNF"], "ICMSTot/vNF", _MONEY))
    if counted != v_prod:
        raise _Reject(
            Reason.TOTALS_MISMATCH,
            f"items add up to vProd {counted / 100:.2f}, ICMSTot/vProd says {v_prod / 100:.2f}",
        )
    expect_nf = v_prod
    for name in _VNF_PLUS:
        expect_nf += to_cents(_check(h[name], f"ICMSTot/{name}", _MONEY))
    for name in _VNF_MINUS:
        expect_nf -= to_cents(_check(h[name], f"ICMSTot/{name}", _MONEY))
    if h["vServ"]:
        expect_nf += to_cents(_check(h["vServ"], "ISSQNtot/vServ", _MONEY))
    if expect_nf != v_nf:
        raise _Reject(
            Reason.TOTALS_MISMATCH,
            f"ICMSTot/vNF is {v_nf / 100:.2f}, its components add up to {expect_nf / 100:.2f}",
        )

    # Authorization: only a protocol with cStat 100/150 for this very key makes the invoice count.
    if not h["protocols"]:
        where = "nfeProc has no protNFe" if is_proc else "bare NFe (no nfeProc/protNFe)"
        raise _Reject(Reason.NO_PROTOCOL, f"{where}: no authorization protocol")
    stat = _check(h["pcStat"], "protNFe/infProt/cStat", _STAT)
    if stat not in AUTHORIZED_STATUS:
        raise _Reject(
            Reason.NOT_AUTHORIZED, f"protocol cStat {stat} ({h['pxMotivo'][:80]}), not 100/150"
        )
    if h["pchNFe"] != key:
        raise _Reject(
            Reason.ACCESS_KEY_MISMATCH, f"protocol is for key {h['pchNFe']!r}, document is {key}"
        )
    if tp_amb != "1" or h["ptpAmb"] == "2":
        raise _Reject(
            Reason.TEST_ENVIRONMENT, "tpAmb 2 (homologação): a test document with no fiscal effect"
        )

    doc.issued_at_us, doc.year, doc.month = _instant(dh_emi)
    doc.total_cents = v_nf
    doc.status = stat
    return doc


_UF_CODE = re.compile(r"[1-5][0-9]")
_AMB = re.compile(r"[12]")


def _cancellation(root: etree._Element) -> ParsedCancellation:
    if root.get("versao") != "1.00":
        raise _Reject(
            Reason.NOT_NFE_4_00, f"procEventoNFe versao {root.get('versao')!r}, expected '1.00'"
        )
    inf_el = root.find(_N + "evento/" + _N + "infEvento")
    ret_el = root.find(_N + "retEvento/" + _N + "infEvento")
    if inf_el is None:
        raise _Reject(Reason.SCHEMA_VIOLATION, "procEventoNFe has no evento/infEvento")
    inf = _fields(inf_el)
    ev_type = inf.get(_N + "tpEvento")
    if ev_type != CANCEL_EVENT:
        raise _Reject(
            Reason.UNSUPPORTED_EVENT, f"event type {ev_type!r}: only cancellation (110111) counts"
        )
    key = _text(inf, "chNFe", "evento chNFe", _KEY)
    if access_key_check_digit(key[:43]) != int(key[43]):
        raise _Reject(Reason.ACCESS_KEY_CHECK_DIGIT, f"cancelled access key {key}: bad check digit")
    seq = _text(inf, "nSeqEvento", "evento nSeqEvento", _DIGITS)
    ident = inf_el.get("Id") or ""
    if ident != f"ID{CANCEL_EVENT}{key}{int(seq):02d}":
        raise _Reject(Reason.ACCESS_KEY_MISMATCH, f"event Id {ident!r} does not match key {key}")
    if root.find(_N + "evento/" + _SIGNATURE) is None:
        raise _Reject(Reason.SCHEMA_VIOLATION, "evento has no ds:Signature element")
    if ret_el is None:
        raise _Reject(Reason.NO_PROTOCOL, "procEventoNFe has no retEvento: event not registered")
    ret = _fields(ret_el)
    stat = _text(ret, "cStat", "retEvento cStat", _STAT)
    if stat not in CANCEL_REGISTERED_STATUS:
        motive = ret.get(_N + "xMotivo") or ""
        raise _Reject(Reason.NOT_AUTHORIZED, f"event cStat {stat} ({motive[:80]}), not 135/136/155")
    ret_key = ret.get(_N + "chNFe")
    if ret_key is not None and ret_key != key:
        raise _Reject(Reason.ACCESS_KEY_MISMATCH, f"retEvento is for key {ret_key}, event {key}")
    if inf.get(_N + "tpAmb") != "1" or ret.get(_N + "tpAmb") == "2":
        raise _Reject(Reason.TEST_ENVIRONMENT, "tpAmb 2 (homologação): a test event")
    return ParsedCancellation(access_key=key, status=stat)


def parse_document(
    data: bytes, *, schemas: SchemaSet | None = None
) -> ParsedInvoice | ParsedCancellation | Rejection:
    """One XML document → an invoice, a cancellation, or the rejection that quarantines it.

    ``schemas`` (the official XSDs, ``xsd.schema_set()``) adds full XSD validation (strict mode).
    """
    try:
        root = etree.fromstring(data, parser=parser())
    except etree.XMLSyntaxError as e:
        return Rejection(Reason.MALFORMED_XML, f"not well-formed XML: {e}")
    return document_from_tree(root, schemas=schemas)


def document_from_tree(
    root: etree._Element, *, schemas: SchemaSet | None = None
) -> ParsedInvoice | ParsedCancellation | Rejection:
    """``parse_document`` for a document already parsed with ``parser()``."""
    tag = root.tag if isinstance(root.tag, str) else ""
    try:
        if tag not in (_NFEPROC, _NFE, _PROCEVENTO):
            raise _Reject(
                Reason.NOT_NFE_4_00,
                f"root element {etree.QName(tag).localname if tag else '?'!r} "
                f"({etree.QName(tag).namespace if tag else ''}) is not nfeProc, NFe or "
                "procEventoNFe of the NF-e namespace",
            )
        if tag == _NFEPROC and root.get("versao") != "4.00":
            raise _Reject(
                Reason.NOT_NFE_4_00, f"nfeProc versao {root.get('versao')!r}, expected '4.00'"
            )
        if tag == _PROCEVENTO and _event_type(root) != CANCEL_EVENT:
            raise _Reject(
                Reason.UNSUPPORTED_EVENT,
                f"event type {_event_type(root)!r}: only cancellation (110111) counts",
            )
        schema = schemas.for_root(tag) if schemas is not None else None
        if schema is not None and not schema.validate(root):
            err = cast(Any, schema.error_log).last_error
            raise _Reject(Reason.SCHEMA_VIOLATION, f"XSD: line {err.line}: {err.message}"[:500])
        if tag == _PROCEVENTO:
            return _cancellation(root)
        if tag == _NFEPROC:
            inf = root.find(_INF_IN_PROC)
            if inf is None:
                raise _Reject(Reason.SCHEMA_VIOLATION, "nfeProc has no NFe/infNFe element")
            return _invoice(inf, True)
        inf = root.find(_N + "infNFe")
        if inf is None:
            raise _Reject(Reason.SCHEMA_VIOLATION, "NFe has no infNFe element")
        return _invoice(inf, False)
    except _Reject as r:
        return r.rejection


def _event_type(root: etree._Element) -> str | None:
    return root.findtext(f"{_N}evento/{_N}infEvento/{_N}tpEvento")


@cache
def parser() -> etree.XMLParser:
    """The one parser configuration for NF-e documents (one instance per process)."""
    # No network, no entity expansion: documents come from outside.
    return etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
