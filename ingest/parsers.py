"""The parser registry: which parser reads which file, by suffix."""

from __future__ import annotations

import os

from ingest.errors import UnsupportedFile
from ingest.images import ImageParser
from ingest.office_docx import DocxParser
from ingest.office_epub import EpubParser
from ingest.office_legacy import LegacyOfficeParser
from ingest.office_mail import MailParser
from ingest.office_msg import MsgParser
from ingest.office_sheets import CsvParser, XlsxParser
from ingest.office_slides import PptxParser
from ingest.pdf import PdfParser
from ingest.protocols import ParseOptions, Parser
from ingest.textfiles import TextParser
from ingest.types import ParsedDocument


def parser_for(path: str) -> Parser | None:
    suffix = os.path.splitext(path)[1].lower()
    return next((p for p in PARSERS if suffix in p.suffixes), None)


# legacy Office files hold files of other kinds: that parser is handed the lookup (mail stages its attachments
# for ingest.attachments, which parses each as a file)
PARSERS: tuple[Parser, ...] = (PdfParser(), ImageParser(), TextParser(), DocxParser(), XlsxParser(), CsvParser(),
                               PptxParser(), MailParser(), MsgParser(), EpubParser(), LegacyOfficeParser(parser_for))
SUPPORTED_SUFFIXES: frozenset[str] = frozenset(s for p in PARSERS for s in p.suffixes)


def parse_file(path: str, sha256: str, options: ParseOptions) -> ParsedDocument:
    """Parse one file with the parser its suffix selects; UnsupportedFile for anything else."""
    parser = parser_for(path)
    if parser is None:
        supported = ", ".join(sorted(SUPPORTED_SUFFIXES))
        raise UnsupportedFile(f"{path}: unsupported file type; supported: {supported}")
    return parser.parse(path, sha256, options)
