"""The fast path accepts a document only when the reference reading accepts it with the same facts.

Every document is run through both: ``FastTask`` (the bulk path) and ``parse_document`` (the
reference). Whatever the fast path takes must be an invoice for the reference with the same rows;
whatever it hands back is the reference's to accept or reject. The fast path's reading is compiled
(``nfe._read``) with a pure-Python twin (``read_python``): every document is also read by both,
which must return the same values. Documents: generated ones, one per quarantine reason, nfelib's
real samples, and generated ones mutated at random (values replaced, elements repeated, dropped,
moved, reordered or put in another namespace, attributes dropped, comments, processing
instructions and entity references slipped in).
"""

from __future__ import annotations

import random
import re
from copy import deepcopy
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from dataflow.invoices.ingest_worker import TaskResult, parse_files, reference_tables
from dataflow.invoices.nfe import _read as _nfe_read
from dataflow.invoices.nfe import batch as nfe_batch
from dataflow.invoices.nfe.batch import COMPILED_READ, FastTask, _bad, _instants, read_python
from dataflow.invoices.nfe.reader import (
    _MONEY,
    _NCM,
    _UNIT,
    NS,
    SEP,
    ParsedCancellation,
    ParsedInvoice,
    instant,
    joined,
    parse_document,
    parser,
)
from dataflow.invoices.reference import ReferenceData
from dataflow.invoices.synthetic.xmlgen import iter_documents
from tests.invoices.conftest import BREAKERS


def _fast(data: bytes) -> tuple[pa.Table, pa.Table] | None:
    """The fast path's rows for one document, or None when it hands the document back; checks
    that the compiled and the Python reading read the same."""
    task = FastTask()
    try:
        root = etree.fromstring(data, parser=parser())
    except etree.XMLSyntaxError:
        return None
    assert COMPILED_READ is not None
    assert COMPILED_READ(root) == read_python(root)
    if task.add(0, root) is None:
        return None
    facts, invoices, deferred = task.finish()
    if deferred:
        assert facts is None and invoices is None
        return None
    assert facts is not None and invoices is not None
    return facts, invoices


def _assert_agrees(data: bytes) -> bool:
    """Both readings agree on ``data``; True when the fast path took it."""
    fast = _fast(data)
    reference = parse_document(data)
    if fast is None:
        return False
    assert isinstance(reference, ParsedInvoice), reference
    facts, invoices = reference_tables([reference], [0])
    assert fast[0].to_pylist() == facts.to_pylist()
    assert fast[1].to_pylist() == invoices.to_pylist()
    assert fast[0].schema == facts.schema and fast[1].schema == invoices.schema
    return True


def test_the_compiled_reading_is_built_against_the_installed_lxml() -> None:
    # uv sync builds it (setup.py); without it every test here would compare Python with Python.
    assert COMPILED_READ is not None and nfe_batch.READ is COMPILED_READ
    assert etree.__version__ == _nfe_read.BUILT_WITH_LXML
    with pytest.raises(TypeError):
        COMPILED_READ("<nfeProc/>")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        COMPILED_READ(etree._Element())


@pytest.fixture(scope="module")
def generated(reference: ReferenceData) -> list[bytes]:
    docs = iter_documents(reference, invoices=40, seed=5, alnum_share=0.3)
    return [d.data for d in docs]


def test_generated_invoices_take_the_fast_path_with_the_reference_facts(
    generated: list[bytes],
) -> None:
    assert all(_assert_agrees(d) for d in generated)


def test_each_broken_document_is_handed_back(generated: list[bytes]) -> None:
    for reason, breaker in BREAKERS.items():
        data = breaker(generated[0].decode()).encode()
        assert not _assert_agrees(data), reason


def test_an_empty_nfe_is_handed_back(tmp_path: Path) -> None:
    data = f'<nfeProc xmlns="{NS}" versao="4.00"><NFe/><protNFe/></nfeProc>'.encode()
    assert not _assert_agrees(data)
    (tmp_path / "empty.xml").write_bytes(data)
    result = parse_files([str(tmp_path / "empty.xml")], False, str(tmp_path / "q"))
    assert result.rejected == [(str(tmp_path / "empty.xml"), "schema_violation")]


