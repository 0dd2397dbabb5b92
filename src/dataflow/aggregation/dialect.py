"""The few SQL pieces that differ between DuckDB and Spark SQL; everything else is shared.

``cube.py`` compiles a table spec into one SQL text per engine: explicit ``GROUPING SETS``,
``GROUPING()``, ``CASE``, ``CAST``, ``substr``, ``count(DISTINCT …)``, CTEs and joins are written
once and read the same way by both. What differs is here: how a level is read off the issue time
(local time in America/Sao_Paulo, ISO weeks), the string type, and the list aggregates that keep
each cell's largest taxpayer contributions (descending, values only, so ties do not matter).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dataflow.aggregation.levels import LEVEL_SQL, JoinedLevel

__all__ = ["DUCKDB", "SPARK", "Dialect"]

_TZ = "America/Sao_Paulo"


@dataclass(frozen=True, slots=True)
class Dialect:
    name: str
    string: str  # the SQL type of text
    levels: dict[str, str] = field(default_factory=dict)  # overrides of ``LEVEL_SQL``
    top_sql: str = ""  # ``{x}``: a DOUBLE expression; ``{n}``: how many
    merge_top_sql: str = ""  # ``{col}``: a column of descending lists; ``{n}``: how many

    def level(self, level: str) -> str | JoinedLevel:
        return self.levels.get(level, LEVEL_SQL[level])

    def top(self, expr: str, n: int) -> str:
        """The ``n`` largest values of ``expr`` in the group, descending, as a list."""
        return self.top_sql.format(x=f"CAST({expr} AS DOUBLE)", n=n)

    def merge_top(self, column: str, n: int) -> str:
        """The ``n`` largest of the group's lists of largest values, descending."""
        return self.merge_top_sql.format(col=column, n=n)


DUCKDB = Dialect(
    name="duckdb",
    string="VARCHAR",
    top_sql="max({x}, {n})",
    merge_top_sql="list_slice(list_sort(flatten(list({col})), 'DESC'), 1, {n})",
)

# Spark reads Parquet timestamps as instants; with the session time zone at UTC,
# ``from_utc_timestamp`` gives the wall-clock time in São Paulo, as DuckDB's ``timezone``.
_LOCAL = f"from_utc_timestamp(issued_at, '{_TZ}')"
SPARK = Dialect(
    name="spark",
    string="STRING",
    levels={
        "model": "CAST(model AS STRING)",
        "year": f"date_format({_LOCAL}, 'yyyy')",
        "quarter": f"concat(date_format({_LOCAL}, 'yyyy'), '-Q', "
        f"CAST(quarter({_LOCAL}) AS STRING))",
        "month": f"date_format({_LOCAL}, 'yyyy-MM')",
        # ISO 8601 week: the week-year is the year of the week's Thursday (weekday: Monday = 0)
        "week": f"concat(CAST(year(date_add(to_date({_LOCAL}), 3 - weekday({_LOCAL}))) AS STRING),"
        f" '-W', lpad(CAST(weekofyear({_LOCAL}) AS STRING), 2, '0'))",
    },
    top_sql="slice(sort_array(collect_list({x}), false), 1, {n})",
    merge_top_sql="slice(sort_array(flatten(collect_list({col})), false), 1, {n})",
)
