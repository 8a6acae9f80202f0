"""Citeline retrieval stage."""
