"""Durable runs: the run store, budgets, resuming a run and replaying one from its recorded calls."""
