"""Fixtures: nfelib samples, generated and broken XML."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import nfelib
import pytest

from dataflow.invoices.reference import ReferenceData
from dataflow.invoices.synthetic.xmlgen import iter_documents

SAMPLES = Path(nfelib.__file__).resolve().parent / "nfe" / "samples" / "v4_0"


@pytest.fixture(scope="session")
def nfe_samples() -> Path:
    """The real NF-e / NFC-e documents shipped in the nfelib wheel."""
    return SAMPLES


def _first(pattern: str, text: str) -> str:
    m = re.search(pattern, text)
    assert m, pattern
    return m.group(0)


def _break_check_digit(doc: str) -> str:
    key = _first(r"(?<=Id=\"NFe)[0-9A-Z]{44}", doc)
    wrong = key[:43] + str((int(key[43]) + 1) % 10)
    return doc.replace(key, wrong)


def _unwrap(doc: str) -> str:
    """nfeProc → bare NFe (no authorization protocol)."""
    nfe = _first(r"<NFe>.*</NFe>", doc)
    return nfe.replace("<NFe>", '<NFe xmlns="http://www.portalfiscal.inf.br/nfe">', 1)


def _bump_first_item(doc: str) -> str:
    value = _first(r"(?<=<vProd>)[0-9.]+(?=</vProd>)", doc)
    cents = round(float(value) * 100) + 1
    return doc.replace(
        f"<vProd>{value}</vProd>", f"<vProd>{cents // 100}.{cents % 100:02d}</vProd>", 1
    )


# One document per quarantine reason, each made from a valid generated one.
BREAKERS: dict[str, Callable[[str], str]] = {
    "malformed_xml": lambda d: d[: len(d) // 2],
    "not_nfe_4_00": lambda d: d.replace('versao="4.00"', 'versao="3.10"'),
    "schema_violation": lambda d: re.sub(r"<Signature .*</Signature>", "", d),
    "access_key_check_digit": _break_check_digit,
    "access_key_inconsistent": lambda d: re.sub(
        r"<nNF>(\d+)</nNF>", lambda m: f"<nNF>{int(m.group(1)) + 1}</nNF>", d, count=1
    ),
    "totals_mismatch": _bump_first_item,
    "no_authorization_protocol": _unwrap,
    "rejected_status": lambda d: d.replace("<cStat>100</cStat>", "<cStat>302</cStat>").replace(
        "Autorizado o uso da NF-e", "Uso Denegado: irregularidade fiscal do destinatario"
    ),
    "test_environment": lambda d: d.replace("<tpAmb>1</tpAmb>", "<tpAmb>2</tpAmb>"),
}


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory, reference: ReferenceData) -> Path:
    """300 valid generated invoices, 10% of them cancelled, under ``valid/``."""
    root = tmp_path_factory.mktemp("corpus")
    (root / "valid").mkdir()
    for doc in iter_documents(reference, invoices=300, seed=7, cancel_share=0.1):
        (root / "valid" / doc.name).write_bytes(doc.data)
    return root


@pytest.fixture(scope="session")
def broken(tmp_path_factory: pytest.TempPathFactory, reference: ReferenceData) -> Path:
    """One deliberately broken document per reason, named ``<reason>.xml``."""
    root = tmp_path_factory.mktemp("broken")
    docs = list(iter_documents(reference, invoices=12, seed=11, cancel_share=0.5))
    invoices = [d for d in docs if d.kind == "nfeProc"]
    events = [d for d in docs if d.kind == "procEventoNFe"]
    for i, (reason, breaker) in enumerate(BREAKERS.items()):
        (root / f"{reason}.xml").write_text(breaker(invoices[i].data.decode()), encoding="utf-8")
    event = (
        events[0]
        .data.decode()
        .replace("<tpEvento>110111</tpEvento>", "<tpEvento>110110</tpEvento>")
    )
    (root / "unsupported_event.xml").write_text(event, encoding="utf-8")
    return root
