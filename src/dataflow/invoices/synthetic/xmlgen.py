"""Synthetic NF-e / NFC-e 4.00 documents (``nfeProc``) and cancellation events (``procEventoNFe``).

Deterministic from the seed: the same arguments write the same bytes. Documents validate against
the official XSD shipped in ``nfelib``: valid CNPJ and access-key check digits (numeric and
alphanumeric CNPJs), an authorization protocol (cStat 100), items whose ``vProd`` add up to the
total and a ``vNF`` that is the sum of its components. The ``ds:Signature`` carries the real SHA-1
digest of the ``infNFe`` bytes but no real RSA signature: signatures are not verified downstream
(DESIGN §4: the authorization protocol is what counts).
"""

from __future__ import annotations

import base64
import hashlib
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from xml.sax.saxutils import escape

from dataflow.invoices.checkdigits import cnpj_check_digits, make_access_key
from dataflow.invoices.reference import ReferenceData

__all__ = [
    "GeneratedDocument",
    "XmlGenerationSummary",
    "cancellation_xml",
    "generate_xml",
    "iter_documents",
]

NS = "http://www.portalfiscal.inf.br/nfe"
_BRT = timezone(timedelta(hours=-3))
_ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
# A few out-of-state issuers (recorded with their UF; MG tables filter later): cUF, UF, capital.
_OTHER_STATES = (("35", "SP", "3550308"), ("33", "RJ", "3304557"), ("41", "PR", "4106902"))
_UFS = ("SP", "RJ", "ES", "BA", "GO", "DF", "PR", "SC", "RS")
_UNITS = ("UN", "KG", "CX", "LT", "PC", "M")


@dataclass(frozen=True, slots=True)
class _Issuer:
    cnpj: str
    c_uf: str
    uf: str
    municipality: str
    cnae: str
    retail: bool
    name: str


@dataclass(frozen=True, slots=True)
class GeneratedDocument:
    """One generated file: its name, bytes, and what it is (for summaries and tests)."""

    name: str
    data: bytes
    access_key: str
    kind: str  # "nfeProc" | "procEventoNFe"


@dataclass(frozen=True, slots=True)
class XmlGenerationSummary:
    invoices: int
    nfce: int
    nfe: int
    cancellations: int
    items: int
    out: Path


def _cnpj(rng: random.Random, alphanumeric: bool) -> str:
    if alphanumeric:  # NT Conjunta 2025.001: letters in the first 12 characters
        base = "".join(rng.choice(_ALNUM) for _ in range(8)) + f"{rng.randrange(1, 10):04d}"
    else:
        base = f"{rng.randrange(10_000_000, 100_000_000):08d}{rng.randrange(1, 10):04d}"
    return base + cnpj_check_digits(base)


def _issuers(rng: random.Random, ref: ReferenceData, n: int, alnum_share: float) -> list[_Issuer]:
    munis = [m.code for m in ref.municipalities]
    subclasses = [e.code for e in ref.cnae_level("subclass")]
    retail = [c for c in subclasses if c.startswith("47")]
    out = []
    for i in range(n):
        is_retail = rng.random() < 0.6
        cnae = rng.choice(retail if is_retail else subclasses)
        if i % 12 == 3:  # about 8% of issuers, some of them sizeable
            c_uf, uf, muni = rng.choice(_OTHER_STATES)
        else:
            c_uf, uf, muni = "31", "MG", rng.choice(munis)
        cnpj = _cnpj(rng, rng.random() < alnum_share)
        out.append(_Issuer(cnpj, c_uf, uf, muni, cnae, is_retail, f"EMPRESA SINTETICA {i + 1}"))
    return out


