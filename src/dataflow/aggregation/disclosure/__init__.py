"""Disclosure control on cells: primary rules (`suppression`), the linked system of all tables
(`linked`), secondary suppression (`hypercube`, `boxes`, `secondary`) and the LP audit (`audit`).

Works on cell tables, never on invoice items; imports only `aggregation` (specs, levels, cubes).
"""
