from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb
import pytest

from dataflow.aggregation.checkdigits import is_valid_access_key, is_valid_cnpj
from dataflow.aggregation.factstore import FactStore
from dataflow.aggregation.generator import generate, parse_months
from dataflow.aggregation.reference import ReferenceData


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*.parquet")):
        h.update(p.relative_to(root).as_posix().encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def test_same_seed_same_bytes(tmp_path: Path, reference: ReferenceData) -> None:
    a, b, c = (FactStore(tmp_path / n) for n in "abc")
    months = parse_months("2026-01:2026-02")
    generate(a, reference, items=5_000, seed=3, months=months)
    generate(b, reference, items=5_000, seed=3, months=months)
    generate(c, reference, items=5_000, seed=4, months=months)
    assert _digest(a.root) == _digest(b.root)
    assert _digest(a.root) != _digest(c.root)


def test_shape_and_validity(fact_store: FactStore, reference: ReferenceData) -> None:
    con = duckdb.connect()
    facts = f"read_parquet('{fact_store.facts_glob()}')"
    n, roots = con.execute(f"SELECT count(*), count(DISTINCT issuer_root) FROM {facts}").fetchone()  # type: ignore[misc]
    assert n == 60_000
    assert roots > 100
    known = {m.code for m in reference.municipalities}
    sample = con.execute(
        f"SELECT DISTINCT issuer_municipality, issuer_cnpj, access_key FROM {facts} LIMIT 500"
    ).fetchall()
    for muni, cnpj, key in sample:
        assert muni in known
        assert is_valid_cnpj(cnpj)
        assert is_valid_access_key(key)
        assert key[6:20] == cnpj
    # Invoice totals equal the sum of their items.
    diff = con.execute(
        f"""SELECT count(*) FROM (SELECT access_key, sum(item_value) s FROM {facts} GROUP BY 1) f
            JOIN read_parquet('{fact_store.invoices_glob()}') i USING (access_key)
            WHERE f.s <> i.total_value"""
    ).fetchone()
    assert diff == (0,)


def test_months_parsing() -> None:
    assert [str(m) for m in parse_months("2025-11:2026-02")] == [
        "2025-11",
        "2025-12",
        "2026-01",
        "2026-02",
    ]
    with pytest.raises(ValueError, match="ends before"):
        parse_months("2026-03:2026-01")
    with pytest.raises(ValueError, match=r"2026-01"):
        parse_months("March")
