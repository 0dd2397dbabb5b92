"""Parts of the synthetic MG NF-e/NFC-e generator, driven by ``aggregation.generator``."""
