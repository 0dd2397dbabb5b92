"""Partner routes: catalog, rows, usage; and the operations routes. Thin handlers over services."""

from __future__ import annotations

from dataflow.api.routes.catalog import describe_table, list_tables
from dataflow.api.routes.ops import healthz, metrics, readyz
from dataflow.api.routes.rows import table_rows
from dataflow.api.routes.usage import usage

__all__ = ["routes"]

routes = [list_tables, describe_table, table_rows, usage, healthz, readyz, metrics]
