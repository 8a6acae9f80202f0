"""E-mail (.eml, and .mbox archives) with the standard `email` and `mailbox` packages.

A message is a page: its headers (from, to, cc, date, subject) as the first block and as document metadata,
then the body (plain text preferred, else HTML as visible text), one block per paragraph, positions as in
text files (BBox(0, i, 0, i)); an mbox holds one page per message. Each attachment whose type Citeline reads
is saved to `options.staging_dir` and listed in `ParsedDocument.attachments`: `ingest.attachments.expand`
parses it as a document of its own (a forwarded message too, with its own attachments), linked to this one.
One that cannot be read (unsupported, too big, over MAX_ATTACHMENTS) is listed in
`metadata["attachment_errors"]`; the message stays.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from ingest.errors import CorruptFile, FileError, ResourceLimit
from ingest.formats import MAIL_SUFFIXES
from ingest.protocols import ParseOptions
from ingest.textfiles import html_blocks, plain_blocks
from ingest.types import Attachment, BBox, Block, Page, ParsedDocument, doc_id_for

MAX_ATTACHMENTS = 100
MAX_MESSAGE_BYTES = 100_000_000
_HEADERS = ("From", "To", "Cc", "Date", "Subject")


class MailParser:
    suffixes: tuple[str, ...] = MAIL_SUFFIXES

    def parse(self, path: str, sha256: str, options: ParseOptions) -> ParsedDocument:
        if os.path.getsize(path) > MAX_MESSAGE_BYTES * 10:
            raise ResourceLimit(f"{path}: over the {MAX_MESSAGE_BYTES * 10 / 1e6:.0f} MB mail limit")
        doc_id = doc_id_for(sha256)
        if path.lower().endswith(".mbox"):
            return self._mbox(path, sha256, doc_id, options)
        import email
        import email.policy

        with open(path, "rb") as fh:
            message = email.message_from_binary_file(fh, policy=email.policy.default)
        if not message.keys():
            raise CorruptFile(f"{path}: no mail headers found; not an RFC 822 message")
        pages, staged, errors = message_pages(message, doc_id, options, first=1)
        meta = {k.lower(): _header(message, k) for k in _HEADERS if _header(message, k)}
        return ParsedDocument(path=path, sha256=sha256, kind="mail", pages=tuple(pages),
                              title=_header(message, "Subject") or os.path.basename(path),
                              author=_header(message, "From"), metadata=_with_errors(meta, errors),
                              attachments=tuple(staged))

    def _mbox(self, path: str, sha256: str, doc_id: str, options: ParseOptions) -> ParsedDocument:
        import email
        import email.policy
        import mailbox

        box = mailbox.mbox(path, factory=lambda f: email.message_from_binary_file(f, policy=email.policy.default),  # type: ignore[call-overload]
                           create=False)
        pages: list[Page] = []
        staged: list[Attachment] = []
        errors: list[str] = []
        try:
            for i, message in enumerate(box):
                if len(pages) >= options.max_pages:
                    raise ResourceLimit(f"{path}: more than {options.max_pages} messages (max_pages)")
                got, more, bad = message_pages(message, doc_id, options, first=len(pages) + 1, prefix=f"m{i}")
                pages, staged, errors = pages + got, staged + more, errors + [f"message {i + 1}, {e}" for e in bad]
        finally:
            box.close()
        if not pages:
            raise CorruptFile(f"{path}: no messages found in the mbox")
        meta = _with_errors({"messages": str(len(pages))}, errors)
        return ParsedDocument(path=path, sha256=sha256, kind="mail", pages=tuple(pages),
                              title=os.path.splitext(os.path.basename(path))[0], metadata=meta,
                              attachments=tuple(staged))


def _with_errors(meta: dict[str, str], errors: list[str]) -> dict[str, str]:
    return {**meta, "attachment_errors": "\n".join(" ".join(e.split()) for e in errors)} if errors else meta


def message_pages(message: Any, doc_id: str, options: ParseOptions, first: int,
                  prefix: str = "m") -> tuple[list[Page], list[Attachment], list[str]]:
    """The message's own page (numbered `first`), its attachments staged for their own parse, and the ones
    that cannot be read (unsupported, too big, over the count limit), each as `name: why`."""
    headers = [(k, _header(message, k)) for k in _HEADERS]
    page = message_page(_header(message, "Subject"), headers, _body(message), first)
    parts = _attachments(message)
    named = [(safe_name(p.get_filename() or f"attachment-{k + 1}", ".eml" if _is_mail(p) else ""), p)
             for k, p in enumerate(parts)]
    staged, errors = stage_all(named, lambda p, name: _inner_bytes(p, name) if _is_mail(p) else
                               p.get_payload(decode=True) or b"", options, doc_id, prefix, first)
    return [page], staged, errors


def message_page(subject: str, headers: list[tuple[str, str]], body: list[Block], number: int) -> Page:
    """A message as a page: the subject as its heading, then its headers, then its body (positions as in text)."""
    subject = subject or "(no subject)"
    header_text = "\n".join(f"{k}: {v}" for k, v in headers if v)
    blocks = [Block(subject, BBox(0, 0, 0, 0), kind="heading")] + ([Block(header_text, BBox(0, 1, 0, 1))]
                                                                    if header_text else [])
    blocks += [replace(b, bbox=BBox(0, i + 2, 0, i + 2)) for i, b in enumerate(body)]
    return Page(number=number, width=0.0, height=float(len(blocks)), blocks=tuple(blocks), section=subject)


def stage_all(named: list[tuple[str, Any]], read: Callable[[Any, str], bytes], options: ParseOptions, doc_id: str,
              prefix: str, page: int) -> tuple[list[Attachment], list[str]]:
    """Stage each (name, attachment) whose bytes `read` gives, up to MAX_ATTACHMENTS; the rest as errors."""
    from ingest.parsers import parser_for

    staged: list[Attachment] = []
    errors = [f"{len(named) - MAX_ATTACHMENTS} more attachments: over the limit of {MAX_ATTACHMENTS} per message;"
              " not read"] if len(named) > MAX_ATTACHMENTS else []
    for k, (name, item) in enumerate(named[:MAX_ATTACHMENTS]):
        folder = os.path.join(options.staging_dir, doc_id, f"{prefix}a{k + 1}") if options.staging_dir else ""
        try:
            if parser_for(name) is None:
                raise FileError(f"{name}: not a type Citeline reads; skipped")
            staged.append(stage(name, read(item, name), folder, page))
        except FileError as exc:
            errors.append(f"{name}: {str(exc).split(': ', 1)[-1]}")
        except MemoryError:
            raise
        except Exception as exc:  # a malformed part the library cannot decode: this attachment alone is lost
            errors.append(f"{name}: could not be decoded ({type(exc).__name__}); not read")
    return staged, errors


def stage(name: str, data: bytes, folder: str, page: int) -> Attachment:
    """Save one attachment's bytes for its own parse (nothing is saved without a staging folder)."""
    if len(data) > MAX_MESSAGE_BYTES:
        raise ResourceLimit(f"{name}: {len(data):,} bytes; over the attachment limit")
    sha = hashlib.sha256(data).hexdigest()
    if not folder:
        return Attachment(name, "", sha, page)
    os.makedirs(folder, exist_ok=True)
    target = os.path.join(folder, name)
    with open(target, "wb") as fh:
        fh.write(data)
    return Attachment(name, target, sha, page)


