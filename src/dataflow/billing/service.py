"""Billing services: transactions begin and commit here, at the command/job boundary."""

from __future__ import annotations

from dataflow.billing.compute import compute_invoice

__all__ = ["compute_invoice"]
