"""The control plane: partners, contracts and authorizations with their terms (`terms`), API keys,
team members, lifecycle, sanctions, the audit log, and the SQL store (schema and migrations).

Imports only `invoices` (CNPJ check digits); never `api`, `metering` or `billing`.
"""
