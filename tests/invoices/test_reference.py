from __future__ import annotations

from dataflow.invoices.reference import GEO_LEVELS, ReferenceData


def test_all_853_municipalities_have_a_region_and_a_size(reference: ReferenceData) -> None:
    assert len(reference.municipalities) == 853
    micro = reference.labels("microregion")
    meso = reference.labels("mesoregion")
    assert len(micro) == 66  # IBGE: MG has 66 microregions in 12 mesoregions
    assert len(meso) == 12
    for m in reference.municipalities:
        assert m.code.startswith("31") and len(m.code) == 7
        assert m.microregion in micro and m.microregion.startswith("31")
        assert m.mesoregion in meso and len(m.mesoregion) == 4
        assert m.population > 0


def test_hierarchy_is_consistent_bottom_to_top(reference: ReferenceData) -> None:
    to_micro = reference.parents("municipality")
    to_meso = reference.parents("microregion")
    to_uf = reference.parents("mesoregion")
    rollup = reference.geo_rollup()
    for muni, micro in to_micro.items():
        meso = to_meso[micro]
        assert rollup[muni] == {
            "municipality": muni,
            "microregion": micro,
            "mesoregion": meso,
            "uf": to_uf[meso],
        }
    assert set(to_uf.values()) == {"MG"}
    ufs = reference.labels("uf")
    assert len(ufs) == 27
    assert ufs["MG"] == "Minas Gerais"
    assert GEO_LEVELS == ("uf", "mesoregion", "microregion", "municipality")


def test_known_places(reference: ReferenceData) -> None:
    by_code = {m.code: m for m in reference.municipalities}
    bh = by_code["3106200"]
    assert (bh.name, bh.microregion, bh.mesoregion) == ("Belo Horizonte", "31030", "3107")
    assert reference.labels("mesoregion")["3107"] == "Metropolitana de Belo Horizonte"
    jf = by_code["3136702"]
    assert (jf.microregion, jf.mesoregion) == ("31065", "3112")
    assert reference.labels("microregion")["31065"] == "Juiz de Fora"
    # The capital is the largest municipality by the size proxy.
    assert max(reference.municipalities, key=lambda m: m.population).code == "3106200"


def test_states_and_capitals(reference: ReferenceData) -> None:
    states = {s.uf: s for s in reference.states}
    assert len(states) == 27
    assert (states["MG"].code, states["MG"].capital) == ("31", "3106200")
    assert (states["SP"].code, states["SP"].capital_name) == ("35", "São Paulo")
    for s in states.values():
        assert s.capital.startswith(s.code) and len(s.capital) == 7
