"""Citeline ui stage."""
