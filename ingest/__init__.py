"""Citeline ingest stage."""