def _money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def _signature(key: str, inf_nfe: str, rng: random.Random) -> tuple[str, str]:
    digest = base64.b64encode(hashlib.sha1(inf_nfe.encode()).digest()).decode()
    fake_sig = base64.b64encode(rng.randbytes(256)).decode()
    fake_cert = base64.b64encode(rng.randbytes(96)).decode()
    sig = (
        f'<Signature xmlns="http://www.w3.org/2000/09/xmldsig#"><SignedInfo>'
        f'<CanonicalizationMethod Algorithm="http://www.w3.org/TR/2001/REC-xml-c14n-20010315"/>'
        f'<SignatureMethod Algorithm="http://www.w3.org/2000/09/xmldsig#rsa-sha1"/>'
        f'<Reference URI="#NFe{key}"><Transforms>'
        f'<Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>'
        f'<Transform Algorithm="http://www.w3.org/TR/2001/REC-xml-c14n-20010315"/></Transforms>'
        f'<DigestMethod Algorithm="http://www.w3.org/2000/09/xmldsig#sha1"/>'
        f"<DigestValue>{digest}</DigestValue></Reference></SignedInfo>"
        f"<SignatureValue>{fake_sig}</SignatureValue>"
        f"<KeyInfo><X509Data><X509Certificate>{fake_cert}</X509Certificate></X509Data></KeyInfo>"
        f"</Signature>"
    )
    return sig, digest


def _item(n: int, rng: random.Random, ncm: str, cfop: str, nfce: bool) -> tuple[str, int, int]:
    qty_milli = rng.randrange(1, 5) * 1000 if rng.random() < 0.7 else rng.randrange(100, 20_000)
    unit_cents = max(1, int(rng.lognormvariate(2.3 if nfce else 5.0, 1.1) * 100))
    value = max(1, round(qty_milli * unit_cents / 1000))
    rate = 18 if cfop[0] == "5" else 12
    icms = round(value * rate / 100)
    qty = f"{qty_milli // 1000}.{qty_milli % 1000:03d}0"
    unit_price = f"{value / (qty_milli / 1000):.10f}"
    unit = "UN" if nfce else rng.choice(_UNITS)
    xml = (
        f'<det nItem="{n}"><prod><cProd>{rng.randrange(1, 10**6):06d}</cProd><cEAN>SEM GTIN</cEAN>'
        f"<xProd>PRODUTO SINTETICO NCM {ncm}</xProd><NCM>{ncm}</NCM><CFOP>{cfop}</CFOP>"
        f"<uCom>{unit}</uCom><qCom>{qty}</qCom><vUnCom>{unit_price}</vUnCom>"
        f"<vProd>{_money(value)}</vProd><cEANTrib>SEM GTIN</cEANTrib><uTrib>{unit}</uTrib>"
        f"<qTrib>{qty}</qTrib><vUnTrib>{unit_price}</vUnTrib><indTot>1</indTot></prod>"
        f"<imposto><ICMS><ICMS00><orig>0</orig><CST>00</CST><modBC>3</modBC>"
        f"<vBC>{_money(value)}</vBC><pICMS>{rate}.00</pICMS><vICMS>{_money(icms)}</vICMS>"
        f"</ICMS00></ICMS><PIS><PISNT><CST>07</CST></PISNT></PIS>"
        f"<COFINS><COFINSNT><CST>07</CST></COFINSNT></COFINS></imposto></det>"
    )
    return xml, value, icms


