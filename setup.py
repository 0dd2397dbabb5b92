"""Builds the compiled NF-e reading of the ingestion fast path (``dataflow.invoices.nfe._read``).

Everything else is in pyproject.toml. ``uv sync`` runs this in an isolated environment with the
pinned build requirements; ``nfe.batch`` falls back to its pure-Python reading if the module is
absent.
"""

import lxml
from Cython.Build import cythonize
from setuptools import Extension, setup

setup(
    ext_modules=cythonize(
        [
            Extension(
                "dataflow.invoices.nfe._read",
                ["src/dataflow/invoices/nfe/_read.pyx"],
                include_dirs=lxml.get_include(),  # lxml's public C-API and libxml2 headers
            )
        ],
        build_dir="build/cython",
        language_level=3,
    )
)
