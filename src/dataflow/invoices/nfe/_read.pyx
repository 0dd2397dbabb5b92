# cython: language_level=3, boundscheck=False, wraparound=False
"""``batch.read_python`` compiled: the same reading of an authorized nfeProc, on libxml2's nodes.

The Python reading makes an lxml proxy object, a tag string and a text string for each of the
~250 elements it looks at; here the walk compares names in C and only the ~60 values kept become
Python strings, through lxml's own public C-API (``textOf`` is ``.text``,
``attributeValueFromNsName`` is ``.get``), so the semantics are lxml's. Every step mirrors a line
of ``batch.read_python``: the same checks, the same elements (the last child of a tag in a
section, the first ``enderEmit``/``enderDest``/``ICMSTot``/``infProt``, the same item walk), the
same result. Tests compare both readings on every corpus.
"""

from libc.string cimport strcmp

cimport lxml.includes.etreepublic as cetree
from lxml.includes.etreepublic cimport _Element
from lxml.includes.tree cimport (
    XML_COMMENT_NODE,
    XML_ELEMENT_NODE,
    XML_ENTITY_REF_NODE,
    XML_PI_NODE,
    const_xmlChar,
    xmlNode,
)

from dataflow.invoices.nfe.reader import AUTHORIZED_STATUS, encoded_key

cetree.import_lxml__etree()

# The lxml whose headers this was compiled with (a test checks it is the one installed).
BUILT_WITH_LXML = cetree.LXML_VERSION_STRING.decode()

cdef const char* _NS = b"http://www.portalfiscal.inf.br/nfe"
cdef const char* _DS = b"http://www.w3.org/2000/09/xmldsig#"

_MAX_ITEMS = 990
_NITEMS = [str(i) for i in range(1, _MAX_ITEMS + 1)]

# Section children kept (the last of each name wins, as in a dict built from the children).
cdef const char* _IDE[10]
_IDE[:] = [b"cUF", b"cNF", b"mod", b"serie", b"nNF", b"dhEmi", b"tpEmis", b"cDV", b"tpAmb",
           b"idDest"]
cdef const char* _ICMSTOT[12]
_ICMSTOT[:] = [b"vICMSDeson", b"vST", b"vFCPST", b"vProd", b"vFrete", b"vSeg", b"vDesc", b"vII",
               b"vIPI", b"vIPIDevol", b"vOutro", b"vNF"]
cdef const char* _PROT[3]
_PROT[:] = [b"tpAmb", b"chNFe", b"cStat"]
cdef const char* _ENDER[2]
_ENDER[:] = [b"cMun", b"UF"]

# Item walk codes: det, then an item's values in order (NCM … indTot are 1-6), vICMS (optional)
# and total (the end of the walk).
cdef enum:
    _DET = 0
    _VICMS = 7
    _TOTAL = 8


cdef inline bint _in(xmlNode* c, const char* ns) noexcept:
    return (
        c.type == XML_ELEMENT_NODE
        and c.ns is not NULL
        and c.ns.href is not NULL
        and strcmp(<const char*>c.ns.href, ns) == 0
    )


cdef inline bint _is(xmlNode* c, const char* name) noexcept:
    """``c.tag == "{NS}" + name`` for any node of ``list(element)``."""
    return _in(c, _NS) and strcmp(<const char*>c.name, name) == 0


cdef inline bint _listed(xmlNode* c) noexcept:
    """Whether ``list(element)`` yields ``c`` (lxml's ``_isElement``)."""
    return (
        c.type == XML_ELEMENT_NODE
        or c.type == XML_COMMENT_NODE
        or c.type == XML_ENTITY_REF_NODE
        or c.type == XML_PI_NODE
    )


cdef inline str _text(xmlNode* c):
    """``c.text or ""`` (and "" for an absent element)."""
    if c is NULL:
        return ""
    text = cetree.textOf(c)
    return text if text else ""


cdef inline object _get(xmlNode* c, const char* name):
    """``c.get(name)``."""
    return cetree.attributeValueFromNsName(c, NULL, <const_xmlChar*>name)


cdef void _last(xmlNode* parent, const char** names, int n, xmlNode** out) noexcept:
    """``{c.tag: c for c in parent}`` looked up for ``names``: the last child of each name."""
    cdef xmlNode* c = parent.children
    cdef int i
    for i in range(n):
        out[i] = NULL
    while c is not NULL:
        if _in(c, _NS):
            for i in range(n):
                if strcmp(<const char*>c.name, names[i]) == 0:
                    out[i] = c
                    break
        c = c.next