def _invoice(
    rng: random.Random,
    issuer: _Issuer,
    ncms: list[str],
    number: int,
    issued: datetime,
) -> tuple[str, str, int]:
    nfce = issuer.retail and rng.random() < 0.85
    model = 65 if nfce else 55
    n_items = min(990, 1 + int(rng.expovariate(1 / (9.0 if nfce else 4.0))))
    interstate = not nfce and rng.random() < 0.25
    recipient_uf = rng.choice(_UFS) if interstate else issuer.uf
    if recipient_uf == issuer.uf:
        interstate = False
    cfop = ("6" if interstate else "5") + ("102" if issuer.retail else rng.choice(("101", "102")))
    code = rng.randrange(0, 10**8)
    yymm = issued.strftime("%y%m")
    key = make_access_key(
        uf=int(issuer.c_uf), yymm=yymm, cnpj=issuer.cnpj, model=model, series=1,
        number=number, emission=1, code=code,
    )  # fmt: skip
    dh = issued.isoformat(timespec="seconds")
    shelf = rng.randrange(len(ncms))
    items, v_prod, v_icms = [], 0, 0
    for n in range(1, n_items + 1):
        ncm = ncms[(shelf + rng.randrange(40)) % len(ncms)]
        xml, value, icms = _item(n, rng, ncm, cfop, nfce)
        items.append(xml)
        v_prod += value
        v_icms += icms
    freight = 0 if nfce or rng.random() < 0.6 else rng.randrange(1000, 50_000)
    v_nf = v_prod + freight
    ide = (
        f"<ide><cUF>{issuer.c_uf}</cUF><cNF>{code:08d}</cNF><natOp>VENDA DE MERCADORIA</natOp>"
        f"<mod>{model}</mod><serie>1</serie><nNF>{number}</nNF><dhEmi>{dh}</dhEmi>"
        f"<tpNF>1</tpNF><idDest>{2 if interstate else 1}</idDest>"
        f"<cMunFG>{issuer.municipality}</cMunFG><tpImp>{4 if nfce else 1}</tpImp>"
        f"<tpEmis>1</tpEmis><cDV>{key[-1]}</cDV><tpAmb>1</tpAmb><finNFe>1</finNFe>"
        f"<indFinal>{1 if nfce else 0}</indFinal><indPres>1</indPres><procEmi>0</procEmi>"
        f"<verProc>dataflow-xmlgen 1</verProc></ide>"
    )
    emit = (
        f"<emit><CNPJ>{issuer.cnpj}</CNPJ><xNome>{escape(issuer.name)}</xNome><enderEmit>"
        f"<xLgr>RUA SINTETICA</xLgr><nro>{rng.randrange(1, 3000)}</nro><xBairro>CENTRO</xBairro>"
        f"<cMun>{issuer.municipality}</cMun><xMun>MUNICIPIO {issuer.municipality}</xMun>"
        f"<UF>{issuer.uf}</UF><CEP>{rng.randrange(30_000_000, 39_999_999)}</CEP>"
        f"<cPais>1058</cPais><xPais>BRASIL</xPais></enderEmit>"
        f"<IE>{rng.randrange(10**11, 10**12)}</IE><IM>{rng.randrange(10**6, 10**7)}</IM>"
        f"<CNAE>{issuer.cnae}</CNAE><CRT>3</CRT></emit>"
    )
    dest = ""
    if not nfce:
        dest_cnpj = _cnpj(rng, False)
        dest = (
            f"<dest><CNPJ>{dest_cnpj}</CNPJ><xNome>CLIENTE SINTETICO</xNome><enderDest>"
            f"<xLgr>AVENIDA CLIENTE</xLgr><nro>{rng.randrange(1, 3000)}</nro>"
            f"<xBairro>CENTRO</xBairro><cMun>{'3106200' if recipient_uf == 'MG' else '3550308'}"
            f"</cMun><xMun>CIDADE</xMun><UF>{recipient_uf}</UF></enderDest>"
            f"<indIEDest>9</indIEDest></dest>"
        )
    zero = "0.00"
    total = (
        f"<total><ICMSTot><vBC>{_money(v_prod)}</vBC><vICMS>{_money(v_icms)}</vICMS>"
        f"<vICMSDeson>{zero}</vICMSDeson><vFCP>{zero}</vFCP><vBCST>{zero}</vBCST>"
        f"<vST>{zero}</vST><vFCPST>{zero}</vFCPST><vFCPSTRet>{zero}</vFCPSTRet>"
        f"<vProd>{_money(v_prod)}</vProd><vFrete>{_money(freight)}</vFrete><vSeg>{zero}</vSeg>"
        f"<vDesc>{zero}</vDesc><vII>{zero}</vII><vIPI>{zero}</vIPI><vIPIDevol>{zero}</vIPIDevol>"
        f"<vPIS>{zero}</vPIS><vCOFINS>{zero}</vCOFINS><vOutro>{zero}</vOutro>"
        f"<vNF>{_money(v_nf)}</vNF></ICMSTot></total>"
    )
    transp = f"<transp><modFrete>{0 if freight else 9}</modFrete></transp>"
    pay = "17" if nfce else "15"  # PIX at the till, boleto between companies
    pag = f"<pag><detPag><tPag>{pay}</tPag><vPag>{_money(v_nf)}</vPag></detPag></pag>"
    inf = (
        f'<infNFe versao="4.00" Id="NFe{key}">{ide}{emit}{dest}{"".join(items)}'
        f"{total}{transp}{pag}</infNFe>"
    )
    supl = ""
    if nfce:
        url = "https://portalsped.fazenda.mg.gov.br/portalnfce/sistema/qrcode.xhtml"
        qr_hash = hashlib.sha1(f"{key}|2|1|1|CSC".encode()).hexdigest().upper()
        supl = (
            f"<infNFeSupl><qrCode><![CDATA[{url}?p={key}|2|1|1|{qr_hash}]]></qrCode>"
            f"<urlChave>https://portalsped.fazenda.mg.gov.br/portalnfce</urlChave></infNFeSupl>"
        )
    signature, digest = _signature(key, inf, rng)
    received = issued + timedelta(seconds=rng.randrange(1, 120))
    protocol = f"{issuer.c_uf}{rng.randrange(10**12, 10**13)}"[:15].ljust(15, "0")
    prot = (
        f'<protNFe versao="4.00"><infProt><tpAmb>1</tpAmb><verAplic>SVRS-SYNTH</verAplic>'
        f"<chNFe>{key}</chNFe><dhRecbto>{received.isoformat(timespec='seconds')}</dhRecbto>"
        f"<nProt>{protocol}</nProt><digVal>{digest}</digVal><cStat>100</cStat>"
        f"<xMotivo>Autorizado o uso da NF-e</xMotivo></infProt></protNFe>"
    )
    doc = (
        f'<?xml version="1.0" encoding="UTF-8"?><nfeProc xmlns="{NS}" versao="4.00">'
        f"<NFe>{inf}{supl}{signature}</NFe>{prot}</nfeProc>"
    )
    return doc, key, n_items


