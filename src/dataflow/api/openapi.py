"""The OpenAPI document (Litestar's) and the docs page, completed with what signatures cannot say.

The rows route reads its filters dynamically (one query parameter per level of the table), and
answers in four media types; both are added here to the generated document, from the loaded
release, so the document describes exactly what this deployment serves.
"""

from __future__ import annotations

from litestar import Litestar
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, ScalarRenderPlugin, YamlRenderPlugin
from litestar.openapi.spec import Components, OpenAPIMediaType, Parameter, Schema, SecurityScheme
from litestar.openapi.spec.enums import OpenAPIFormat, OpenAPIType

from dataflow.aggregation.catalog import LoadedRelease
from dataflow.aggregation.query import MAX_CURSOR_CHARS, MAX_LIMIT
from dataflow.api.encode import ARROW, CSV, PARQUET
from dataflow.api.errors import PROBLEM_BASE, PROBLEM_TYPES

__all__ = ["DOCS_PATH", "complete_openapi", "openapi_config"]

DOCS_PATH = "/docs"  # docs page; the document itself at /docs/openapi.json

_DESCRIPTION = """Protected aggregate tables of Minas Gerais electronic invoices (NF-e, NFC-e),
published by SEF/MG under Resolução SEF nº 5.750/2024.

Authenticate with `Authorization: Bearer <key>`. Only `GET /v1/tables/{{table_id}}/rows` is
billable: one request is one access, counted before it is served. Cells that could reveal a
taxpayer are
suppressed: their measures are `null` and their `flag` is `X`; `_T` codes are margins (totals).

Errors are RFC 9457 problem documents (`application/problem+json`). Stable problem types, under
`{base}`:

{types}
"""


def openapi_config(version: str) -> OpenAPIConfig:
    types = "\n".join(f"- `{kind}` — {what}" for kind, what in PROBLEM_TYPES.items())
    return OpenAPIConfig(
        title="dataflow partner API",
        version=version,
        description=_DESCRIPTION.format(base=PROBLEM_BASE, types=types),
        path=DOCS_PATH,
        render_plugins=[ScalarRenderPlugin(path="/"), JsonRenderPlugin(), YamlRenderPlugin()],
        components=Components(
            security_schemes={
                "bearer": SecurityScheme(
                    type="http",
                    scheme="bearer",
                    description="the API key, as issued once by `dataflow key create`",
                )
            }
        ),
        use_handler_docstrings=False,
    )


def _string(description: str, **kw: object) -> Parameter:
    name = str(kw.pop("name"))
    return Parameter(
        name=name,
        param_in="query",
        required=False,
        description=description,
        schema=Schema(type=OpenAPIType.STRING, **kw),  # type: ignore[arg-type]
    )


def complete_openapi(app: Litestar, release: LoadedRelease) -> None:
    """Add the rows route's dynamic parameters and binary media types to the document."""
    document = app.openapi_schema
    paths = document.paths or {}
    rows = paths.get("/v1/tables/{table_id}/rows")
    table_ids = sorted(release.tables)
    for path in ("/v1/tables/{table_id}", "/v1/tables/{table_id}/rows"):
        item = paths.get(path)
        op = item.get if item is not None else None
        for p in (op.parameters or []) if op is not None else []:
            if isinstance(p, Parameter) and p.name == "table_id":
                p.schema = Schema(type=OpenAPIType.STRING, enum=list(table_ids))
                p.description = "a table id from GET /v1/tables"
    if rows is None or rows.get is None:
        return
    op = rows.get
    levels = sorted({lv for t in release.tables.values() for lv in t.levels})
    params: list[Parameter] = [
        _string(
            f"filter on the `{lv}` level: `code`, `a,b`, `lo..hi`, `prefix*` or `_T` (margin)",
            name=lv,
            max_length=4096,
        )
        for lv in levels
    ]
    params += [
        _string("columns to return, comma-separated (default: all)", name="columns"),
        _string("sort keys, comma-separated; `-` for descending", name="sort"),
        _string(
            f"rows per page: 1..{MAX_LIMIT:,} (JSON, CSV), up to 250,000 (Arrow, Parquet)",
            name="limit",
            pattern="^[0-9]{1,9}$",
        ),
        _string(
            "next_cursor of the previous page, unchanged",
            name="cursor",
            max_length=MAX_CURSOR_CHARS,
        ),
        _string(
            "response format when Accept cannot be set",
            name="format",
            enum=["json", "csv", "arrow", "parquet"],
        ),
    ]
    op.parameters = [*(op.parameters or []), *params]
    ok = (op.responses or {}).get("200")
    content = getattr(ok, "content", None)
    if isinstance(content, dict):
        binary = Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY)
        content[CSV] = OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING))
        content[ARROW] = OpenAPIMediaType(schema=binary)
        content[PARQUET] = OpenAPIMediaType(schema=binary)
