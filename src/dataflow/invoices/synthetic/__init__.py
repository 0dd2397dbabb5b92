"""The synthetic MG NF-e/NFC-e generator: a fact store (`generator`) or XML documents (`xmlgen`).

Deterministic from a seed; imports only `invoices` (schema, reference data, check digits).
"""
