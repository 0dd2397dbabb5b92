"""Synthetic nfeProc documents: deterministic, valid against the official XSD, consistent."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from dataflow.invoices.checkdigits import is_valid_access_key, is_valid_cnpj
from dataflow.invoices.nfe.xsd import schema_set
from dataflow.invoices.reference import ReferenceData
from dataflow.invoices.synthetic.xmlgen import generate_xml, iter_documents

NS = {"n": "http://www.portalfiscal.inf.br/nfe"}


def test_same_seed_same_bytes(tmp_path: Path, reference: ReferenceData) -> None:
    a = generate_xml(reference, tmp_path / "a", invoices=40, seed=5, cancel_share=0.2)
    b = generate_xml(reference, tmp_path / "b", invoices=40, seed=5, cancel_share=0.2)
    files_a = sorted(p.name for p in a.out.iterdir())
    assert files_a == sorted(p.name for p in b.out.iterdir())
    assert len(files_a) == 40 + a.cancellations
    for name in files_a:
        assert (a.out / name).read_bytes() == (b.out / name).read_bytes()
    other = {d.data for d in iter_documents(reference, invoices=40, seed=6, cancel_share=0.2)}
    assert other.isdisjoint((a.out / name).read_bytes() for name in files_a)


def test_documents_validate_against_the_official_xsd(reference: ReferenceData) -> None:
    schemas = schema_set()
    docs = list(iter_documents(reference, invoices=120, seed=3, cancel_share=0.25))
    models = set()
    for doc in docs:
        root = etree.fromstring(doc.data)
        schema = schemas.for_root(root.tag)
        assert schema is not None
        assert schema.validate(root), (doc.name, schema.error_log)
        if doc.kind == "nfeProc":
            models.add(root.findtext(".//n:ide/n:mod", namespaces=NS))
    assert models == {"55", "65"}
    assert sum(d.kind == "procEventoNFe" for d in docs) > 0


@settings(max_examples=15, deadline=None)
@given(st.integers(min_value=0, max_value=2**32))
def test_keys_cnpjs_and_totals_are_consistent(reference: ReferenceData, seed: int) -> None:
    for doc in iter_documents(reference, invoices=3, seed=seed, alnum_share=0.5):
        root = etree.fromstring(doc.data)

        def text(path: str, root: etree._Element = root) -> str:
            return str(root.xpath(f"string({path})", namespaces=NS))

        key = doc.access_key
        assert is_valid_access_key(key)
        assert is_valid_cnpj(text("//n:emit/n:CNPJ"))
        assert text("//n:infNFe/@Id") == "NFe" + key
        assert text("//n:protNFe/n:infProt/n:chNFe") == key
        assert text("//n:protNFe/n:infProt/n:cStat") == "100"
        cents = [
            round(float(v) * 100)
            for v in root.xpath("//n:det/n:prod/n:vProd/text()", namespaces=NS)
        ]
        assert sum(cents) == round(float(text("//n:ICMSTot/n:vProd")) * 100)
        v_nf = round(float(text("//n:ICMSTot/n:vNF")) * 100)
        assert v_nf == sum(cents) + round(float(text("//n:ICMSTot/n:vFrete")) * 100)
