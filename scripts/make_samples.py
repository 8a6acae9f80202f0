"""Generate the demo sample folder: small PDFs, a scanned-style PDF and a PNG figure, all written by us.

    python scripts/make_samples.py samples/generated

The output is deterministic (fixed metadata, no new PDF /ID, Pillow's bundled font), so the same files
and the same content hashes come out on every run. The content answers questions such as
"What is the battery life of the Aurora X2?" with a citable page.
"""

from __future__ import annotations

import io
import sys
from dataclasses import dataclass
from pathlib import Path

import pymupdf
from PIL import Image, ImageDraw, ImageFont

FIXED_DATE = "D:20240301120000Z"
MARGIN = 72.0
WIDTH = 612.0 - 2 * MARGIN

BATTERY = [("Eco", 18), ("Balanced", 14), ("Performance", 11)]

MANUAL_INTRO = (
    "The Aurora X2 is a weather-sealed field camera for wildlife and environmental monitoring. It records "
    "4K video and 24-megapixel stills, and is designed to run unattended for days at a time."
)
MANUAL_BATTERY = (
    "The Aurora X2 battery life is up to 18 hours of continuous recording in Eco mode, 14 hours in Balanced "
    "mode and 11 hours in Performance mode. The battery is a 5,000 mAh lithium-ion pack (model AX-B50) "
    "that can be replaced in the field without tools."
)
MANUAL_CHARGING = (
    "Charge the Aurora X2 with the bundled 30 W USB-C adapter. A full charge from empty takes 2 hours; "
    "80 percent is reached after 70 minutes. The status light glows amber while charging and green when full."
)
MANUAL_TROUBLE = (
    "If the camera does not power on, hold the power button for 12 seconds to force a restart. If the lens "
    "fogs in humid conditions, fit the anti-fog insert (part AX-F2) behind the front glass."
)
NOTE_SECTIONS = [
    (
        "Abstract",
        "We compared three low-cost capacitive soil moisture probes against gravimetric samples at the Elm "
        "Creek test site over six weeks. The best probe, the SM-3, tracked gravimetric water content with a "
        "mean absolute error of 2.1 percentage points after a two-point calibration.",
    ),
    (
        "Method",
        "Probes were buried at 10 cm and 30 cm depth in loam and read every 15 minutes by a solar-powered "
        "logger. Gravimetric samples were taken weekly beside each probe and oven-dried at 105 degrees Celsius "
        "for 24 hours.",
    ),
    (
        "Results",
        "Uncalibrated probes overestimated moisture by 6 to 9 percentage points. After calibration the SM-3 "
        "reached a mean absolute error of 2.1 points, the CP-10 3.4 points and the GroSense 4.8 points. "
        "Readings drifted by less than 0.5 points over the study.",
    ),
    (
        "Conclusion",
        "Capacitive probes are adequate for irrigation scheduling once calibrated per soil type. We recommend "
        "the SM-3 and a recalibration at the start of every season.",
    ),
]
WARRANTY_LINES = [
    "AURORA X2 LIMITED WARRANTY CARD",
    "",
    "Northwind Optics warrants the Aurora X2 camera against",
    "defects in materials and workmanship for two (2) years",
    "from the date of purchase. The battery pack is covered",
    "for one (1) year or 500 charge cycles, whichever comes first.",
    "",
    "To make a claim, email support@northwind-optics.example",
    "with your serial number and proof of purchase.",
]


@dataclass
class _Flow:
    """A tiny top-to-bottom layout cursor on one PDF page."""

    page: pymupdf.Page
    y: float = MARGIN

    def heading(self, text: str, size: float = 16) -> None:
        self.page.insert_text((MARGIN, self.y + size), text, fontsize=size, fontname="hebo")
        self.y += size * 1.9

    def paragraph(self, text: str, size: float = 10.5) -> None:
        rect = pymupdf.Rect(MARGIN, self.y, MARGIN + WIDTH, self.y + 400)
        left = self.page.insert_textbox(rect, text, fontsize=size, fontname="helv")
        self.y += 400 - left + size * 0.9

    def table(self, rows: list[list[str]], size: float = 10) -> None:
        col = WIDTH / len(rows[0])
        for r, row in enumerate(rows):
            for c, cell in enumerate(row):
                cell_rect = pymupdf.Rect(MARGIN + c * col, self.y, MARGIN + (c + 1) * col, self.y + 20)
                self.page.draw_rect(cell_rect, color=(0, 0, 0), width=0.6)
                font = "hebo" if r == 0 else "helv"
                self.page.insert_text(
                    (cell_rect.x0 + 5, cell_rect.y1 - 6), cell, fontsize=size, fontname=font
                )
            self.y += 20
        self.y += 14

    def image(self, png: bytes, width: float, height: float, caption: str) -> None:
        x0 = MARGIN + (WIDTH - width) / 2
        self.page.insert_image(pymupdf.Rect(x0, self.y, x0 + width, self.y + height), stream=png)
        self.y += height + 6
        self.page.insert_text((x0, self.y + 9), caption, fontsize=9, fontname="helv")
        self.y += 26


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def battery_chart_png() -> bytes:
    """A bar chart of battery life per mode, drawn with Pillow."""
    im = Image.new("RGB", (720, 420), "white")
    draw = ImageDraw.Draw(im)
    draw.text((20, 12), "Aurora X2 battery life (hours)", fill="black", font=_font(26))
    draw.line((80, 360, 690, 360), fill="black", width=2)
    draw.line((80, 60, 80, 360), fill="black", width=2)
    for i, (mode, hours) in enumerate(BATTERY):
        x0 = 130 + i * 190
        top = 360 - hours * 15
        draw.rectangle((x0, top, x0 + 110, 360), fill=(46 + 70 * i, 110, 190 - 50 * i))
        draw.text((x0 + 35, top - 32), f"{hours} h", fill="black", font=_font(22))
        draw.text((x0 + 5, 370), mode, fill="black", font=_font(22))
    return _png(im)


