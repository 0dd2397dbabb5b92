"""Reading NF-e/NFC-e 4.00 XML: the reference reading (`reader`), the bulk fast path (`batch`,
compiled in `_read.pyx`) and the official XSDs (`xsd`).

Owns lxml for the whole project; imports only `invoices` (schema, check digits, quarantine).
"""
