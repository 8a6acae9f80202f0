"""A thin wrapper over the `tesseract` command line: one image in, text lines with pixel boxes out.

We call the CLI (TSV output) rather than a Python binding so the only requirement is the Debian package,
and so a runaway page can be bounded by a subprocess timeout. Rotated scans (90/180/270 degrees) are
detected with tesseract's orientation script (`--psm 0`) when the first pass reads poorly; boxes are
mapped back to the original image so callers never see the rotation.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
from dataclasses import dataclass

from ingest.errors import MissingDependency, ResourceLimit
from ingest.types import BBox, Block

INSTALL_HINT = "apt-get install -y tesseract-ocr tesseract-ocr-eng"
_LOW_CONFIDENCE = 55.0  # mean word confidence under which we check the page orientation


@dataclass(frozen=True)
class OcrLine:
    """One line of recognised text. bbox is (x0, y0, x1, y1) in pixels of the image given to ocr_image."""

    text: str
    bbox: tuple[int, int, int, int]
    confidence: float  # mean word confidence, 0-100
    block: int = 0  # tesseract's block / paragraph numbers, for grouping lines into paragraphs
    paragraph: int = 0


def tesseract_path() -> str:
    path = shutil.which("tesseract")
    if path is None:
        raise MissingDependency("tesseract (OCR for scanned pages and images)", INSTALL_HINT)
    return path


def ocr_image(
    image: str | bytes, lang: str = "eng", timeout: float = 60.0, auto_rotate: bool = True
) -> list[OcrLine]:
    """OCR a PNG/JPEG (path or encoded bytes). Raises ResourceLimit when tesseract runs past `timeout`."""
    data = image if isinstance(image, bytes) else _read(image)
    lines = parse_tsv(_run_tesseract(data, ["-l", lang, "--psm", "3", "tsv"], timeout))
    if not auto_rotate or mean_confidence(lines) >= _LOW_CONFIDENCE:
        return lines
    angle = detect_rotation(data, timeout)
    if angle == 0:
        return lines
    rotated, size = _rotate_png(data, angle)
    turned = parse_tsv(_run_tesseract(rotated, ["-l", lang, "--psm", "3", "tsv"], timeout))
    if mean_confidence(turned) <= mean_confidence(lines):
        return lines
    return [_unrotate_line(line, angle, size) for line in turned]


def detect_rotation(data: bytes, timeout: float = 30.0) -> int:
    """Clockwise degrees (0/90/180/270) that make the page upright, from tesseract's OSD; 0 if unsure."""
    try:
        out = _run_tesseract(data, ["--psm", "0", "-l", "osd"], timeout)
    except (ResourceLimit, RuntimeError):
        return 0
    rotate = re.search(r"Rotate:\s*(\d+)", out)
    conf = re.search(r"Orientation confidence:\s*([\d.]+)", out)
    if not rotate or not conf or float(conf.group(1)) < 1.0:
        return 0
    return int(rotate.group(1)) % 360


def parse_tsv(tsv: str) -> list[OcrLine]:
    """Group tesseract's word rows (level 5) into lines keyed by (block, paragraph, line)."""
    words: dict[tuple[int, int, int], list[tuple[str, int, int, int, int, float]]] = {}
    for row in tsv.splitlines()[1:]:
        cols = row.split("\t")
        if len(cols) < 12 or cols[0] != "5" or not cols[11].strip():
            continue
        try:
            left, top, width, height = (int(c) for c in cols[6:10])
            conf = float(cols[10])
        except ValueError:
            continue
        key = (int(cols[2]), int(cols[3]), int(cols[4]))
        words.setdefault(key, []).append((cols[11].strip(), left, top, left + width, top + height, conf))
    return [_line(key, ws) for key, ws in words.items()]


def mean_confidence(lines: list[OcrLine]) -> float:
    if not lines:
        return 0.0
    weights = [max(1, len(line.text)) for line in lines]
    return sum(line.confidence * w for line, w in zip(lines, weights, strict=True)) / sum(weights)


