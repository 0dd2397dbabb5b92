"""`dataflow demo`: the whole story on embedded defaults, in one process.

Generate facts → build a protected release → late invoices arrive: build the next release,
protected against the first → register a partner and a key → serve the API on
loopback → play the partner (a few hundred metered requests) → settle → price the month.
"""

from __future__ import annotations

import asyncio
import logging
import random
import shutil
import socket
import threading
import time
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import msgspec
import uvicorn

from dataflow.aggregation.release import build_release
from dataflow.aggregation.specs import load_specs
from dataflow.api.app import create_app
from dataflow.billing.service import compute_invoice
from dataflow.billing.ufemg import UfemgTable
from dataflow.contracts.models import Plan
from dataflow.contracts.repository import make_engine
from dataflow.contracts.service import ContractsService
from dataflow.contracts.terms import ContractTerms
from dataflow.invoices.factstore import FactStore
from dataflow.invoices.reference import load_reference
from dataflow.invoices.synthetic.generator import generate, parse_months
from dataflow.invoices.synthetic.late import add_late_items
from dataflow.metering.embedded import EmbeddedMeter
from dataflow.metering.models import billing_month
from dataflow.metering.settlement import settle_month
from dataflow.settings import MeterKind, Settings
from dataflow.terminal import err, print_json

__all__ = ["run_demo"]

REQUESTS = 300
MONTH = (2026, 10)  # the month the demo generates, then revises


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _play_partner(base: str, key: str, table_id: str, rng: random.Random) -> dict[str, int]:
    """A partner's integration: catalog once, then many filtered, paged data requests."""
    headers = {"Authorization": f"Bearer {key}"}
    stats = {"data_200": 0, "catalog": 0, "rows": 0, "suppressed_cells": 0}
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        catalog = client.get("/v1/tables").raise_for_status().json()
        stats["catalog"] += 1
        table = next(t for t in catalog["tables"] if t["id"] == table_id)
        months = sorted(
            {
                r["month"]
                for r in client.get(
                    f"/v1/tables/{table_id}/rows", params={"columns": "month", "limit": 10000}
                )
                .raise_for_status()
                .json()["rows"]
            }
            - {"_T"}
        )
        stats["data_200"] += 1
        cursor = None
        filters: dict[str, str | int] = {}
        while stats["data_200"] < REQUESTS:
            params: dict[str, str | int] = {"limit": rng.choice([50, 100, 500])}
            kind = rng.random()
            if cursor:  # a cursor belongs to its query: page on with the same filters
                params.update(filters)
                params["cursor"] = cursor
            else:
                filters = {}
                if kind < 0.4:
                    filters["municipality"] = "3106200"  # Belo Horizonte
                elif kind < 0.7:
                    filters["month"] = f"{months[0]}..{months[-1]}"
                    filters["cnae_division"] = rng.choice(["47", "46", "10", "56"])
                params.update(filters)
            res = (
                client.get(f"/v1/tables/{table['id']}/rows", params=params)
                .raise_for_status()
                .json()
            )
            stats["data_200"] += 1
            stats["rows"] += len(res["rows"])
            stats["suppressed_cells"] += sum(1 for r in res["rows"] if r["flag"] == "X")
            cursor = res["next_cursor"] if res["has_more"] and rng.random() < 0.7 else None
    return stats