def test_nfelib_samples_agree(nfe_samples: Path) -> None:
    taken = [_assert_agrees(p.read_bytes()) for p in sorted(nfe_samples.rglob("*.xml"))]
    assert len(taken) > 10


_VALUES = st.one_of(
    st.sampled_from(["", " ", "0", "00", "1", "2", "55", "65", "100", "13.04", "5102", "MG"]),
    st.sampled_from(["2026-02-30T10:00:00-03:00", "2026-01-05T10:00:00-03:00", "31\n22", "UN "]),
    st.text(alphabet="0123456789.-:TA \n", max_size=14),
)


# Declares the entity the mutations insert, and a default nItem (so that a det without one reads
# "1" through the DTD: both readings must ask lxml the same way).
_DOCTYPE = '<!DOCTYPE nfeProc [<!ENTITY e "1"><!ATTLIST det nItem CDATA "1">]>'


def _mutate(data: bytes, rng: random.Random, value: str) -> bytes:
    root = etree.fromstring(data, parser=parser())
    elements = list(root.iter(etree.Element))
    el = rng.choice(elements[1:])
    parent = el.getparent()
    assert parent is not None
    kind = rng.randrange(11)
    if kind == 0 and len(el) == 0:
        el.text = value
    elif kind == 1:  # a copy before or after, with the value where it has no children
        copy = deepcopy(el)  # a re-parse of the fragment would fail on an undeclared &e;
        if len(copy) == 0 and rng.random() < 0.5:
            copy.text = value
        parent.insert(parent.index(el) + rng.choice([0, 1]), copy)
    elif kind == 2:
        parent.remove(el)
    elif kind == 3:
        target = rng.choice([e for e in elements if el not in e.iterancestors() and e is not el])
        parent.remove(el)
        target.insert(rng.randrange(len(target) + 1), el)
    elif kind == 4 and len(parent) > 1:
        i, j = sorted(rng.sample(range(len(parent)), 2))
        a, b = parent[i], parent[j]
        parent.replace(b, etree.Element("placeholder"))
        parent.replace(a, b)
        parent.replace(parent[j], a)
    elif kind == 5:
        el.insert(0, etree.Comment("c"))
    elif kind == 6:
        el.set("nItem", value) if el.tag.endswith("det") else el.set("versao", value)
    elif kind == 7:
        el.tag = rng.choice(["{urn:other}", ""]) + etree.QName(el).localname
    elif kind == 8:
        el.insert(rng.randrange(len(el) + 1), etree.ProcessingInstruction("pi", "x"))
    elif kind == 9:
        el.insert(rng.randrange(len(el) + 1), etree.Entity("e"))
    else:
        for name in ("nItem", "versao", "Id"):
            el.attrib.pop(name, None)
    doctype = _DOCTYPE if kind in (9, 10) or b"<!DOCTYPE" in data else None
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", doctype=doctype)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**32), st.integers(0, 39), _VALUES, st.integers(1, 3))
def test_mutated_documents_agree(
    generated: list[bytes], seed: int, which: int, value: str, times: int
) -> None:
    rng = random.Random(seed)
    data = generated[which]
    for _ in range(times):
        data = _mutate(data, rng, value)
    _assert_agrees(data)


