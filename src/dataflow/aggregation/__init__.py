"""Protected tables: table specs, cubes over the fact store, disclosure control
(`disclosure/`), immutable releases and their lineage, and the read model the API serves.

Second stage: reads `invoices` (the fact store, reference data); never imports lxml, the
generator, `api`, `metering` or `billing`.
"""
