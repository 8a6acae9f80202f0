"""Citeline eval stage."""
