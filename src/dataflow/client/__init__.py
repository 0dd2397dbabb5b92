"""A small typed client for the dataflow partner API: pages through rows, returns pyarrow/polars.

from dataflow.client import Client, Prefix, Range

with Client("https://dataflow.example", key) as api:
    frame = api.polars(
        "sales_municipality_cnae_division_month",
        municipality=Prefix("3106"),
        month=Range("2026-01", "2026-03"),
    )
"""

from dataflow.client.client import ApiError, Client, Prefix, Range

__all__ = ["ApiError", "Client", "Prefix", "Range"]
