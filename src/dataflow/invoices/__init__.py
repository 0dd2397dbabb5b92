"""The invoice fact store: the NF-e fact model, reference data, XML ingestion with its
quarantine (`nfe/` reads the documents; `spark.py` runs the parsing as Spark jobs), and the
synthetic generator (`synthetic/`).

First stage of the data's way; imports nothing of ours but `settings` and `terminal`.
"""
