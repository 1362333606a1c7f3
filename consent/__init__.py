"""Purposes, policy versions, the consent ledger, enforcement and the customer portal."""
