"""The official NF-e XSDs, as shipped in the ``nfelib`` wheel, loaded once per process."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from lxml import etree

__all__ = ["SchemaSet", "schema_set"]

_NS = "{http://www.portalfiscal.inf.br/nfe}"


def _schemas_dir() -> Path:
    import nfelib  # imported lazily: only strict validation and tests need the XSD files

    return Path(nfelib.__file__).resolve().parent


class SchemaSet:
    """XSD per root element: ``nfeProc`` and ``NFe`` (4.00), ``procEventoNFe`` (1.00)."""

    def __init__(self, base: Path) -> None:
        def load(rel: str) -> etree.XMLSchema:
            return etree.XMLSchema(etree.parse(str(base / rel)))

        self._by_root = {
            _NS + "nfeProc": load("nfe/schemas/v4_0/procNFe_v4.00.xsd"),
            _NS + "NFe": load("nfe/schemas/v4_0/nfe_v4.00.xsd"),
            _NS + "procEventoNFe": load(
                "nfe_evento_cancel/schemas/v1_0/procEventoCancNFe_v1.00.xsd"
            ),
        }

    def for_root(self, tag: str) -> etree.XMLSchema | None:
        return self._by_root.get(tag)


@cache
def schema_set() -> SchemaSet:
    return SchemaSet(_schemas_dir())
