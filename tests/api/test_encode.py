"""Page bodies copied from pre-encoded text equal what the straightforward encoders write.

Any rows of any table, in any order, with any columns: JSON parses to the page frame's values,
CSV is byte for byte polars' ``write_csv`` of the page frame, Arrow and Parquet read back as the
page frame's Arrow table.
"""

from __future__ import annotations

import io
import json
from decimal import Decimal

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dataflow.aggregation.catalog import LoadedRelease, load_release
from dataflow.aggregation.query import Page
from dataflow.aggregation.release import ReleaseSummary
from dataflow.api.encode import Format, PageEncoder
from dataflow.api.rowtext import RowText


@pytest.fixture(scope="module")
def loaded(release: ReleaseSummary) -> LoadedRelease:
    return load_release(release.path)


@pytest.fixture(scope="module")
def encoder(loaded: LoadedRelease) -> PageEncoder:
    return PageEncoder(loaded)


@st.composite
def _pages(draw: st.DrawFn, loaded: LoadedRelease) -> tuple[str, Page]:
    table_id = draw(st.sampled_from(sorted(loaded.tables)))
    table, layout = loaded.tables[table_id], loaded.layouts[table_id]
    everything = draw(st.booleans())
    columns = (
        table.columns
        if everything
        else draw(st.lists(st.sampled_from(table.columns), min_size=1, unique=True))
    )
    start = st.integers(0, layout.height - 1)
    run = st.builds(
        lambda a, n: list(range(a, min(a + n, layout.height))), start, st.integers(1, 60)
    )
    rows = draw(st.one_of(st.lists(start, max_size=60), run))  # any rows, or a run (a slice)
    more = draw(st.booleans())
    page = Page(layout, np.array(rows, dtype=np.int64), tuple(columns), more, "c" if more else None)
    return table_id, page


def _plain(value: object) -> object:
    return float(value) if isinstance(value, Decimal) else value


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_every_format_encodes_the_page_frame(
    loaded: LoadedRelease, encoder: PageEncoder, data: st.DataObject
) -> None:
    table_id, page = data.draw(_pages(loaded))
    table = loaded.tables[table_id]
    frame = page.frame
    body = json.loads(encoder.encode(table, page, Format.JSON))
    assert body["columns"] == list(page.columns) and body["has_more"] == page.has_more
    assert body["next_cursor"] == page.next_cursor
    want = [{k: _plain(v) for k, v in row.items()} for row in frame.to_dicts()]
    assert body["rows"] == want
    csv = encoder.encode(table, page, Format.CSV)
    assert csv == frame.write_csv().encode()
    arrow = frame.to_arrow(compat_level=pl.CompatLevel.oldest())
    streamed = ipc.open_stream(encoder.encode(table, page, Format.ARROW)).read_all()
    assert streamed.equals(arrow)
    assert streamed.schema.metadata[b"dataflow.has_more"] == str(page.has_more).lower().encode()
    parquet = pq.read_table(io.BytesIO(encoder.encode(table, page, Format.PARQUET)))
    assert parquet.equals(arrow)


def test_text_needing_quotes_or_escapes_is_encoded(loaded: LoadedRelease) -> None:
    """Codes never need it, but the encoder does not rely on that: CSV quotes, JSON escapes."""
    odd = pa.table(
        {
            "name": ["a,b", 'say "hi"', "line\nbreak", None, "plain"],
            "value": pa.array([Decimal("1.50"), None, Decimal("-2.00"), Decimal(0), None]),
            "count": pa.array([1, 2, None, 4, 5], pa.int64()),
        }
    )
    text = RowText(odd, odd.column_names)
    frame = pl.from_arrow(odd)
    assert isinstance(frame, pl.DataFrame)
    rows = np.array([4, 0, 1, 2, 3], dtype=np.int64)
    for columns in (odd.column_names, ["value", "name"]):
        picked = frame[rows.tolist()].select(columns)
        assert b"".join(text.csv(rows, columns)) == picked.write_csv().encode()
        got = json.loads(b"".join(text.json(rows, columns)))
        assert got == [{k: _plain(v) for k, v in r.items()} for r in picked.to_dicts()]
    assert b"".join(text.json(np.array([], dtype=np.int64), ["name"])) == b"[]"
    assert b"".join(text.csv(np.array([], dtype=np.int64), ["name"])) == b"name\n"