def _is_mail(part: Any) -> bool:
    return bool(part.get_content_type() == "message/rfc822")


def _inner_bytes(part: Any, name: str) -> bytes:
    """An attached message's bytes: parsed already (message/rfc822), or bytes (base64, octet-stream)."""
    payload = part.get_payload()
    if isinstance(payload, list) and payload and payload[0].keys():
        return bytes(payload[0])
    data = part.get_payload(decode=True) or b""
    if isinstance(payload, list) and payload:  # message/rfc822 sent base64-encoded: the parser saw no headers
        raw = payload[0].get_payload()
        cte = str(part.get("Content-Transfer-Encoding", "")).lower()
        data = base64.b64decode(raw, validate=False) if cte == "base64" and isinstance(raw, str) else b""
    if not data.strip():
        raise CorruptFile(f"{name}: an empty attached message")
    return data


def _attachments(message: Any) -> list[Any]:
    if not hasattr(message, "iter_attachments"):  # a legacy email.message.Message: no attachment API
        return []
    return list(message.iter_attachments())


def _body(message: Any) -> list[Block]:
    part = message.get_body(preferencelist=("plain", "html")) if hasattr(message, "get_body") else None
    if part is None:
        return []
    try:
        text = part.get_content()
    except (LookupError, UnicodeError):  # an unknown charset: decode what is there
        text = (part.get_payload(decode=True) or b"").decode("latin-1")
    if part.get_content_subtype() == "html":
        return html_blocks(text)[1]
    return plain_blocks(text)


def _header(message: Any, name: str) -> str:
    try:
        value = message.get(name)
    except Exception:  # a malformed header the policy cannot parse
        return ""
    return " ".join(str(value).split()) if value else ""


def safe_name(name: str, suffix: str = "") -> str:
    """A sender's file name as a plain name: no folders, no odd characters, `suffix` when it lacks it."""
    base = re.sub(r"[^\w.\- ]+", "_", os.path.basename(name.replace("\\", "/"))).strip(" .") or "attachment"
    if suffix and not base.lower().endswith(suffix):
        base = base[: 120 - len(suffix)] + suffix
    return base[:120]

