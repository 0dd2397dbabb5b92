"""Protected tables: table specs, cubes over the fact store, disclosure control
(`disclosure/`), immutable releases and their lineage, and the read model the API serves.
Cubes run on DuckDB per taxpayer-hash partition (`partitions.py`) or on Spark (`spark.py`),
from one SQL compiler (`cube.py` with `dialect.py`).

Second stage: reads `invoices` (the fact store, reference data); never imports lxml, the
generator, `api`, `metering` or `billing`.
"""
