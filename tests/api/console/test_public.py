"""The public transparency page (Art. 43): dates as people read them."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

from dataflow.api.console.public import releases_published
from tests.api.console.conftest import Console


def test_a_release_is_dated_by_its_sao_paulo_day(tmp_path: Path) -> None:
    built = datetime(2026, 12, 8, 1, 30, tzinfo=UTC)  # 22:30 on the 7th in São Paulo
    (tmp_path / "r1").mkdir()
    (tmp_path / "r1" / "manifest.json").write_text(
        json.dumps({"version": "r1", "built_at": built.isoformat(), "tables": []})
    )
    (published,) = releases_published(tmp_path)
    assert published.published_at == built


async def test_the_page_shows_release_dates_as_dd_mm_aaaa(console: Console) -> None:
    page = await console.client.get("/transparencia")
    assert page.status_code == 200
    rows = re.findall(r"<tr><td><code>[^<]+</code></td><td>([^<]*)</td>", page.text)
    assert rows, page.text[:500]
    for shown in rows:
        assert re.fullmatch(r"\d{2}/\d{2}/\d{4}", shown), shown


async def test_tables_on_offer_are_described_in_portuguese(console: Console) -> None:
    page = await console.client.get("/transparencia")
    assert "Vendas por município, divisão CNAE e mês" in page.text
    assert "Sales by municipality" not in page.text
    assert "Valor dos produtos (R$), Notas fiscais" in page.text  # measures, not column names
