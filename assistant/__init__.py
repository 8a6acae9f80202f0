"""Citeline: answers over your own documents, with every claim cited and checked."""

from __future__ import annotations

from assistant.sdk import Citeline

__all__ = ["Citeline"]
