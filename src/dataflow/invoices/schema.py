"""Arrow schemas of the fact store (DESIGN §4): invoice items, plus invoice-level facts."""

from __future__ import annotations

import pyarrow as pa

__all__ = ["FACT_SCHEMA", "INVOICE_SCHEMA", "MONEY", "TZ"]

TZ = "America/Sao_Paulo"
MONEY = pa.decimal128(18, 2)

FACT_SCHEMA = pa.schema(
    [
        ("access_key", pa.string()),
        ("model", pa.int16()),
        ("issued_at", pa.timestamp("us", tz=TZ)),
        ("issuer_cnpj", pa.string()),
        ("issuer_root", pa.string()),
        ("issuer_cnae", pa.string()),
        ("issuer_uf", pa.string()),
        ("issuer_municipality", pa.string()),
        ("recipient_uf", pa.string()),
        ("cfop", pa.string()),
        ("ncm", pa.string()),
        ("quantity", pa.float64()),
        ("unit", pa.string()),
        ("item_value", MONEY),
        ("icms_value", MONEY),
    ]
)

INVOICE_SCHEMA = pa.schema(
    [
        ("access_key", pa.string()),
        ("model", pa.int16()),
        ("issued_at", pa.timestamp("us", tz=TZ)),
        ("issuer_cnpj", pa.string()),
        ("total_value", MONEY),
        ("status", pa.string()),
    ]
)
