"""Money, the UFEMG table, price schedules, invoice computation, the monthly job, the invoice
lifecycle, DAE statements and on-demand budgets; ``reading/`` is how people read them (invoice
lines in Portuguese, finance's reports).

Reads contract terms and the usage ledger through `contracts`; never imports `api`,
`aggregation` or `metering`.
"""
