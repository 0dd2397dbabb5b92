"""Standard level names (DESIGN §10) and the SQL expression that derives each from a fact row."""

from __future__ import annotations

__all__ = ["LEVEL_SQL", "MEASURE_SQL", "TOTAL", "level_sql"]

TOTAL = "_T"  # SDMX code for a margin

_LOCAL = "timezone('America/Sao_Paulo', issued_at)"

LEVEL_SQL: dict[str, str] = {
    "uf": "issuer_uf",
    "municipality": "issuer_municipality",
    "cnae_section": "cnae_section",  # joined from the CNAE reference
    "cnae_division": "substr(issuer_cnae, 1, 2)",
    "cnae_group": "substr(issuer_cnae, 1, 3)",
    "cnae_class": "substr(issuer_cnae, 1, 5)",
    "cnae_subclass": "issuer_cnae",
    "ncm_chapter": "substr(ncm, 1, 2)",
    "ncm_heading": "substr(ncm, 1, 4)",
    "ncm_subheading": "substr(ncm, 1, 6)",
    "ncm_item": "ncm",
    "cfop": "cfop",
    "model": "CAST(model AS VARCHAR)",
    "year": f"strftime({_LOCAL}, '%Y')",
    "quarter": f"strftime({_LOCAL}, '%Y') || '-Q' || CAST(quarter({_LOCAL}) AS VARCHAR)",
    "month": f"strftime({_LOCAL}, '%Y-%m')",
    "week": f"strftime({_LOCAL}, '%G-W%V')",
    "recipient_uf": "recipient_uf",
}

# Published measures and the internal ones disclosure control needs.
MEASURE_SQL: dict[str, str] = {
    "item_value": "sum(item_value)",
    "invoice_count": "count(DISTINCT access_key)",
    "issuer_count": "count(DISTINCT issuer_root)",
}


def level_sql(level: str) -> str:
    try:
        return LEVEL_SQL[level]
    except KeyError:
        known = ", ".join(sorted(LEVEL_SQL))
        raise ValueError(f"unknown level {level!r}; known levels: {known}") from None