def is_meaningful(line: OcrLine, min_confidence: float = 40.0) -> bool:
    """Drop the specks and texture noise tesseract reads as text in photos and margins."""
    return line.confidence >= min_confidence and bool(re.search(r"[^\W_]{2,}", line.text))


def ocr_blocks(
    lines: list[OcrLine],
    scale: float = 1.0,
    origin: tuple[float, float] = (0.0, 0.0),
    min_confidence: float = 40.0,
) -> list[Block]:
    """Group meaningful lines into paragraph blocks (ocr=True); `scale` converts pixels to page units."""
    groups: dict[tuple[int, int], list[OcrLine]] = {}
    for line in lines:
        if is_meaningful(line, min_confidence):
            groups.setdefault((line.block, line.paragraph), []).append(line)
    blocks = []
    for group in groups.values():
        x0 = min(ln.bbox[0] for ln in group) * scale + origin[0]
        y0 = min(ln.bbox[1] for ln in group) * scale + origin[1]
        x1 = max(ln.bbox[2] for ln in group) * scale + origin[0]
        y1 = max(ln.bbox[3] for ln in group) * scale + origin[1]
        text = "\n".join(ln.text for ln in group)
        blocks.append(Block(text=text, bbox=BBox(x0, y0, x1, y1), kind="text", ocr=True))
    return blocks


def _line(key: tuple[int, int, int], ws: list[tuple[str, int, int, int, int, float]]) -> OcrLine:
    text = " ".join(w[0] for w in ws)
    bbox = (min(w[1] for w in ws), min(w[2] for w in ws), max(w[3] for w in ws), max(w[4] for w in ws))
    conf = sum(w[5] for w in ws) / len(ws)
    return OcrLine(text=text, bbox=bbox, confidence=round(conf, 1), block=key[0], paragraph=key[1])


def _run_tesseract(data: bytes, args: list[str], timeout: float) -> str:
    cmd = [tesseract_path(), "stdin", "stdout", *args]
    try:
        proc = subprocess.run(cmd, input=data, capture_output=True, timeout=timeout, check=False, env=_env())
    except subprocess.TimeoutExpired as exc:
        raise ResourceLimit(f"OCR took longer than {timeout:.0f} s on one page; skipped") from exc
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip()
        if "Failed loading language" in err or "Error opening data file" in err:
            raise MissingDependency(
                f"the tesseract language data in {args}", "apt-get install -y tesseract-ocr-LANG"
            )
        raise RuntimeError(f"tesseract failed (exit {proc.returncode}): {err[-300:]}")
    return proc.stdout.decode("utf-8", "replace")


def _env() -> dict[str, str]:
    # tesseract's OpenMP threads fight each other on small machines: one thread is ~6x faster here,
    # and callers parallelise across pages/files instead.
    return {**os.environ, "OMP_THREAD_LIMIT": "1"}


def _read(path: str) -> bytes:
    with open(path, "rb") as fh:
        return fh.read()


def _rotate_png(data: bytes, angle: int) -> tuple[bytes, tuple[int, int]]:
    """Rotate clockwise by `angle`; returns the PNG and the ORIGINAL (width, height)."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        size = im.size
        turned = im.rotate(-angle, expand=True)
        buf = io.BytesIO()
        turned.save(buf, format="PNG")
    return buf.getvalue(), size


def _unrotate_line(line: OcrLine, angle: int, size: tuple[int, int]) -> OcrLine:
    """Map a box found on the image turned clockwise by `angle` back to the original image."""
    w, h = size
    x0, y0, x1, y1 = line.bbox
    if angle == 90:  # original (x, y) -> turned (h - y, x)
        box = (y0, h - x1, y1, h - x0)
    elif angle == 180:
        box = (w - x1, h - y1, w - x0, h - y0)
    elif angle == 270:  # original (x, y) -> turned (y, w - x)
        box = (w - y1, x0, w - y0, x1)
    else:
        box = line.bbox
    return OcrLine(line.text, box, line.confidence, line.block, line.paragraph)
