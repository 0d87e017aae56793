"""Billing: the cost model, quota rules and windows, the reservation store, server rules and admission."""
