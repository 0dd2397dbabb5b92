from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dataflow.invoices.checkdigits import is_valid_access_key, is_valid_cnpj
from dataflow.invoices.factstore import FactStore
from dataflow.invoices.reference import ReferenceData
from dataflow.invoices.synthetic.generator import GenerationSummary, generate, parse_months
from dataflow.invoices.synthetic.population import OFFICIAL_EXAMPLE


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


@settings(max_examples=4, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    items=st.integers(1, 12_000),
    months=st.sampled_from(["2026-01", "2025-11:2026-02", "2026-06:2026-07"]),
)
def test_determinism_property(reference: ReferenceData, seed: int, items: int, months: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        digests = []
        for name in ("x", "y"):
            store = FactStore(Path(tmp) / name)
            summary = generate(
                store, reference, items=items, seed=seed, months=parse_months(months)
            )
            assert summary.items == items
            digests.append(_digest(store.root))
        assert digests[0] == digests[1]


@pytest.mark.slow
def test_bytes_do_not_depend_on_workers(tmp_path: Path, reference: ReferenceData) -> None:
    months = parse_months("2026-06:2026-07")
    one, two = FactStore(tmp_path / "one"), FactStore(tmp_path / "two")
    s1 = generate(one, reference, items=40_000, seed=9, months=months, chunk_items=8_000)
    s2 = generate(two, reference, items=40_000, seed=9, months=months, chunk_items=8_000, workers=2)
    assert s1 == s2
    assert s1.parts > 4  # several parts per partition
    assert _digest(one.root) == _digest(two.root)


# --- shape: one mid-sized store (June-August 2026, so alphanumeric CNPJs start mid-way) -----

ITEMS = 400_000


@pytest.fixture(scope="module")
def store(
    tmp_path_factory: pytest.TempPathFactory, reference: ReferenceData
) -> Iterator[tuple[FactStore, GenerationSummary]]:
    st_ = FactStore(tmp_path_factory.mktemp("synthetic"))
    summary = generate(st_, reference, items=ITEMS, seed=5, months=parse_months("2026-06:2026-08"))
    yield st_, summary


@pytest.fixture(scope="module")
def con(store: tuple[FactStore, GenerationSummary]) -> duckdb.DuckDBPyConnection:
    fs = store[0]
    c = duckdb.connect()
    c.execute(
        f"CREATE VIEW f AS SELECT * FROM read_parquet('{fs.facts_glob()}', hive_partitioning=false)"
    )
    c.execute(
        "CREATE VIEW i AS SELECT * FROM "
        f"read_parquet('{fs.invoices_glob()}', hive_partitioning=false)"
    )
    return c


def _one(con: duckdb.DuckDBPyConnection, sql: str) -> tuple:  # type: ignore[type-arg]
    row = con.execute(sql).fetchone()
    assert row is not None
    return row


def test_counts_and_summary(
    con: duckdb.DuckDBPyConnection, store: tuple[FactStore, GenerationSummary]
) -> None:
    summary = store[1]
    items, invoices, nfce = _one(
        con,
        "SELECT count(*), count(DISTINCT access_key), count(DISTINCT access_key) "
        "FILTER (WHERE model = 65) FROM f",
    )
    assert items == summary.items == ITEMS
    assert invoices == summary.invoices == _one(con, "SELECT count(*) FROM i")[0]
    assert nfce == summary.nfce_invoices
    # NFC-e are most invoices (DESIGN §4: 100-150 M NFC-e against 10-20 M NF-e a month).
    assert 0.75 < nfce / invoices < 0.95


def test_items_per_invoice(con: duckdb.DuckDBPyConnection) -> None:
    rows = con.execute(
        "SELECT model, median(n), avg(n), max(n) FROM "
        "(SELECT access_key, any_value(model) AS model, count(*) AS n FROM f GROUP BY 1) "
        "GROUP BY 1"
    ).fetchall()
    by_model = {m: (med, mean, top) for m, med, mean, top in rows}
    med, mean, top = by_model[65]
    assert 4 <= med <= 6 and 7 <= mean <= 16 and top <= 990  # retail: ~5 median, long tail
    med, mean, top = by_model[55]
    assert 2 <= med <= 5 and 3 <= mean <= 8 and top <= 990  # NF-e: 3-8


def test_zipf_concentration(con: duckdb.DuckDBPyConnection) -> None:
    top1, bottom_half, n = _one(
        con,
        """WITH t AS (SELECT issuer_root, sum(item_value) AS v FROM f GROUP BY 1),
           r AS (SELECT v, row_number() OVER (ORDER BY v DESC) AS k, count(*) OVER () AS n FROM t)
           SELECT sum(v) FILTER (WHERE k <= n / 100) / sum(v),
                  sum(v) FILTER (WHERE k > n / 2) / sum(v), any_value(n) FROM r""",
    )
    assert n > 1_000
    assert top1 > 0.25  # a few giants…
    assert bottom_half < 0.05  # …and a long tail
    # Giants run many establishments; most taxpayers have one.
    most, single = _one(
        con,
        """SELECT max(c), avg(CASE WHEN c = 1 THEN 1 ELSE 0 END) FROM
           (SELECT issuer_root, count(DISTINCT issuer_cnpj) AS c FROM f GROUP BY 1)""",
    )
    assert most >= 20 and single > 0.8


def test_thin_and_dominated_cells(con: duckdb.DuckDBPyConnection) -> None:
    thin, dominated, cells = _one(
        con,
        """WITH c AS (SELECT issuer_municipality, substr(issuer_cnae, 1, 2) AS d, issuer_root,
                             sum(item_value) AS v FROM f WHERE issuer_uf = 'MG' GROUP BY ALL),
           s AS (SELECT issuer_municipality, d, count(*) AS n, max(v) / sum(v) AS top
                 FROM c GROUP BY ALL)
           SELECT count(*) FILTER (WHERE n < 3), count(*) FILTER (WHERE n >= 3 AND top > 0.9),
                  count(*) FROM s""",
    )
    assert thin > cells / 3  # many cells have fewer than 3 taxpayers
    assert dominated > 10  # and some with enough taxpayers are dominated by one


def test_codes_come_from_the_reference(
    con: duckdb.DuckDBPyConnection, reference: ReferenceData
) -> None:
    munis = {m.code for m in reference.municipalities}
    capitals = {s.uf: s.capital for s in reference.states}
    subclasses = {e.code for e in reference.cnae_level("subclass")}
    ncms = {code for code, _ in reference.ncm}
    cfops = {code for code, _ in reference.cfop}
    for uf, muni in con.execute("SELECT DISTINCT issuer_uf, issuer_municipality FROM f").fetchall():
        assert muni in munis if uf == "MG" else muni == capitals[uf]
    assert {r[0] for r in con.execute("SELECT DISTINCT issuer_cnae FROM f").fetchall()} <= (
        subclasses
    )
    assert {r[0] for r in con.execute("SELECT DISTINCT ncm FROM f").fetchall()} <= ncms
    used = {r[0] for r in con.execute("SELECT DISTINCT cfop FROM f").fetchall()}
    assert used <= cfops
    assert {c[0] for c in used} == {"5", "6", "7"}
    out_of_state = _one(con, "SELECT count(*) FILTER (WHERE issuer_uf <> 'MG') / count(*) FROM f")
    assert 0 < out_of_state[0] < 0.05  # some sellers from other states, most from MG


def test_cfop_agrees_with_the_destination(con: duckdb.DuckDBPyConnection) -> None:
    wrong = _one(
        con,
        """SELECT count(*) FILTER (WHERE
             (cfop LIKE '5%' AND recipient_uf <> issuer_uf)
             OR (cfop LIKE '6%' AND (recipient_uf = issuer_uf OR recipient_uf = 'EX'))
             OR (cfop LIKE '7%' AND recipient_uf <> 'EX')) FROM f""",
    )
    assert wrong == (0,)
    # No own ICMS on ST resales, exports and transfers; interstate rates are 7% or 12%.
    assert _one(con, "SELECT max(icms_value) FROM f WHERE cfop IN ('5405', '7101', '5152')") == (0,)
    rates = con.execute(
        """SELECT DISTINCT round(100 * icms_value / item_value) FROM f
           WHERE cfop = '6102' AND item_value >= 100"""
    ).fetchall()
    assert {r[0] for r in rates} <= {7.0, 12.0}


def test_keys_and_cnpjs_are_valid_and_consistent(
    con: duckdb.DuckDBPyConnection, reference: ReferenceData
) -> None:
    cuf = {s.uf: s.code for s in reference.states}
    rows = con.execute(
        """SELECT DISTINCT access_key, issuer_cnpj, issuer_root, issuer_uf, model,
                  strftime(timezone('America/Sao_Paulo', issued_at), '%y%m') FROM f"""
    ).fetchall()
    for key, cnpj, root, uf, model, yymm in rows:
        assert is_valid_access_key(key), key
        assert is_valid_cnpj(cnpj), cnpj
        assert root == cnpj[:8]
        assert key[:2] == cuf[uf] and key[2:6] == yymm
        assert key[6:20] == cnpj and int(key[20:22]) == model
        assert key[22:25] == "001" and key[34] in "19"
    # Invoice numbers run 1, 2, 3… per establishment and model, in time order, across months.
    gaps = _one(
        con,
        """WITH n AS (SELECT issuer_cnpj, model, CAST(substr(access_key, 26, 9) AS BIGINT) AS nnf,
                             issued_at FROM i),
           r AS (SELECT nnf, row_number() OVER (PARTITION BY issuer_cnpj, model
                                                ORDER BY issued_at, nnf) AS k FROM n)
           SELECT count(*) FILTER (WHERE nnf <> k) FROM r""",
    )
    assert gaps == (0,)


def test_alphanumeric_cnpjs_from_july_2026(con: duckdb.DuckDBPyConnection) -> None:
    rows = con.execute(
        """SELECT strftime(timezone('America/Sao_Paulo', issued_at), '%Y-%m') AS m,
                  count(DISTINCT issuer_cnpj) FROM f
           WHERE regexp_matches(issuer_cnpj, '[A-Z]') GROUP BY 1"""
    ).fetchall()
    months = dict(rows)
    assert "2026-06" not in months  # none before NT 2025.001 takes effect
    assert months.get("2026-07", 0) + months.get("2026-08", 0) > 3
    example = _one(con, f"SELECT count(*) FROM f WHERE issuer_cnpj = '{OFFICIAL_EXAMPLE}'")
    assert example[0] > 0  # the NT's own example issues invoices
    bad_root = _one(con, "SELECT count(*) FROM f WHERE issuer_root <> substr(issuer_cnpj, 1, 8)")
    assert bad_root == (0,)


def test_invoice_totals_equal_item_sums(con: duckdb.DuckDBPyConnection) -> None:
    diff = _one(
        con,
        """SELECT count(*) FROM (SELECT access_key, sum(item_value) AS s, count(DISTINCT model)
                                   AS mo, count(DISTINCT issued_at) AS t,
                                   count(DISTINCT issuer_cnpj) AS c FROM f GROUP BY 1) x
           FULL JOIN i USING (access_key)
           WHERE x.s IS DISTINCT FROM i.total_value OR mo <> 1 OR t <> 1 OR c <> 1""",
    )
    assert diff == (0,)
    assert _one(con, "SELECT count(*) FROM i WHERE status <> 'authorized'") == (0,)


def test_sorted_within_partitions(store: tuple[FactStore, GenerationSummary]) -> None:
    fs = store[0]
    for partition in sorted(fs.facts_dir.glob("*/*")):
        parts = sorted(partition.glob("*.parquet"))
        table = pq.read_table(
            parts, columns=["issuer_municipality", "issuer_cnae", "issued_at"]
        ).to_pylist()
        keys = [(r["issuer_municipality"], r["issuer_cnae"], r["issued_at"]) for r in table]
        assert keys == sorted(keys), partition


def test_seasonality_and_weekly_rhythm(con: duckdb.DuckDBPyConnection) -> None:
    months = dict(
        con.execute(
            """SELECT strftime(timezone('America/Sao_Paulo', issued_at), '%m'), count(*)
               FROM f GROUP BY 1"""
        ).fetchall()
    )
    assert sum(months.values()) == ITEMS and months["08"] > months["06"]
    sunday, weekday = _one(
        con,
        """SELECT count(*) FILTER (WHERE dayofweek(t) = 0) / 4.0,
                  count(*) FILTER (WHERE dayofweek(t) = 3) / 4.0
           FROM (SELECT timezone('America/Sao_Paulo', issued_at) AS t FROM i WHERE model = 55)""",
    )
    assert sunday < weekday / 5  # businesses barely invoice on Sundays


@pytest.mark.slow
def test_every_municipality_appears_at_scale(tmp_path: Path, reference: ReferenceData) -> None:
    fs = FactStore(tmp_path)
    generate(fs, reference, items=1_000_000, seed=2, months=parse_months("2026-03"), workers=2)
    found = duckdb.execute(
        f"""SELECT count(DISTINCT issuer_municipality) FROM read_parquet('{fs.facts_glob()}')
            WHERE issuer_uf = 'MG'"""
    ).fetchone()
    assert found == (len(reference.municipalities),)


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


def test_rejects_bad_arguments(tmp_path: Path, reference: ReferenceData) -> None:
    months = parse_months("2026-01")
    with pytest.raises(ValueError, match="items"):
        generate(FactStore(tmp_path), reference, items=0, seed=1, months=months)
    with pytest.raises(ValueError, match="seed"):
        generate(FactStore(tmp_path), reference, items=10, seed=-1, months=months)


# --- a month planned in blocks (how 10⁹ items stay in bounded memory) ----------------------


@pytest.fixture(scope="module")
def blocked(
    tmp_path_factory: pytest.TempPathFactory, reference: ReferenceData
) -> tuple[FactStore, GenerationSummary]:
    fs = FactStore(tmp_path_factory.mktemp("blocked"))
    summary = generate(
        fs, reference, items=60_000, seed=8, months=parse_months("2026-05"),
        chunk_items=7_000, plan_items=15_000, taxpayers=400,
    )  # fmt: skip
    return fs, summary


def test_a_month_planned_in_blocks_keeps_every_invariant(
    blocked: tuple[FactStore, GenerationSummary],
) -> None:
    fs, summary = blocked
    assert summary.items == 60_000 and summary.taxpayers == 400
    c = duckdb.connect()
    f = f"read_parquet('{fs.facts_glob()}', hive_partitioning=false)"
    i = f"read_parquet('{fs.invoices_glob()}', hive_partitioning=false)"
    assert c.execute(f"SELECT count(*) FROM {f}").fetchone() == (60_000,)
    # one invoice number per establishment and model, in time order
    nnf = c.execute(
        f"""SELECT count(*), count(DISTINCT (issuer_cnpj, model, substr(access_key, 26, 9)))
            FROM {i}"""
    ).fetchone()
    assert nnf is not None and nnf[0] == nnf[1] == summary.invoices
    # every taxpayer that issues lives in one block: at least most of them issue
    issuers = c.execute(f"SELECT count(DISTINCT issuer_root) FROM {f}").fetchone()
    assert issuers is not None and 0.5 * 400 < issuers[0] <= 400
    for partition in sorted(fs.facts_dir.glob("*/*")):
        table = pq.read_table(
            sorted(partition.glob("*.parquet")),
            columns=["issuer_municipality", "issuer_cnae", "issued_at"],
        ).to_pylist()
        keys = [(r["issuer_municipality"], r["issuer_cnae"], r["issued_at"]) for r in table]
        assert keys == sorted(keys)
    assert len(list(fs.facts_dir.glob("*/*/*.parquet"))) >= 60_000 // 7_000


def test_blocks_are_deterministic_whatever_the_workers(
    blocked: tuple[FactStore, GenerationSummary], tmp_path: Path, reference: ReferenceData
) -> None:
    again = FactStore(tmp_path / "again")
    generate(
        again, reference, items=60_000, seed=8, months=parse_months("2026-05"),
        chunk_items=7_000, plan_items=15_000, taxpayers=400, workers=2,
    )  # fmt: skip
    assert _digest(again.root) == _digest(blocked[0].root)


def test_default_taxpayers_stop_at_a_real_month() -> None:
    from dataflow.invoices.synthetic.population import MG_ISSUERS, default_taxpayers

    assert default_taxpayers(60_000) == 500
    assert default_taxpayers(10**9) == MG_ISSUERS == 250_000
