"""Image files: each image (each TIFF frame) is a page holding one whole-image figure plus its OCR text.

Coordinates are pixels of the original image. The stored copy is downscaled so its longer side is at
most MAX_SIDE: PNG for lossless sources (diagrams, screenshots), JPEG for photos.
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from typing import Any

from ingest.errors import CitelineError, CorruptFile, FileError, ResourceLimit, out_of_memory
from ingest.formats import IMAGE_SUFFIXES
from ingest.ocr import OcrLine, ocr_blocks, ocr_image
from ingest.protocols import ParseOptions
from ingest.types import BBox, Figure, Page, ParsedDocument, doc_id_for

MAX_SIDE = 1600
OCR_MAX_PIXELS = 12_000_000
OCR_TIMEOUT_S = 60.0
_PHOTO_FORMATS = {"JPEG", "WEBP", "MPO"}


class ImageParser:
    suffixes: tuple[str, ...] = IMAGE_SUFFIXES

    def parse(self, path: str, sha256: str, options: ParseOptions) -> ParsedDocument:
        try:
            return self._parse(path, sha256, options)
        except CitelineError:
            raise
        except MemoryError as exc:
            raise out_of_memory(path, "the image") from exc
        except Exception as exc:  # Pillow raises many types on hostile files
            raise CorruptFile(f"{path}: image data is damaged ({type(exc).__name__}: {exc})") from exc

    def _parse(self, path: str, sha256: str, options: ParseOptions) -> ParsedDocument:
        from PIL import Image

        doc_id = doc_id_for(sha256)
        pages = []
        with _open_image(path, options) as im:
            fmt = im.format or ""
            frames = getattr(im, "n_frames", 1) if fmt in {"TIFF", "MPO"} else 1
            if frames > options.max_pages:
                raise ResourceLimit(
                    f"{path}: {frames} frames exceed the limit of {options.max_pages} (max_pages)"
                )
            for index in range(frames):
                frame = _load_frame(im, index, path, Image)
                pages.append(_page(frame, index + 1, fmt, doc_id, options))
        return ParsedDocument(
            path=path,
            sha256=sha256,
            kind="image",
            pages=tuple(pages),
            title=os.path.splitext(os.path.basename(path))[0],
            metadata={"format": fmt, "frames": str(frames)},
        )


def _open_image(path: str, options: ParseOptions) -> Any:
    from PIL import Image, UnidentifiedImageError

    Image.MAX_IMAGE_PIXELS = options.max_image_pixels
    if os.path.getsize(path) == 0:
        raise CorruptFile(f"{path}: the file is empty (0 bytes); copy or download it again")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(path)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _bomb(path, options) from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise CorruptFile(f"{path}: not a readable image ({exc}); re-export it as PNG or JPEG") from exc
    if im.width * im.height > options.max_image_pixels:
        im.close()
        raise _bomb(path, options)
    return im


def _bomb(path: str, options: ParseOptions) -> ResourceLimit:
    return ResourceLimit(
        f"{path}: the image has more than {options.max_image_pixels:,} pixels (max_image_pixels), "
        f"a possible decompression bomb; downscale it to at most {options.max_image_pixels:,} pixels"
    )


def _load_frame(im: Any, index: int, path: str, image_mod: Any) -> Any:
    try:
        im.seek(index)
        frame = im.copy()
        frame.load()
    except FileError:
        raise
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise CorruptFile(f"{path}: image data is damaged at frame {index + 1} ({exc})") from exc
    return _to_rgb(frame, image_mod)


def _to_rgb(frame: Any, image_mod: Any) -> Any:
    """Flatten any mode (P, LA, RGBA, CMYK, I;16, 1) onto white RGB."""
    if frame.mode in ("RGBA", "LA") or (frame.mode == "P" and "transparency" in frame.info):
        rgba = frame.convert("RGBA")
        white = image_mod.new("RGB", rgba.size, (255, 255, 255))
        white.paste(rgba, mask=rgba.getchannel("A"))
        return white
    if frame.mode.startswith("I;16") or frame.mode in ("I", "F"):
        frame = frame.point(lambda v: v / 256).convert("L")
    return frame.convert("RGB")


def _page(frame: Any, number: int, fmt: str, doc_id: str, options: ParseOptions) -> Page:
    width, height = frame.size
    rel, data, size = save_copy(frame, fmt, f"{doc_id}/p{number:04d}-fig1", options.assets_dir)
    lines = _ocr(frame, options) if options.ocr else []
    blocks = tuple(ocr_blocks(lines, min_confidence=60.0))
    figure = Figure(
        bbox=BBox(0.0, 0.0, float(width), float(height)),
        image_path=rel,
        sha256=hashlib.sha256(data).hexdigest(),
        width=size[0],
        height=size[1],
        ocr_text=" ".join(b.text.replace("\n", " ") for b in blocks),
    )
    return Page(
        number=number,
        width=float(width),
        height=float(height),
        blocks=blocks,
        figures=(figure,),
        ocr=bool(blocks),
        thumbnail=rel,
    )


def save_copy(frame: Any, fmt: str, stem: str, assets_dir: str) -> tuple[str, bytes, tuple[int, int]]:
    """The picture as the KB keeps it: at most MAX_SIDE pixels a side, JPEG for photos, PNG otherwise, saved as
    `stem.ext` under the assets folder. Returns (relative path, bytes, size)."""
    copy = frame.copy()
    copy.thumbnail((MAX_SIDE, MAX_SIDE))
    ext, pil_fmt, kwargs = ("jpg", "JPEG", {"quality": 88}) if fmt in _PHOTO_FORMATS else ("png", "PNG", {})
    buf = io.BytesIO()
    copy.save(buf, format=pil_fmt, **kwargs)
    data = buf.getvalue()
    rel = f"{stem}.{ext}"
    path = os.path.join(assets_dir, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(data)
    return rel, data, copy.size


def _ocr(frame: Any, options: ParseOptions) -> list[OcrLine]:
    """OCR at native resolution (downscaled only past OCR_MAX_PIXELS); boxes in original pixels."""
    scale = min(1.0, (min(OCR_MAX_PIXELS, options.max_image_pixels) / (frame.width * frame.height)) ** 0.5)
    img = frame.convert("L")
    if scale < 1.0:
        img = img.resize((max(1, int(frame.width * scale)), max(1, int(frame.height * scale))))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    try:
        lines = ocr_image(buf.getvalue(), lang=options.ocr_language, timeout=OCR_TIMEOUT_S)
    except ResourceLimit:
        return []
    if scale == 1.0:
        return lines
    inv = 1 / scale
    return [
        OcrLine(ln.text, tuple(int(v * inv) for v in ln.bbox), ln.confidence, ln.block, ln.paragraph)  # type: ignore[arg-type]
        for ln in lines
    ]
