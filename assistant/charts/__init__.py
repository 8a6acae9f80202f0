"""Cited charts from document tables: every plotted value is read from a table cell and checked against it."""

from __future__ import annotations

from assistant.charts.build import ChartMaker, ChartSettings
from assistant.charts.select import is_chart_request
from assistant.charts.types import Chart, ChartPoint, ChartSeries, TableRef

__all__ = ["Chart", "ChartMaker", "ChartPoint", "ChartSeries", "ChartSettings", "TableRef", "is_chart_request"]
