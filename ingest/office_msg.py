"""Outlook messages (.msg) with extract-msg, read like e-mail (`ingest.office_mail`): one page with the subject,
the headers (from, to, cc, date) and the body (plain text, else the HTML's visible text); each attachment saved
for its own parse as a document of its own (an attached Outlook message too, as `.msg`), linked to this one.

extract-msg is GPL-3.0, so it is an optional extra (`pip install 'citeline[msg]'`) that Citeline (Apache-2.0)
never imports unless a .msg file is read; without it a .msg fails alone, saying what to install.
"""

from __future__ import annotations

import os
from typing import Any

from ingest.errors import CorruptFile, FileError, UnsupportedFile
from ingest.formats import MSG_SUFFIXES
from ingest.office_mail import message_page, safe_name, stage_all
from ingest.protocols import ParseOptions
from ingest.textfiles import html_blocks, plain_blocks
from ingest.types import Block, ParsedDocument, doc_id_for

INSTALL = "pip install 'citeline[msg]' (extract-msg==0.57.0, GPL-3.0)"


class MsgParser:
    suffixes: tuple[str, ...] = MSG_SUFFIXES

    def parse(self, path: str, sha256: str, options: ParseOptions) -> ParsedDocument:
        try:
            import extract_msg
        except ImportError:
            raise UnsupportedFile(f"{path}: reading Outlook .msg files needs the optional extract-msg package: "
                                  f"{INSTALL}, or save the message as .eml") from None
        try:
            msg = extract_msg.openMsg(path)
        except Exception as exc:  # not an OLE file, or not a message: the library's own errors vary
            raise CorruptFile(f"{path}: not a readable Outlook message ({exc}); re-save it from Outlook") from exc
        try:
            return _document(msg, path, sha256, options)
        finally:
            msg.close()


def _document(msg: Any, path: str, sha256: str, options: ParseOptions) -> ParsedDocument:
    doc_id = doc_id_for(sha256)
    headers = [("From", _text(msg, "sender")), ("To", _text(msg, "to")), ("Cc", _text(msg, "cc")),
               ("Date", _text(msg, "date"))]
    subject = _text(msg, "subject")
    page = message_page(subject, headers, _body(msg), 1)
    named = [(_name(att, k), att) for k, att in enumerate(getattr(msg, "attachments", None) or [])]
    staged, errors = stage_all(named, _bytes, options, doc_id, "m", 1)
    meta = {k.lower(): v for k, v in [*headers, ("Subject", subject)] if v}
    if errors:
        meta["attachment_errors"] = "\n".join(" ".join(e.split()) for e in errors)
    return ParsedDocument(path=path, sha256=sha256, kind="mail", pages=(page,),
                          title=subject or os.path.basename(path), author=meta.get("from", ""), metadata=meta,
                          attachments=tuple(staged))


def _text(msg: Any, attr: str) -> str:
    try:
        value = getattr(msg, attr, None)
    except Exception:  # a property stream the library cannot decode
        return ""
    return " ".join(str(value).split()) if value else ""


def _body(msg: Any) -> list[Block]:
    try:
        plain = msg.body
        html = None if plain and plain.strip() else msg.htmlBody
    except Exception:  # an undecodable body stream: the message still has its headers and attachments
        return []
    if plain and plain.strip():
        return plain_blocks(plain.replace("\r\n", "\n"))
    if html:
        return html_blocks(html.decode("utf-8", "replace") if isinstance(html, bytes) else str(html))[1]
    return []


def _name(att: Any, k: int) -> str:
    embedded = not isinstance(getattr(att, "data", None), bytes | None)
    try:
        name = att.getFilename() if embedded else (att.longFilename or att.shortFilename)
    except Exception:
        name = None
    return safe_name(name or f"attachment-{k + 1}", ".msg" if embedded else "")


def _bytes(att: Any, name: str) -> bytes:
    data = att.data
    if isinstance(data, bytes):
        return data
    if hasattr(data, "exportBytes"):  # an attached Outlook message: saved as a .msg of its own
        return bytes(data.exportBytes())
    raise FileError(f"{name}: an attachment of a kind Outlook keeps inside the message (not a file); skipped")