def test_a_task_mixing_paths_loads_what_the_reference_loads(
    tmp_path: Path, generated: list[bytes], nfe_samples: Path, broken: Path
) -> None:
    files: list[Path] = []
    for i, data in enumerate(generated[:20]):
        if i % 5 == 4:  # the reference loads these; the fast path hands them back (layout)
            data = data.replace(b"<NFe>", b"<!-- a comment --><NFe>", 1)
        files.append(tmp_path / f"g{i}.xml")
        files[-1].write_bytes(data)
    assert [_fast(f.read_bytes()) is None for f in files[3:5]] == [False, True]
    files += sorted(nfe_samples.rglob("*.xml")) + sorted(broken.glob("*.xml"))
    result = parse_files([str(f) for f in files], False, str(tmp_path / "q"))
    docs: list[tuple[int, ParsedInvoice]] = []
    for i, path in enumerate(files):
        doc = parse_document(path.read_bytes())
        if isinstance(doc, ParsedInvoice):
            assert result.order[i] == ("i", doc.access_key)
            docs.append((i, doc))
        elif isinstance(doc, ParsedCancellation):
            assert result.order[i] == ("c", doc.access_key)
        else:
            assert result.order[i] == ("r", str(path))
            assert (str(path), doc.reason.value) in result.rejected
    assert result.facts is not None and result.invoices is not None
    facts, invoices = reference_tables([d for _, d in docs], [i for i, _ in docs])
    by_doc = [("_doc", "ascending")]
    assert result.invoices.sort_by(by_doc).to_pylist() == invoices.to_pylist()
    assert result.facts.sort_by(by_doc).to_pylist() == facts.sort_by(by_doc).to_pylist()


def test_both_readings_give_the_same_task(
    tmp_path: Path,
    generated: list[bytes],
    nfe_samples: Path,
    broken: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = random.Random(7)
    files = sorted(nfe_samples.rglob("*.xml")) + sorted(broken.glob("*.xml"))
    for i, data in enumerate(generated):
        for _ in range(i % 3):
            data = _mutate(data, rng, rng.choice(["0", "1", "", "5102"]))
        files.append(tmp_path / f"g{i}.xml")
        files[-1].write_bytes(data)
    paths = [str(f) for f in files]

    def task() -> TaskResult:
        return parse_files(paths, False, str(tmp_path / "q"))

    compiled = task()
    monkeypatch.setattr(nfe_batch, "READ", read_python)
    python = task()
    assert compiled.order == python.order and compiled.rejected == python.rejected
    assert compiled.facts is not None and compiled.invoices is not None
    assert compiled.facts.equals(python.facts) and compiled.invoices.equals(python.invoices)
    assert sum(kind == "i" for kind, _ in compiled.order) > len(generated) // 2


@settings(max_examples=200, deadline=None)
@given(
    st.datetimes(datetime(2000, 1, 1), datetime(2099, 12, 31)),
    st.integers(-12, 14),
)
def test_arrow_instants_equal_the_reference(moment: datetime, offset: int) -> None:
    dh = (moment.replace(microsecond=0) - timedelta(hours=0)).strftime("%Y-%m-%dT%H:%M:%S")
    dh += f"{'+' if offset >= 0 else '-'}{abs(offset):02d}:00"
    issued, year, month, exists = _instants([dh, "2026-02-30T10:00:00-03:00"])
    assert exists.tolist() == [True, False]
    expected = instant(dh)
    assert expected is not None
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    got_us = (issued[0].as_py() - epoch) // timedelta(microseconds=1)
    assert (got_us, year[0].as_py(), month[0].as_py()) == expected


@given(st.lists(st.text(alphabet="0123456789.AUN \n\t" + SEP, max_size=10), max_size=8))
def test_a_joined_check_fails_exactly_when_one_value_does(values: list[str]) -> None:
    for pattern in (_MONEY, _NCM, _UNIT):
        if SEP in "".join(values) or not values:
            continue
        each = all(pattern.fullmatch(v) for v in values)
        assert bool(joined(pattern).fullmatch(SEP.join(values))) == each
        bad = _bad([values], (((0,), pattern, False),))
        assert bad == {i for i, v in enumerate(values) if not pattern.fullmatch(v)}


@given(st.from_regex(r"[0-9]{0,15}(\.[0-9]{0,3})?", fullmatch=True))
def test_money_pattern_is_tdec_1302(value: str) -> None:
    # The schema's TDec_1302 as the reference first wrote it (three alternatives).
    schema = re.compile(r"0|0\.[0-9]{2}|[1-9][0-9]{0,12}(\.[0-9]{2})?")
    assert bool(_MONEY.fullmatch(value)) == bool(schema.fullmatch(value))
