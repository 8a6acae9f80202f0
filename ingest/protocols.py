"""The parser seam: one file in, one ParsedDocument out."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from ingest.types import ParsedDocument


@dataclass(frozen=True)
class ParseOptions:
    assets_dir: str  # crops and thumbnails go to assets_dir/<doc_id>/...; paths stored relative to assets_dir
    passwords: tuple[str, ...] = ()
    ocr: bool = True  # OCR pages that have no usable text layer
    ocr_language: str = "eng"
    thumbnail_zoom: float = 0.75  # page thumbnails rendered at 54 dpi (72 * zoom)
    min_figure_px: int = 48  # images smaller than this on either side are decorative
    min_figure_area_ratio: float = 0.01  # ... or covering less than 1% of the page
    max_pages: int = 3000
    max_image_pixels: int = 50_000_000  # decompression-bomb bound for any raster we decode
    render_office: bool = True  # DOCX/PPTX pages and thumbnails through LibreOffice, when `soffice` is installed
    staging_dir: str = ""  # where a mail parser saves attachments for their own parse; "" = list them, save none


class Parser(Protocol):
    suffixes: tuple[str, ...]

    def parse(self, path: str, sha256: str, options: ParseOptions) -> ParsedDocument: ...


# which parser reads a file, by its name (`ingest.parsers.parser_for`): handed to the parsers that read files
# inside files (mail attachments, converted legacy Office files), so they need not import the registry
ParserLookup = Callable[[str], "Parser | None"]
