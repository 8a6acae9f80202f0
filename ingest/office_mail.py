"""E-mail (.eml, and .mbox archives) with the standard `email` and `mailbox` packages.

A message is a page: its headers (from, to, cc, date, subject) as the first block and as document metadata,
then the body (plain text preferred, else HTML as visible text), one block per paragraph, positions as in
text files (BBox(0, i, 0, i)). Each attachment whose type Citeline reads is parsed by its own parser and its
pages follow the message's, their sections prefixed with `Attachment NAME ›`, so a citation names the
attachment and its own page, slide or cell range; `metadata["attachments"]` maps each attachment to its
pages. An attachment that cannot be read is listed in `metadata["attachment_errors"]`; the message stays.
Attachments nest (a forwarded message with its own attachments) up to MAX_DEPTH.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import tempfile
from dataclasses import replace
from typing import Any

from ingest.errors import CorruptFile, FileError, ResourceLimit
from ingest.formats import MAIL_SUFFIXES
from ingest.protocols import ParseOptions, ParserLookup
from ingest.textfiles import html_blocks, plain_blocks
from ingest.types import BBox, Block, Page, ParsedDocument, doc_id_for

MAX_DEPTH = 3
MAX_ATTACHMENTS = 100
MAX_MESSAGE_BYTES = 100_000_000
_HEADERS = ("From", "To", "Cc", "Date", "Subject")


class MailParser:
    suffixes: tuple[str, ...] = MAIL_SUFFIXES

    def __init__(self, parsers: ParserLookup) -> None:
        self.parsers = parsers  # reads the attachments

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
        pages, meta = message_pages(message, doc_id, options, first=1, depth=0, parsers=self.parsers)
        meta.update({k.lower(): _header(message, k) for k in _HEADERS if _header(message, k)})
        return ParsedDocument(path=path, sha256=sha256, kind="mail", pages=tuple(pages),
                              title=_header(message, "Subject") or os.path.basename(path),
                              author=_header(message, "From"), metadata=meta)

    def _mbox(self, path: str, sha256: str, doc_id: str, options: ParseOptions) -> ParsedDocument:
        import email
        import email.policy
        import mailbox

        box = mailbox.mbox(path, factory=lambda f: email.message_from_binary_file(f, policy=email.policy.default),  # type: ignore[call-overload]
                           create=False)
        pages: list[Page] = []
        meta: dict[str, str] = {}
        try:
            for i, message in enumerate(box):
                if len(pages) >= options.max_pages:
                    raise ResourceLimit(f"{path}: more than {options.max_pages} pages of mail (max_pages)")
                got, sub = message_pages(message, doc_id, options, first=len(pages) + 1, depth=0, prefix=f"m{i}",
                                         parsers=self.parsers)
                pages += got
                for k, v in sub.items():
                    meta[k] = f"{meta[k]}; {v}" if k in meta else v
        finally:
            box.close()
        if not pages:
            raise CorruptFile(f"{path}: no messages found in the mbox")
        meta["messages"] = str(sum(1 for p in pages if not p.section.startswith("Attachment ")))
        return ParsedDocument(path=path, sha256=sha256, kind="mail", pages=tuple(pages),
                              title=os.path.splitext(os.path.basename(path))[0], metadata=meta)


def message_pages(message: Any, doc_id: str, options: ParseOptions, first: int, depth: int,
                  prefix: str = "m", *, parsers: ParserLookup) -> tuple[list[Page], dict[str, str]]:
    """The message's own page, then its attachments' pages, numbered from `first`."""
    subject = _header(message, "Subject") or "(no subject)"
    header_text = "\n".join(f"{k}: {_header(message, k)}" for k in _HEADERS if _header(message, k))
    blocks = [Block(subject, BBox(0, 0, 0, 0), kind="heading")] + ([Block(header_text, BBox(0, 1, 0, 1))]
                                                                    if header_text else [])
    body = _body(message)
    blocks += [replace(b, bbox=BBox(0, i + 2, 0, i + 2)) for i, b in enumerate(body)]
    pages = [Page(number=first, width=0.0, height=float(len(blocks)), blocks=tuple(blocks), section=subject)]
    listed: list[str] = []
    errors: list[str] = []
    for k, part in enumerate(_attachments(message)):
        name = _safe_name(part.get_filename() or f"attachment-{k + 1}", part)
        try:
            got = _attachment_pages(part, name, doc_id, options, first + len(pages), depth, f"{prefix}a{k + 1}",
                                    parsers)
        except FileError as exc:
            errors.append(f"{name}: {str(exc).split(': ', 1)[-1]}")
            continue
        if got:
            listed.append(f"{name} (pages {got[0].number}-{got[-1].number})")
            pages += got
    meta: dict[str, str] = {}
    if listed:
        meta["attachments"] = "; ".join(listed)
    if errors:
        meta["attachment_errors"] = "; ".join(errors)
    return pages, meta


def _attachment_pages(part: Any, name: str, doc_id: str, options: ParseOptions, first: int, depth: int,
                      tag: str, parsers: ParserLookup) -> list[Page]:
    if depth >= MAX_DEPTH:
        raise ResourceLimit(f"{name}: attachments nested deeper than {MAX_DEPTH} levels are not read")
    if part.get_content_type() == "message/rfc822" or name.lower().endswith(".eml"):
        pages, _ = message_pages(_inner_message(part, name), doc_id, options, first, depth + 1, prefix=tag,
                                 parsers=parsers)
        return [_prefixed(p, name, p.number) for p in pages]
    parser = parsers(name)
    if parser is None:
        raise FileError(f"{name}: not a type Citeline reads; skipped")
    data = part.get_payload(decode=True) or b""
    if len(data) > MAX_MESSAGE_BYTES:
        raise ResourceLimit(f"{name}: {len(data):,} bytes; over the attachment limit")
    sub_assets = os.path.join(options.assets_dir, doc_id, tag)
    with tempfile.TemporaryDirectory(prefix="citeline-att-") as tmp:
        target = os.path.join(tmp, name)
        with open(target, "wb") as fh:
            fh.write(data)
        doc = parser.parse(target, hashlib.sha256(data).hexdigest(), replace(options, assets_dir=sub_assets))
    moved = f"{doc_id}/{tag}/"
    return [_prefixed(_rebase(p, moved), name, first + i) for i, p in enumerate(doc.pages)]


def _inner_message(part: Any, name: str) -> Any:
    """An attached message: parsed already (message/rfc822), or bytes to parse (base64, application/octet-stream)."""
    import email
    import email.policy

    payload = part.get_payload()
    if isinstance(payload, list) and payload and payload[0].keys():
        return payload[0]
    data = part.get_payload(decode=True) or b""
    if isinstance(payload, list) and payload:  # message/rfc822 sent base64-encoded: the parser saw no headers
        raw = payload[0].get_payload()
        cte = str(part.get("Content-Transfer-Encoding", "")).lower()
        data = base64.b64decode(raw, validate=False) if cte == "base64" and isinstance(raw, str) else b""
    inner = email.message_from_bytes(data, policy=email.policy.default)
    if not inner.keys():
        raise CorruptFile(f"{name}: no mail headers found; not an RFC 822 message")
    return inner


def _rebase(page: Page, prefix: str) -> Page:
    """Asset paths written under the attachment's own folder, made relative to the KB's assets again."""
    figures = tuple(replace(f, image_path=prefix + f.image_path) for f in page.figures)
    return replace(page, figures=figures, thumbnail=prefix + page.thumbnail if page.thumbnail else None)


def _prefixed(page: Page, name: str, number: int) -> Page:
    label = f"Attachment {name}"
    blocks = tuple(replace(b, text=f"{label} › {b.text}") if b.kind == "heading" else b for b in page.blocks)
    if not page.section.startswith(label):
        section = f"{label} › {page.section}" if page.section else label
        return replace(page, number=number, blocks=blocks, section=section)
    return replace(page, number=number)


def _attachments(message: Any) -> list[Any]:
    if not hasattr(message, "iter_attachments"):  # a legacy email.message.Message: no attachment API
        return []
    found = list(message.iter_attachments())
    if len(found) > MAX_ATTACHMENTS:
        raise ResourceLimit(f"{len(found)} attachments in one message; over the limit of {MAX_ATTACHMENTS}")
    return found


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


def _safe_name(name: str, part: Any) -> str:
    base = re.sub(r"[^\w.\- ]+", "_", os.path.basename(name.replace("\\", "/"))).strip(" .") or "attachment"
    if part.get_content_type() == "message/rfc822" and not base.lower().endswith(".eml"):
        base += ".eml"
    return base[:120]
