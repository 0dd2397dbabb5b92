"""The partner-facing HTTP API (Litestar): thin handlers over the services."""