def cancellation_xml(
    key: str, *, protocol: str, when: datetime, seed: int = 0, status: str = "135"
) -> str:
    """A registered cancellation (``procEventoNFe``, tpEvento 110111) of the invoice ``key``."""
    rng = random.Random(f"{seed}:{key}")
    c_uf, cnpj = key[:2], key[6:20]
    ident = f"ID110111{key}01"
    dh = when.isoformat(timespec="seconds")
    inf = (
        f'<infEvento Id="{ident}"><cOrgao>{c_uf}</cOrgao><tpAmb>1</tpAmb><CNPJ>{cnpj}</CNPJ>'
        f"<chNFe>{key}</chNFe><dhEvento>{dh}</dhEvento><tpEvento>110111</tpEvento>"
        f"<nSeqEvento>1</nSeqEvento><verEvento>1.00</verEvento>"
        f'<detEvento versao="1.00"><descEvento>Cancelamento</descEvento><nProt>{protocol}</nProt>'
        f"<xJust>Cancelamento a pedido do cliente: pedido desfeito</xJust></detEvento></infEvento>"
    )
    signature, _ = _signature(ident, inf, rng)
    signature = signature.replace(f'URI="#NFe{ident}"', f'URI="#{ident}"')
    registered = (when + timedelta(seconds=rng.randrange(1, 60))).isoformat(timespec="seconds")
    motive = "Evento registrado e vinculado a NF-e"
    ret = (
        f'<retEvento versao="1.00"><infEvento><tpAmb>1</tpAmb><verAplic>SVRS-SYNTH</verAplic>'
        f"<cOrgao>{c_uf}</cOrgao><cStat>{status}</cStat><xMotivo>{motive}</xMotivo>"
        f"<chNFe>{key}</chNFe><tpEvento>110111</tpEvento><xEvento>Cancelamento registrado</xEvento>"
        f"<nSeqEvento>1</nSeqEvento><dhRegEvento>{registered}</dhRegEvento>"
        f"<nProt>{c_uf}{rng.randrange(10**12, 10**13)}</nProt></infEvento></retEvento>"
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><procEventoNFe xmlns="{NS}" versao="1.00">'
        f'<evento versao="1.00">{inf}{signature}</evento>{ret}</procEventoNFe>'
    )


