"""dataflow: protected aggregate tables from MG electronic invoices, metered and billed in UFEMG."""

__all__ = ["__version__"]

__version__ = "0.1.0"
