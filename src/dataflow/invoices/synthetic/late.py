"""Late items for a month already in a store: the revision a release must not let slip.

A real store sees them as contingency invoices authorized days after their month closed. Here
they copy items of one MG taxpayer of that month (same establishment, codes and time) under
new access keys and a set value, written as one more part of the month's partition.
"""

from __future__ import annotations

from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from dataflow.invoices.factstore import FactStore

__all__ = ["add_late_items"]


def add_late_items(
    store: FactStore, year: int, month: int, *, items: int, value: Decimal, part: str = "late"
) -> str:
    """Append ``items`` late items worth ``value`` each; returns the taxpayer (CNPJ root)."""
    facts = pq.read_table(store.partition("facts", year, month))
    invoices = pq.read_table(store.partition("invoices", year, month))
    mg = facts.filter(pc.equal(facts["issuer_uf"], "MG"))
    taxpayer = mg["issuer_root"][mg.num_rows // 2]
    rows = mg.filter(pc.equal(mg["issuer_root"], taxpayer)).slice(0, items)
    keys = pa.array([f"{i:044d}" for i in range(rows.num_rows)])
    rows = rows.set_column(rows.schema.get_field_index("access_key"), "access_key", keys)
    i = rows.schema.get_field_index("item_value")
    rows = rows.set_column(
        i, "item_value", pa.array([value] * rows.num_rows, rows.schema.field(i).type)
    )
    inv = invoices.slice(0, rows.num_rows)
    inv = inv.set_column(inv.schema.get_field_index("access_key"), "access_key", keys)
    store.write_month(year, month, rows, inv, part=part)
    return str(taxpayer)