def run_demo(base_settings: Settings) -> None:
    started = time.perf_counter()
    # The demo tells its story in its own lines: the in-process app's logging (Litestar's
    # default config logs INFO from the root) would interleave one access line per request and
    # Alembic's migration chatter with them. A served API keeps its access log (stderr).
    for noisy in ("httpx", "dataflow.access", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    root = base_settings.data_dir / "demo"
    shutil.rmtree(root, ignore_errors=True)
    settings = base_settings.with_(
        data_dir=root,
        database_url=f"sqlite:///{root / 'dataflow.db'}",
        meter=MeterKind.EMBEDDED,
        redis_url=None,
        release_dir=None,
    )
    store = FactStore(settings.store_dir)

    with err.status("1/6 generating synthetic MG invoices…"):
        gen = generate(
            store,
            load_reference(settings.datasets_dir),
            # One month of 80,000 items: the six-table release, its secondary suppression and
            # LP audit then take seconds; at 200,000 items over four months the municipality
            # table's near-total suppression costs minutes (see README, build-time figures).
            items=80_000,
            seed=7,
            months=parse_months(f"{MONTH[0]}-{MONTH[1]:02d}"),
        )
    err.print(
        f"[green]1/6[/] {gen.items:,} items in {gen.invoices:,} invoices from "
        f"{gen.taxpayers:,} taxpayers → {store.root}"
    )

    with err.status("2/6 building the protected release…"):
        release = build_release(store, load_specs(settings.tables_dir), settings.releases_dir)
    for tid, c in release.tables.items():
        err.print(
            f"[green]2/6[/] release {release.version}: {tid} — {c['rows']:,} cells, "
            f"{c['suppressed']:,} suppressed (flag X)"
        )
    # Late invoices for the month just published: the next release is protected against the
    # first too, so subtracting the two reveals no taxpayer's late figures.
    late_taxpayer = add_late_items(store, *MONTH, items=3, value=Decimal("4000.00"))
    with err.status("2/6 late invoices arrived: building the next release against the first…"):
        release = build_release(store, load_specs(settings.tables_dir), settings.releases_dir)
    revised = sum(c["revision"] for c in release.tables.values())
    err.print(
        f"[green]2/6[/] 3 late items of taxpayer {late_taxpayer[:4]}…: release "
        f"{release.version} protected against {len(release.lineage)} earlier release(s), "
        f"{revised:,} cell(s) hidden for the revision"
        + (f", {release.limited} pinned by earlier releases" if release.limited else "")
    )

    contracts = ContractsService(make_engine(settings.database_url))
    contract_file = settings.repo_root / "examples" / "contract-continuous.toml"
    terms = ContractTerms.from_file(contract_file)
    partner = contracts.create_partner(
        "Demo Analytics Ltda",
        Plan.CONTINUOUS,
        contract_toml=contract_file.read_text(encoding="utf-8"),
    )
    key = contracts.create_key(partner.id)
    err.print(f"[green]3/6[/] partner {partner.id} ({partner.name}) with API key {key[:19]}…")

    meter = EmbeddedMeter()
    app = create_app(settings, meter=meter, contracts=contracts)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    # the demo partner filters by municipality, month and CNAE division: that table's levels
    demo_table = "sales_municipality_cnae_division_month"
    table_id = demo_table if demo_table in release.tables else next(iter(release.tables))
    t0 = time.perf_counter()
    stats = _play_partner(f"http://127.0.0.1:{port}", key, table_id, random.Random(7))
    took = time.perf_counter() - t0
    server.should_exit = True
    thread.join()
    err.print(
        f"[green]4/6[/] served {stats['data_200']} data requests ({stats['rows']:,} rows, "
        f"{stats['suppressed_cells']:,} suppressed cells) in {took:.1f}s over real HTTP"
    )

    month = billing_month(datetime.now(UTC))
    asyncio.run(settle_month(meter, contracts, month))
    accesses = contracts.usage(partner.id, month)
    err.print(
        f"[green]5/6[/] metered and settled: {accesses} accesses for {month} "
        f"(served {stats['data_200']}, catalog calls not billed)"
    )

    invoice = compute_invoice(
        terms,
        accesses=accesses,
        month=month,
        ufemg=UfemgTable.load(settings.datasets_dir / "ufemg.csv"),
    )
    out = root / "invoices"
    out.mkdir(parents=True, exist_ok=True)
    invoice_path = out / f"invoice-{partner.id}-{month}.json"
    invoice_path.write_bytes(msgspec.json.format(msgspec.json.encode(invoice)))
    err.print(f"[green]6/6[/] invoice for {month} (franchise billed, floor, support):")
    print_json(msgspec.to_builtins(invoice))
    err.print(
        f"\n[bold]done in {time.perf_counter() - started:.0f}s.[/] outputs:\n"
        f"  fact store  {store.root}\n  release     {release.path}\n"
        f"  database    {root / 'dataflow.db'}\n  invoice     {invoice_path}"
    )
