from __future__ import annotations

import numpy as np

from dataflow.invoices.checkdigits import is_valid_cnpj
from dataflow.invoices.reference import ReferenceData
from dataflow.invoices.synthetic.catalog import build_catalog
from dataflow.invoices.synthetic.population import (
    ALNUM_FROM,
    OFFICIAL_EXAMPLE,
    build_population,
)
from dataflow.invoices.synthetic.profiles import Kind


def test_population_shape(reference: ReferenceData) -> None:
    cat = build_catalog(reference, np.random.default_rng([7, 0]))
    pop = build_population(np.random.default_rng([7, 1]), cat, 2_000_000)
    cnpjs = [row.tobytes().decode() for row in pop.cnpj]
    assert len(set(cnpjs)) == pop.size
    assert all(is_valid_cnpj(c) for c in cnpjs)
    assert OFFICIAL_EXAMPLE in cnpjs
    assert (pop.first_month[pop.alnum] == ALNUM_FROM).all()
    assert (pop.first_month[~pop.alnum] == 0).all()
    # Every municipality has a shop; out-of-state issuers sit in other states' capitals.
    mg = pop.municipality[~pop.out_of_state]
    shops = pop.municipality[(pop.kind == Kind.RETAIL) & ~pop.out_of_state]
    assert set(shops.tolist()) == set(cat.mg_codes.tolist())
    assert set(mg.tolist()) <= set(cat.mg_codes.tolist())
    assert set(pop.municipality[pop.out_of_state].tolist()) <= set(cat.uf_capital.tolist())
    # Sorted by (municipality, CNAE, CNPJ), with group numbers increasing along that order.
    keys = list(
        zip(pop.municipality.tolist(), cat.sub_code[pop.subclass].tolist(), cnpjs, strict=True)
    )
    assert keys == sorted(keys)
    assert (np.diff(pop.group) >= 0).all()
    # Only shops issue NFC-e; each municipality's NFC-e weight follows its population.
    assert (pop.w_nfce[pop.kind != Kind.RETAIL] == 0).all()
    idx = np.searchsorted(cat.mg_codes, pop.municipality[~pop.out_of_state])
    local = np.bincount(idx, weights=pop.w_nfce[~pop.out_of_state], minlength=len(cat.mg_codes))
    share = cat.mg_population / cat.mg_population.sum()
    np.testing.assert_allclose(local / local.sum(), share, rtol=1e-9)
