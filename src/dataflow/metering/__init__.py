"""Access counting before serve, caps, quotas and rate limits, the access stream, and settlement
into the usage ledger; Redis and embedded backends behind one protocol.

Imports `contracts` (the shared SQL metadata); never `api` or `billing`.
"""
