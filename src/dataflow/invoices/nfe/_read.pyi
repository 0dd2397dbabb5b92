from lxml import etree

BUILT_WITH_LXML: str

def read(root: etree._Element, /) -> tuple[list[str], list[list[str]]] | None: ...
