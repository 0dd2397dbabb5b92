"""Billing as people read it: invoice lines worded in Portuguese (``wording``) and finance's
read-only reports (``reports``: a month's close, revenue by month, pages of invoices).

Nothing here changes anything; every change goes through ``billing.lifecycle`` and
``billing.service``.
"""
