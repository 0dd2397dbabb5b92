"""Access counting before serve, caps, and settlement into the usage ledger."""
