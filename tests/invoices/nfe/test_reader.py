"""Parsing and checking single NF-e documents: real samples, broken ones, both validation modes."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from dataflow.invoices.nfe.reader import (
    ParsedCancellation,
    ParsedInvoice,
    parse_document,
    to_cents,
)
from dataflow.invoices.nfe.xsd import schema_set
from dataflow.invoices.quarantine import Rejection

# What each real sample in the nfelib wheel is, checked by hand: the right outcome for that file.
_PROC_4117 = "leiauteNFe/41170706117473000150550010000463202612756525-procNFe.xml"
SAMPLE_OUTCOMES = {
    # An inutilização (number-range voiding) request, not an invoice.
    "leiauteInutNFe/41080676472349000430550010000001041671821888-ped-inu.xml": "not_nfe_4_00",
    # ide/cDV says 9, the key's own (valid) check digit is 1.
    "leiauteNFe/26180875335849000115550010000016871192213331-nfe.xml": "access_key_inconsistent",
    # tpEmis 1 in ide, 2 in the key (and cDV differs): the same document twice.
    _PROC_4117: "access_key_inconsistent",
    "procNFe.xml": "access_key_inconsistent",
    # Real authorized documents whose ds:Signature was stripped: required by the schema.
    "leiauteNFe/42210775277525000178550030000266631762885493-procNFe.xml": "schema_violation",
    "leiauteNFe/42211275277525000178550030000276771368212013-procNFe.xml": "schema_violation",
    "leiauteNFe/42220575277525000178550030000292481295366801-procNFe.xml": "schema_violation",
    # infNFe Id without the 'NFe' prefix (and no signature, no protocol).
    "leiauteNFe/NFe35200159594315000157550010000000012062777161.xml": "schema_violation",
    # An NFC-e in contingency with placeholders (no signature, QR code placeholder, no protocol).
    "nfce_contingencia.xml": "schema_violation",
    # The tax-reform example: key says AAMM 2312 and another CNPJ than the content.
    "leiauteNFe/nfe_reforma_tributaria.xml": "access_key_inconsistent",
}
LOADABLE = [
    "35180834128745000152550010000474281920007498",
    "35180834128745000152550010000474491454651420",
    "35180834128745000152550010000474501597356342",
    "35180834128745000152550010000474641681223493",
    "35180834128745000152550010000476051695511860",
    "35180834128745000152550010000476121675985748",
    "35180834128745000152550010000476491552806942",
    "35180834128745000152550010000476711079516696",
    "35180834128745000152550010000476781421693968",
    "35180834128745000152550010000476861118934859",
]
NS = {"n": "http://www.portalfiscal.inf.br/nfe"}


def expected_outcome(relative: str) -> str:
    if relative in SAMPLE_OUTCOMES:
        return SAMPLE_OUTCOMES[relative]
    key = Path(relative).name.split("-")[0]
    assert key in LOADABLE, f"unclassified sample {relative}"
    return "loaded"


def _samples(root: Path) -> list[Path]:
    return sorted(root.rglob("*.xml"))


@pytest.mark.parametrize("strict", [False, True], ids=["fast", "strict"])
def test_every_nfelib_sample_is_loaded_or_rejected_for_its_own_reason(
    nfe_samples: Path, strict: bool
) -> None:
    schemas = schema_set() if strict else None
    seen = set()
    for path in _samples(nfe_samples):
        relative = str(path.relative_to(nfe_samples))
        outcome = parse_document(path.read_bytes(), schemas=schemas)
        expected = expected_outcome(relative)
        if expected == "loaded":
            assert isinstance(outcome, ParsedInvoice), (relative, outcome)
            assert outcome.issuer_uf == "SP"  # out-of-state issuers are recorded, not rejected
        else:
            assert isinstance(outcome, Rejection), relative
            assert outcome.reason == expected, (relative, outcome)
        seen.add(relative)
    assert len(seen) == len(SAMPLE_OUTCOMES) + len(LOADABLE)


def test_loaded_sample_values_match_an_independent_xpath_reading(nfe_samples: Path) -> None:
    for path in _samples(nfe_samples):
        if expected_outcome(str(path.relative_to(nfe_samples))) != "loaded":
            continue
        doc = parse_document(path.read_bytes())
        assert isinstance(doc, ParsedInvoice)
        tree = etree.parse(str(path))
        v_prod = [
            Decimal(str(v)) for v in tree.xpath("//n:det/n:prod/n:vProd/text()", namespaces=NS)
        ]
        v_nf = Decimal(str(tree.xpath("string(//n:ICMSTot/n:vNF)", namespaces=NS)))
        assert [Decimal(c) / 100 for c in doc.value_cents] == v_prod
        assert Decimal(doc.total_cents) / 100 == v_nf
        assert doc.access_key == path.name.split("-")[0]
        assert doc.issuer_cnpj == doc.access_key[6:20]
        assert doc.status == "100"


@pytest.mark.parametrize("strict", [False, True], ids=["fast", "strict"])
def test_each_broken_document_is_rejected_for_exactly_its_defect(
    broken: Path, strict: bool
) -> None:
    schemas = schema_set() if strict else None
    files = sorted(broken.glob("*.xml"))
    assert len(files) == 10
    for path in files:
        outcome = parse_document(path.read_bytes(), schemas=schemas)
        assert isinstance(outcome, Rejection), path.name
        assert outcome.reason == path.stem, (path.name, outcome)
        assert outcome.detail


def test_alphanumeric_cnpj_invoice_loads(corpus: Path) -> None:
    alnum = [p for p in (corpus / "valid").glob("*-procNFe.xml") if not p.name[6:20].isdigit()]
    assert alnum, "the generated corpus should hold alphanumeric CNPJs"
    doc = parse_document(alnum[0].read_bytes(), schemas=schema_set())
    assert isinstance(doc, ParsedInvoice)
    assert doc.issuer_cnpj == alnum[0].name[6:20]
    assert not doc.issuer_cnpj[:12].isdigit()


def test_cancellation_event_parses(corpus: Path) -> None:
    event = next((corpus / "valid").glob("*-procEventoNFe.xml"))
    doc = parse_document(event.read_bytes(), schemas=schema_set())
    assert isinstance(doc, ParsedCancellation)
    assert doc.access_key == event.name[:44]
    assert doc.status == "135"


@given(st.integers(min_value=0, max_value=10**15 - 1))
def test_to_cents_reads_every_two_decimal_amount(cents: int) -> None:
    assert to_cents(f"{cents // 100}.{cents % 100:02d}") == cents
    if cents % 100 == 0:
        assert to_cents(str(cents // 100)) == cents