cdef xmlNode* _first(xmlNode* parent, const char* name) noexcept:
    """``batch._first``: the first child with that name."""
    if parent is NULL:
        return NULL
    cdef xmlNode* c = parent.children
    while c is not NULL:
        if _is(c, name):
            return c
        c = c.next
    return NULL


cdef int _count(xmlNode* parent, const char* ns, const char* name) noexcept:
    cdef xmlNode* c = parent.children
    cdef int n = 0
    while c is not NULL:
        if _in(c, ns) and strcmp(<const char*>c.name, name) == 0:
            n += 1
        c = c.next
    return n


cdef xmlNode* _first_listed(xmlNode* parent) noexcept:
    cdef xmlNode* c = parent.children
    while c is not NULL and not _listed(c):
        c = c.next
    return c


cdef xmlNode* _next_listed(xmlNode* c) noexcept:
    c = c.next
    while c is not NULL and not _listed(c):
        c = c.next
    return c


def read(_Element root not None, /):
    """``batch.read_python(root)``: (header values, item columns) or None."""
    cdef xmlNode* c_root = root._c_node
    cdef xmlNode* nfe
    cdef xmlNode* prot
    cdef xmlNode* inf
    cdef xmlNode* c
    cdef xmlNode* emit = NULL
    cdef xmlNode* dest = NULL
    cdef xmlNode* total = NULL
    cdef xmlNode* ide = NULL
    cdef xmlNode* cnpj_el = NULL
    cdef xmlNode* cnae_el = NULL
    cdef xmlNode* ender_emit = NULL
    cdef xmlNode* ender
    cdef xmlNode* info
    cdef xmlNode* values[12]
    cdef int n_ender = 0
    if c_root is NULL:  # a proxy made without a node (etree._Element())
        raise ValueError("invalid Element proxy")
    if not _is(c_root, b"nfeProc") or _get(c_root, b"versao") != "4.00":
        return None
    # list(root): exactly [NFe, protNFe]
    nfe = _first_listed(c_root)
    if nfe is NULL or not _is(nfe, b"NFe"):
        return None
    prot = _next_listed(nfe)
    if prot is NULL or not _is(prot, b"protNFe") or _next_listed(prot) is not NULL:
        return None
    # list(nfe): infNFe first, one infNFe, one ds:Signature
    inf = _first_listed(nfe)
    if inf is NULL or not _is(inf, b"infNFe") or _count(nfe, _NS, b"infNFe") != 1:
        return None
    if _count(nfe, _DS, b"Signature") != 1:
        return None
    ident = _get(inf, b"Id") or ""
    if _get(inf, b"versao") != "4.00" or not ident.startswith("NFe"):
        return None
    c = inf.children
    while c is not NULL:  # the last ide, emit, dest, total
        if _in(c, _NS):
            if strcmp(<const char*>c.name, b"ide") == 0:
                ide = c
            elif strcmp(<const char*>c.name, b"emit") == 0:
                emit = c
            elif strcmp(<const char*>c.name, b"dest") == 0:
                dest = c
            elif strcmp(<const char*>c.name, b"total") == 0:
                total = c
        c = c.next
    if ide is NULL or emit is NULL or total is NULL:
        return None
    _last(ide, _IDE, 10, values)
    c_uf, c_nf, mod, serie, n_nf, dh_emi, tp_emis, c_dv, tp_amb = [
        _text(values[i]) for i in range(9)
    ]
    id_dest = cetree.textOf(values[9]) if values[9] is not NULL else None
    c = emit.children
    while c is not NULL:  # the last CNPJ and CNAE; how many enderEmit
        if _in(c, _NS):
            if strcmp(<const char*>c.name, b"CNPJ") == 0:
                cnpj_el = c
            elif strcmp(<const char*>c.name, b"CNAE") == 0:
                cnae_el = c
            elif strcmp(<const char*>c.name, b"enderEmit") == 0:
                ender_emit = c
                n_ender += 1
        c = c.next
    cnpj = _text(cnpj_el)
    cnae = _text(cnae_el)
    if not cnpj or n_ender != 1:  # a CPF issuer; the Python reading takes the first enderEmit
        return None
    _last(ender_emit, _ENDER, 2, values)
    c_mun, uf = _text(values[0]), _text(values[1])
    dest_uf = ""
    ender = _first(dest, b"enderDest")
    if ender is not NULL:
        dest_uf = _text(_first(ender, b"UF"))
    c = _first(total, b"ICMSTot")
    if c is NULL:
        return None
    _last(c, _ICMSTOT, 12, values)
    money = [_text(values[i]) for i in range(12)]
    v_serv = ""
    c = total.children
    while c is not NULL:  # the first ISSQNtot that has a vServ
        if _is(c, b"ISSQNtot"):
            found = _first(c, b"vServ")
            if found is not NULL:
                v_serv = _text(found)
                break
        c = c.next
    info = _first(prot, b"infProt")
    if info is NULL:
        return None
    _last(info, _PROT, 3, values)
    p_amb, p_key, p_stat = _text(values[0]), _text(values[1]), _text(values[2])
    key = ident[3:]
    if (
        p_stat not in AUTHORIZED_STATUS
        or p_key != key
        or tp_amb != "1"
        or p_amb == "2"
        or key != encoded_key(c_uf, dh_emi, cnpj, mod, serie, n_nf, tp_emis, c_nf, c_dv)
    ):
        return None
    items = _items(inf)
    if items is None:
        return None
    header = [key, c_uf, c_nf, mod, serie, n_nf, dh_emi, tp_emis, c_dv, tp_amb, cnpj, cnae,
              c_mun, uf, dest_uf or (uf if id_dest == "1" else "")]
    header += money
    header.append(v_serv)
    return header, items


