"""Control plane: partners, contracts, API keys and the SQL store they live in."""