def iter_documents(
    ref: ReferenceData,
    *,
    invoices: int,
    seed: int,
    start: datetime | None = None,
    days: int = 90,
    cancel_share: float = 0.0,
    alnum_share: float = 0.1,
) -> Iterator[GeneratedDocument]:
    """``invoices`` nfeProc documents, then cancellations of a ``cancel_share`` of them."""
    rng = random.Random(seed)
    start = start or datetime(2026, 1, 1, tzinfo=_BRT)
    issuers = _issuers(rng, ref, max(8, invoices // 30), alnum_share)
    weights = [1.0 / (i + 1) ** 1.1 for i in range(len(issuers))]  # Zipf-like sizes
    ncms = [code for code, _ in ref.ncm if len(code) == 8]
    cancellable: list[tuple[str, str, datetime]] = []
    numbers: dict[str, int] = {}
    chosen = rng.choices(range(len(issuers)), weights, k=invoices)
    for i in range(invoices):
        issuer = issuers[chosen[i]]
        numbers[issuer.cnpj] = number = numbers.get(issuer.cnpj, 0) + 1
        issued = start + timedelta(seconds=rng.randrange(days * 86_400))
        doc, key, _ = _invoice(rng, issuer, ncms, number, issued)
        name = f"{key}-procNFe.xml"
        if key[6:20].isdigit():  # the shipped event XSD (1.00) only knows numeric keys
            protocol = doc.split("<nProt>", 1)[1][:15]
            cancellable.append((key, protocol, issued))
        yield GeneratedDocument(name, doc.encode(), key, "nfeProc")
    n_cancel = round(len(cancellable) * cancel_share)
    for key, protocol, issued in rng.sample(cancellable, n_cancel):
        when = issued + timedelta(hours=rng.randrange(1, 23))
        xml = cancellation_xml(key, protocol=protocol, when=when, seed=seed)
        yield GeneratedDocument(
            f"{key}-110111-01-procEventoNFe.xml", xml.encode(), key, "procEventoNFe"
        )


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def generate_xml(
    ref: ReferenceData,
    out: Path,
    *,
    invoices: int,
    seed: int,
    cancel_share: float = 0.0,
    alnum_share: float = 0.1,
    progress: Callable[[int], None] | None = None,
) -> XmlGenerationSummary:
    """Write the documents of ``iter_documents`` as files under ``out`` (one per document)."""
    if invoices < 1:
        raise ValueError("invoices must be positive")
    out.mkdir(parents=True, exist_ok=True)
    nfce = items = cancels = 0
    for i, doc in enumerate(
        iter_documents(
            ref, invoices=invoices, seed=seed, cancel_share=cancel_share, alnum_share=alnum_share
        ),
        1,
    ):
        _write(out / doc.name, doc.data)
        if doc.kind == "procEventoNFe":
            cancels += 1
        else:
            nfce += doc.access_key[20:22] == "65"
            items += doc.data.count(b"<det nItem=")
        if progress and i % 1000 == 0:
            progress(i)
    return XmlGenerationSummary(
        invoices=invoices,
        nfce=nfce,
        nfe=invoices - nfce,
        cancellations=cancels,
        items=items,
        out=out,
    )
