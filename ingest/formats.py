"""The file types ingestion reads, by parser: the one list that the parser registry (`ingest.parsers`),
discovery, UI uploads and the HTTP server share. Importing it loads no parser."""

from __future__ import annotations

PDF_SUFFIXES = (".pdf",)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff")
TEXT_SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm")
DOCX_SUFFIXES = (".docx", ".docm")
SHEET_SUFFIXES = (".xlsx", ".xlsm")
CSV_SUFFIXES = (".csv", ".tsv")
SLIDE_SUFFIXES = (".pptx", ".pptm")
MAIL_SUFFIXES = (".eml", ".mbox")
MSG_SUFFIXES = (".msg",)  # Outlook, through the optional extract-msg (GPL-3.0): `pip install 'citeline[msg]'`
EPUB_SUFFIXES = (".epub",)
LEGACY_SUFFIXES = (".doc", ".xls", ".ppt", ".odt", ".ods", ".odp", ".rtf")  # converted through LibreOffice

# in the order of the parser registry
SUPPORTED: tuple[str, ...] = (PDF_SUFFIXES + IMAGE_SUFFIXES + TEXT_SUFFIXES + DOCX_SUFFIXES + SHEET_SUFFIXES
                              + CSV_SUFFIXES + SLIDE_SUFFIXES + MAIL_SUFFIXES + MSG_SUFFIXES + EPUB_SUFFIXES
                              + LEGACY_SUFFIXES)
