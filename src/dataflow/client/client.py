"""The client: one HTTP connection pool, typed filters, pagination, columnar results.

It depends only on httpx, pyarrow and polars (what a partner's data engineer already has), never
on the server's modules.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

import httpx
import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

__all__ = ["ApiError", "Client", "FilterValue", "Prefix", "Range", "WireFormat"]

WireFormat = Literal["arrow", "parquet", "json", "csv"]
_ACCEPT = {
    "arrow": "application/vnd.apache.arrow.stream",
    "parquet": "application/vnd.apache.parquet",
    "json": "application/json",
    "csv": "text/csv",
}
_PAGE_ROWS = {"arrow": 250_000, "parquet": 250_000, "json": 10_000, "csv": 10_000}


@dataclass(frozen=True, slots=True)
class Range:
    """Codes from ``low`` to ``high`` inclusive (either end open), e.g. months."""

    low: str | None = None
    high: str | None = None

    def __str__(self) -> str:
        return f"{self.low or ''}..{self.high or ''}"


@dataclass(frozen=True, slots=True)
class Prefix:
    """Every code under a hierarchy prefix, e.g. ``Prefix("47")`` for CNAE division 47…"""

    prefix: str

    def __str__(self) -> str:
        return f"{self.prefix}*"


FilterValue = str | int | Range | Prefix | Sequence[str | int]


class ApiError(Exception):
    """An RFC 9457 problem from the API: branch on ``kind`` (the last part of its type URI)."""

    def __init__(self, status: int, problem: Mapping[str, Any]) -> None:
        self.status = status
        self.problem = dict(problem)
        self.type = str(problem.get("type", ""))
        self.kind = self.type.rsplit("/", 1)[-1]
        self.detail = str(problem.get("detail", ""))
        super().__init__(f"{status} {self.kind}: {self.detail}")


def _filter(value: FilterValue) -> str:
    if isinstance(value, str | int | Range | Prefix):
        return str(value)
    return ",".join(str(v) for v in value)


class Client:
    """Partner API client. Thread-compatible; use one per thread or share it for sequential use."""

    def __init__(
        self,
        base_url: str,
        key: str,
        *,
        timeout: float = 60.0,
        retries: int = 3,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(
            base_url=base_url,
            headers={"Authorization": f"Bearer {key}", "User-Agent": "dataflow-client"},
            timeout=timeout,
            transport=transport,
        )
        self._retries = retries

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _get(
        self, path: str, params: Mapping[str, str] | None = None, accept: str = "application/json"
    ) -> httpx.Response:
        for attempt in range(self._retries + 1):
            r = self._http.get(path, params=params, headers={"Accept": accept})
            if r.status_code in (429, 503) and attempt < self._retries:
                retry_after = r.headers.get("retry-after", "1")
                wait = float(retry_after) if retry_after.isdigit() else 1.0
                if wait <= 5:  # a short wait (busy server); a monthly cap is not worth waiting for
                    time.sleep(wait)
                    continue
            if r.status_code >= 400:
                try:
                    problem = r.json()
                except json.JSONDecodeError:
                    problem = {"detail": r.text[:500]}
                raise ApiError(r.status_code, problem)
            return r
        raise AssertionError("unreachable")

    # --- catalog ------------------------------------------------------------------------------

    def tables(self) -> list[dict[str, Any]]:
        tables: list[dict[str, Any]] = self._get("/v1/tables").json()["tables"]
        return tables

    def table(self, table_id: str) -> dict[str, Any]:
        meta: dict[str, Any] = self._get(f"/v1/tables/{table_id}").json()
        return meta

    def usage(self) -> dict[str, Any]:
        usage: dict[str, Any] = self._get("/v1/usage").json()
        return usage

    # --- rows ---------------------------------------------------------------------------------

    def pages(
        self,
        table_id: str,
        *,
        columns: Sequence[str] | None = None,
        sort: Sequence[str] | None = None,
        page_rows: int | None = None,
        wire: WireFormat = "arrow",
        max_rows: int | None = None,
        **filters: FilterValue,
    ) -> Iterator[pa.Table]:
        """Each page as a pyarrow table, following cursors until the server says there is no more.

        Every page is one billable access: prefer Arrow or Parquet (bigger pages) for extracts.
        """
        params = {level: _filter(v) for level, v in filters.items()}
        if columns:
            params["columns"] = ",".join(columns)
        if sort:
            params["sort"] = ",".join(sort)
        limit = page_rows or _PAGE_ROWS[wire]
        served = 0
        while True:
            if max_rows is not None:
                limit = min(limit, max_rows - served)
            params["limit"] = str(limit)
            r = self._get(f"/v1/tables/{table_id}/rows", params, _ACCEPT[wire])
            page = _decode(r, wire)
            served += page.num_rows
            yield page
            cursor = r.headers.get("dataflow-next-cursor")
            if r.headers.get("dataflow-has-more") != "true" or not cursor:
                return
            if max_rows is not None and served >= max_rows:
                return
            params["cursor"] = cursor

    def arrow(self, table_id: str, **kwargs: Any) -> pa.Table:
        """Every matching row as one pyarrow table (see :meth:`pages` for the arguments)."""
        pages = list(self.pages(table_id, **kwargs))
        return pa.concat_tables(pages, promote_options="permissive") if pages else pa.table({})

    def polars(self, table_id: str, **kwargs: Any) -> pl.DataFrame:
        """Every matching row as one polars frame."""
        frame = pl.from_arrow(self.arrow(table_id, **kwargs))
        assert isinstance(frame, pl.DataFrame)
        return frame


def _decode(r: httpx.Response, wire: WireFormat) -> pa.Table:
    if wire == "arrow":
        return ipc.open_stream(r.content).read_all()
    if wire == "parquet":
        return pq.read_table(pa.BufferReader(r.content))  # reads the body in place, no copy
    if wire == "csv":
        # Codes are strings (leading zeros matter), even when they look like numbers.
        head = r.content.split(b"\n", 1)[0].decode()
        names = head.split(",")
        measures = {"item_value", "invoice_count", "issuer_count"}
        types = {n: pa.string() for n in names if n not in measures}
        return pacsv.read_csv(
            io.BytesIO(r.content),
            convert_options=pacsv.ConvertOptions(column_types=types, strings_can_be_null=False),
        )
    body = r.json()
    rows = body["rows"]
    if not rows:
        return pa.table({c: pa.array([], pa.string()) for c in body["columns"]})
    return pa.Table.from_pylist(rows)
