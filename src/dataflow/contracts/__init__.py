"""The control plane: partners, contracts and authorizations with their terms (`terms`), API keys,
team members, lifecycle, sanctions, the audit log, and the SQL store (schema, migrations, and
the app's least-privilege PostgreSQL role: `privileges`).

Imports only `invoices` (CNPJ check digits); never `api`, `metering` or `billing`.
"""