def ports_figure_png() -> bytes:
    """A diagram of the camera's side panel with a legend, as a standalone PNG figure."""
    im = Image.new("RGB", (900, 600), "white")
    draw = ImageDraw.Draw(im)
    draw.text((30, 20), "Aurora X2 - side panel ports", fill="black", font=_font(34))
    draw.rounded_rectangle((80, 90, 820, 270), radius=30, outline="black", width=4)
    labels = ["USB-C charging port (30 W)", "HDMI output", "microSD card slot (up to 1 TB)"]
    for i, label in enumerate(labels):
        x = 170 + i * 230
        draw.rectangle((x, 150, x + 110, 200), outline=(90, 90, 90), width=3)
        draw.text((x + 45, 212), str(i + 1), fill=(90, 90, 90), font=_font(30))
        draw.text((80, 330 + i * 70), f"{i + 1}. {label}", fill="black", font=_font(34))
    return _png(im)


def warranty_scan_png() -> bytes:
    """The warranty card as a grey, slightly noisy raster: a scan with no text layer."""
    im = Image.new("L", (1700, 1100), 246)
    draw = ImageDraw.Draw(im)
    for i, line in enumerate(WARRANTY_LINES):
        draw.text((110, 110 + i * 95), line, fill=25, font=_font(52 if i == 0 else 46))
    for k in range(0, 1700 * 1100, 7919):  # deterministic speckle
        draw.point((k % 1700, (k // 1700) % 1100), fill=200)
    return _png(im)


def _png(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def _new_doc(title: str) -> pymupdf.Document:
    doc = pymupdf.open()
    doc.set_metadata(
        {"title": title, "author": "Citeline samples", "creationDate": FIXED_DATE, "modDate": FIXED_DATE}
    )
    return doc


def _save(doc: pymupdf.Document, path: Path) -> None:
    doc.save(path, garbage=3, deflate=True, no_new_id=True)
    doc.close()


def make_manual(path: Path) -> None:
    doc = _new_doc("Aurora X2 Field Camera - User Manual")
    flow = _Flow(doc.new_page())
    flow.heading("Aurora X2 Field Camera - User Manual", 20)
    flow.paragraph(MANUAL_INTRO)
    flow.heading("Battery and Power")
    flow.paragraph(MANUAL_BATTERY)
    rows = [["Recording mode", "Battery life", "Max resolution"]]
    rows += [
        [mode, f"{hours} hours", res]
        for (mode, hours), res in zip(BATTERY, ("1080p", "4K 30 fps", "4K 60 fps"), strict=True)
    ]
    flow.table(rows)
    flow.image(battery_chart_png(), 360, 210, "Figure 1. Battery life of the Aurora X2 by recording mode.")
    flow = _Flow(doc.new_page())
    flow.heading("Charging")
    flow.paragraph(MANUAL_CHARGING)
    flow.heading("Troubleshooting")
    flow.paragraph(MANUAL_TROUBLE)
    doc.set_toc([[1, "Battery and Power", 1], [1, "Charging", 2], [1, "Troubleshooting", 2]])
    _save(doc, path)


def make_research_note(path: Path) -> None:
    doc = _new_doc("Field Note: Calibrating Low-Cost Soil Moisture Probes")
    flow = _Flow(doc.new_page())
    flow.heading("Field Note: Calibrating Low-Cost Soil Moisture Probes", 17)
    flow.paragraph("Elm Creek Research Station - Technical Note 7", 9)
    for title, text in NOTE_SECTIONS:
        flow.heading(title, 13)
        flow.paragraph(text)
    flow.table(
        [
            ["Probe", "MAE before", "MAE after"],
            ["SM-3", "6.2", "2.1"],
            ["CP-10", "7.9", "3.4"],
            ["GroSense", "9.0", "4.8"],
        ]
    )
    _save(doc, path)


def make_scanned_warranty(path: Path) -> None:
    doc = _new_doc("Aurora X2 Warranty Card (scan)")
    page = doc.new_page(width=792, height=512)
    page.insert_image(page.rect, stream=warranty_scan_png())
    _save(doc, path)


def make_samples(outdir: Path) -> list[Path]:
    outdir.mkdir(parents=True, exist_ok=True)
    paths = {
        "aurora_x2_manual.pdf": make_manual,
        "soil_moisture_note.pdf": make_research_note,
        "aurora_x2_warranty_scan.pdf": make_scanned_warranty,
    }
    written = []
    for name, make in paths.items():
        make(outdir / name)
        written.append(outdir / name)
    (outdir / "aurora_x2_ports.png").write_bytes(ports_figure_png())
    written.append(outdir / "aurora_x2_ports.png")
    return written


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python scripts/make_samples.py OUTDIR", file=sys.stderr)
        return 2
    for path in make_samples(Path(args[0])):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