cdef int _walk_code(xmlNode* c) noexcept:
    """The item walk's code of ``c`` (det 0, NCM … indTot 1-6, vICMS 7, total 8), or -1."""
    if c.type != XML_ELEMENT_NODE:
        return -1
    cdef const char* name = <const char*>c.name
    cdef int code
    if name[0] == c'd':
        code = 0 if strcmp(name, b"det") == 0 else -1
    elif name[0] == c'N':
        code = 1 if strcmp(name, b"NCM") == 0 else -1
    elif name[0] == c'C':
        code = 2 if strcmp(name, b"CFOP") == 0 else -1
    elif name[0] == c'u':
        code = 3 if strcmp(name, b"uCom") == 0 else -1
    elif name[0] == c'q':
        code = 4 if strcmp(name, b"qCom") == 0 else -1
    elif name[0] == c'v':
        if strcmp(name, b"vProd") == 0:
            code = 5
        elif strcmp(name, b"vICMS") == 0:
            code = 7
        else:
            return -1
    elif name[0] == c'i':
        code = 6 if strcmp(name, b"indTot") == 0 else -1
    elif name[0] == c't':
        code = 8 if strcmp(name, b"total") == 0 else -1
    else:
        return -1
    if code < 0 or not _in(c, _NS):
        return -1
    return code


cdef xmlNode* _next_in_walk(xmlNode* top, xmlNode* c) noexcept:
    """The next node of ``top.iter(*walk tags)`` after ``c``: lxml's own traversal macros."""
    cetree.BEGIN_FOR_EACH_ELEMENT_FROM(top, c, 0)
    if _walk_code(c) >= 0:
        return c
    cetree.END_FOR_EACH_ELEMENT_FROM(c)
    return NULL


cdef list _items(xmlNode* inf):
    """``batch._read_items``: every item is det, NCM, CFOP, uCom, qCom, vProd, indTot and an
    optional vICMS, 1 to 990 items, numbered 1, 2, … up to the first total."""
    cdef list columns = [[] for _ in range(7)]
    cdef list icms = columns[6]
    cdef int state = 0  # next value expected: 1-6 inside an item; 7 after indTot, 8 after vICMS
    cdef int n = 0
    cdef int code
    cdef xmlNode* c = _next_in_walk(inf, inf)
    while c is not NULL:
        code = _walk_code(c)
        if code == _TOTAL:
            break
        if 1 <= state <= 6:
            if code != state:
                return None
            (<list>columns[state - 1]).append(_text(c))
            state += 1
        elif code == _DET:  # state 0 (the first item), 7 or 8 (after an item)
            if state == 7:
                icms.append("0")
            n += 1
            if n > _MAX_ITEMS or _get(c, b"nItem") != _NITEMS[n - 1]:
                return None
            state = 1
        elif code == _VICMS and state == 7:
            icms.append(_text(c))
            state = 8
        else:
            return None
        c = _next_in_walk(inf, c)
    if c is NULL or state < 7:  # no total, no item, or an item cut short
        return None
    if state == 7:
        icms.append("0")
    return columns
