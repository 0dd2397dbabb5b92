"""The OpenAPI document (Litestar's) and the docs page, completed with what signatures cannot say.

The rows route reads its filters dynamically (one query parameter per level of the table), and
answers in four media types; both are added here to the generated document, from the loaded
release, so the document describes exactly what this deployment serves.
"""

from __future__ import annotations

import copy

from litestar import Litestar
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, SwaggerRenderPlugin, YamlRenderPlugin
from litestar.openapi.spec import (
    Components,
    OpenAPIMediaType,
    Operation,
    Parameter,
    PathItem,
    Schema,
    SecurityScheme,
)
from litestar.openapi.spec.enums import OpenAPIFormat, OpenAPIType

from dataflow.aggregation.catalog import LoadedRelease
from dataflow.aggregation.query import FILTER_PATTERN, MAX_CURSOR_CHARS, MAX_LIMIT
from dataflow.api.encode import ARROW, CSV, PARQUET
from dataflow.api.errors import PROBLEM_BASE, PROBLEM_TYPES

__all__ = ["DOCS_PATH", "complete_openapi", "openapi_config"]

DOCS_PATH = "/docs"  # docs page; the document itself at /docs/openapi.json
_MAX_FILTER = 512  # documented bound on one filter value (the whole query is capped at 4 KB)

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


def _docs_page() -> SwaggerRenderPlugin:
    """Swagger UI from the app's own static files (vendored from npm): no CDN, no favicon or
    font fetched from elsewhere."""
    base = "/static/vendor/swagger-ui"
    return SwaggerRenderPlugin(
        path="/",
        js_url=f"{base}/swagger-ui-bundle.js",
        css_url=f"{base}/swagger-ui.css",
        standalone_preset_js_url=f"{base}/swagger-ui-standalone-preset.js",
        favicon='<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">',
    )


def openapi_config(version: str) -> OpenAPIConfig:
    types = "\n".join(f"- `{kind}` — {what}" for kind, what in PROBLEM_TYPES.items())
    return OpenAPIConfig(
        title="dataflow partner API",
        version=version,
        description=_DESCRIPTION.format(base=PROBLEM_BASE, types=types),
        path=DOCS_PATH,
        render_plugins=[_docs_page(), JsonRenderPlugin(), YamlRenderPlugin()],
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


def _query(
    name: str, description: str, schema: Schema, *, explode: bool | None = None
) -> Parameter:
    return Parameter(
        name=name,
        param_in="query",
        required=False,
        description=description,
        schema=schema,
        style="form" if explode is not None else None,
        explode=explode,
    )


def _common_parameters(columns: list[str], sortable: list[str]) -> list[Parameter]:
    def listed(values: list[str]) -> Schema:
        item = Schema(type=OpenAPIType.STRING, enum=list(values))
        return Schema(type=OpenAPIType.ARRAY, items=item, min_items=1, unique_items=True)

    return [
        _query(
            "columns",
            "columns to return, comma-separated (default: all)",
            listed(columns),
            explode=False,
        ),
        _query(
            "sort",
            "sort keys, comma-separated, `-` for descending (suppressed values last; "
            "default: the table's level order)",
            listed([*sortable, *(f"-{c}" for c in sortable)]),
            explode=False,
        ),
        _query(
            "limit",
            f"rows per page: 1..{MAX_LIMIT:,} for JSON and CSV; up to 250,000 for Arrow and "
            "Parquet",
            Schema(type=OpenAPIType.INTEGER, minimum=1, maximum=MAX_LIMIT),
        ),
        _query(
            "cursor",
            "`next_cursor` of the previous page, unchanged (opaque)",
            Schema(type=OpenAPIType.STRING, min_length=1, max_length=MAX_CURSOR_CHARS),
        ),
        _query(
            "format",
            "response format when Accept cannot be set",
            Schema(type=OpenAPIType.STRING, enum=["json", "csv", "arrow", "parquet"]),
        ),
    ]


def _filter_parameters(levels: list[str]) -> list[Parameter]:
    return [
        _query(
            lv,
            f"filter on `{lv}`: a code, a list `a,b`, a range `lo..hi` (either end open), "
            "a hierarchy prefix `p*`, or `_T` for the margin",
            Schema(type=OpenAPIType.STRING, pattern=FILTER_PATTERN, max_length=_MAX_FILTER),
        )
        for lv in levels
    ]


def _set_table_id(op: Operation | None, table_ids: list[str]) -> None:
    for p in (op.parameters or []) if op is not None else []:
        if isinstance(p, Parameter) and p.name == "table_id":
            p.schema = Schema(type=OpenAPIType.STRING, enum=list(table_ids))
            p.description = "a table id from GET /v1/tables"


def complete_openapi(app: Litestar, release: LoadedRelease) -> None:
    """Describe the rows route's filters and formats; one concrete rows path per table."""
    document = app.openapi_schema
    paths = document.paths if document.paths is not None else {}
    table_ids = sorted(release.tables)
    describe = paths.get("/v1/tables/{table_id}")
    _set_table_id(describe.get if describe is not None else None, table_ids)
    generic = paths.get("/v1/tables/{table_id}/rows")
    if generic is None or generic.get is None:
        return
    op = generic.get
    _set_table_id(op, table_ids)
    ok = (op.responses or {}).get("200")
    content = getattr(ok, "content", None)
    if isinstance(content, dict):
        binary = Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY)
        content[CSV] = OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING))
        content[ARROW] = OpenAPIMediaType(schema=binary)
        content[PARQUET] = OpenAPIMediaType(schema=binary)
    base = list(op.parameters or [])
    everything = sorted({c for t in release.tables.values() for c in t.columns})
    sortable = sorted({c for t in release.tables.values() for c in [*t.levels, *t.measures]})
    op.parameters = [*base, *_common_parameters(everything, sortable)]
    op.description = (op.description or "") + (
        "\n\nThe filters each table accepts are listed on its own path below."
    )
    for table_id in table_ids:
        table = release.tables[table_id]
        concrete = copy.deepcopy(op)
        concrete.operation_id = f"rows_{table_id}"
        concrete.summary = f"Rows of {table_id}: {table.title}"
        concrete.parameters = [
            *_filter_parameters(table.levels),
            *_common_parameters(table.columns, [*table.levels, *table.measures]),
        ]
        paths[f"/v1/tables/{table_id}/rows"] = PathItem(get=concrete)
