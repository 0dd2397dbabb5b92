"""Money, UFEMG, contract price schedules, invoices and DAE statements."""
