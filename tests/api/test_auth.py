"""KeyRing: a key verified once is remembered only as long as the snapshot it was verified
against; a revocation or a suspension is refused from the first reload on, as without it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from litestar import Request

from dataflow.api.auth import KeyRing
from dataflow.api.errors import Problem
from dataflow.api.metering import authorize
from dataflow.contracts.models import Plan
from dataflow.contracts.repository import make_engine
from dataflow.contracts.service import ContractsService

REFRESH = 0.05


def _request(key: str) -> Request[Any, Any, Any]:
    return Request({"type": "http", "headers": [(b"authorization", f"Bearer {key}".encode())]})  # type: ignore[typeddict-item]


@pytest.fixture
def contracts(tmp_path: Path) -> ContractsService:
    return ContractsService(make_engine(f"sqlite:///{tmp_path / 'auth.db'}"))


async def _refused(ring: KeyRing, key: str) -> Problem:
    with pytest.raises(Problem) as caught:
        await ring.authenticate(_request(key))
    return caught.value


async def test_a_verified_key_is_remembered_but_a_wrong_secret_is_still_refused(
    contracts: ContractsService,
) -> None:
    partner = contracts.create_partner("P", Plan.CONTINUOUS)
    key = contracts.create_key(partner.id)
    ring = KeyRing(contracts, refresh_seconds=60)
    first = await ring.authenticate(_request(key))
    assert await ring.authenticate(_request(key)) is first  # no hash the second time
    assert first.partner_id == partner.id
    forged = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")  # same key id
    assert (await _refused(ring, forged)).kind == "invalid-key"


async def test_a_revoked_key_is_refused_at_the_first_reload(contracts: ContractsService) -> None:
    partner = contracts.create_partner("P", Plan.CONTINUOUS)
    key = contracts.create_key(partner.id)
    ring = KeyRing(contracts, refresh_seconds=REFRESH)
    await ring.authenticate(_request(key))
    await ring.authenticate(_request(key))  # remembered
    contracts.revoke_key(key.split("_")[1])
    await asyncio.sleep(REFRESH * 2)
    assert (await _refused(ring, key)).status == 401


async def test_a_suspension_reaches_a_remembered_key_at_the_first_reload(
    contracts: ContractsService,
) -> None:
    partner = contracts.create_partner("P", Plan.CONTINUOUS)
    key = contracts.create_key(partner.id)
    ring = KeyRing(contracts, refresh_seconds=REFRESH)
    authorize(await ring.authenticate(_request(key)))  # allowed, and remembered
    contracts.suspend(partner.id, "Art. 45 II", days=30)
    await asyncio.sleep(REFRESH * 2)
    with pytest.raises(Problem) as caught:
        authorize(await ring.authenticate(_request(key)))
    assert caught.value.status == 403 and caught.value.kind == "partner-suspended"
