"""A tiny chart writer: line and bar charts as PNG with the stdlib only (zlib + struct).

No matplotlib: the benchmarks must not add a plotting stack (numpy, pillow, fonts…) to the
dev environment. Text uses a built-in 5×7 bitmap font (upper case, digits, a few signs).
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path

Color = tuple[int, int, int]
WHITE: Color = (255, 255, 255)
BLACK: Color = (20, 20, 20)
GREY: Color = (215, 215, 215)
DARK: Color = (110, 110, 110)
BLUE: Color = (31, 119, 180)
ORANGE: Color = (255, 127, 14)
GREEN: Color = (44, 160, 44)
RED: Color = (214, 39, 40)
PALETTE = [BLUE, ORANGE, GREEN, RED, (148, 103, 189)]

_GLYPHS = {
    "0": "01110 10001 10011 10101 11001 10001 01110", "1": "00100 01100 00100 00100 00100 00100 01110",
    "2": "01110 10001 00001 00010 00100 01000 11111", "3": "11111 00010 00100 00010 00001 10001 01110",
    "4": "00010 00110 01010 10010 11111 00010 00010", "5": "11111 10000 11110 00001 00001 10001 01110",
    "6": "00110 01000 10000 11110 10001 10001 01110", "7": "11111 00001 00010 00100 01000 01000 01000",
    "8": "01110 10001 10001 01110 10001 10001 01110", "9": "01110 10001 10001 01111 00001 00010 01100",
    "A": "01110 10001 10001 11111 10001 10001 10001", "B": "11110 10001 10001 11110 10001 10001 11110",
    "C": "01110 10001 10000 10000 10000 10001 01110", "D": "11100 10010 10001 10001 10001 10010 11100",
    "E": "11111 10000 10000 11110 10000 10000 11111", "F": "11111 10000 10000 11110 10000 10000 10000",
    "G": "01110 10001 10000 10111 10001 10001 01111", "H": "10001 10001 10001 11111 10001 10001 10001",
    "I": "01110 00100 00100 00100 00100 00100 01110", "J": "00111 00010 00010 00010 00010 10010 01100",
    "K": "10001 10010 10100 11000 10100 10010 10001", "L": "10000 10000 10000 10000 10000 10000 11111",
    "M": "10001 11011 10101 10101 10001 10001 10001", "N": "10001 10001 11001 10101 10011 10001 10001",
    "O": "01110 10001 10001 10001 10001 10001 01110", "P": "11110 10001 10001 11110 10000 10000 10000",
    "Q": "01110 10001 10001 10001 10101 10010 01101", "R": "11110 10001 10001 11110 10100 10010 10001",
    "S": "01111 10000 10000 01110 00001 00001 11110", "T": "11111 00100 00100 00100 00100 00100 00100",
    "U": "10001 10001 10001 10001 10001 10001 01110", "V": "10001 10001 10001 10001 10001 01010 00100",
    "W": "10001 10001 10001 10101 10101 10101 01010", "X": "10001 10001 01010 00100 01010 10001 10001",
    "Y": "10001 10001 10001 01010 00100 00100 00100", "Z": "11111 00001 00010 00100 01000 10000 11111",
    " ": "00000 00000 00000 00000 00000 00000 00000", ".": "00000 00000 00000 00000 00000 01100 01100",
    ",": "00000 00000 00000 00000 01100 00100 01000", ":": "00000 01100 01100 00000 01100 01100 00000",
    "-": "00000 00000 00000 11111 00000 00000 00000", "+": "00000 00100 00100 11111 00100 00100 00000",
    "/": "00000 00001 00010 00100 01000 10000 00000", "(": "00010 00100 01000 01000 01000 00100 00010",
    ")": "01000 00100 00010 00010 00010 00100 01000", "%": "11000 11001 00010 00100 01000 10011 00011",
    "=": "00000 00000 11111 00000 11111 00000 00000", "<": "00010 00100 01000 10000 01000 00100 00010",
    ">": "01000 00100 00010 00001 00010 00100 01000", "×": "00000 10001 01010 00100 01010 10001 00000",
    "≤": "00010 00100 01000 00100 00010 00000 11111", "_": "00000 00000 00000 00000 00000 00000 11111",
    "#": "01010 01010 11111 01010 11111 01010 01010", "?": "01110 10001 00001 00010 00100 00000 00100",
    "µ": "00000 10001 10001 10001 10011 11101 10000", "'": "00100 00100 00000 00000 00000 00000 00000",
}
_FONT = {ch: [int(row, 2) for row in rows.split()] for ch, rows in _GLYPHS.items()}


class Canvas:
    def __init__(self, width: int, height: int, background: Color = WHITE) -> None:
        self.width, self.height = width, height
        self.pixels = bytearray(bytes(background) * (width * height))

    def dot(self, x: int, y: int, color: Color) -> None:
        if 0 <= x < self.width and 0 <= y < self.height:
            i = (y * self.width + x) * 3
            self.pixels[i:i + 3] = bytes(color)

    def rect(self, x0: int, y0: int, x1: int, y1: int, color: Color) -> None:
        x0, x1 = sorted((max(0, x0), min(self.width - 1, x1)))
        y0, y1 = sorted((max(0, y0), min(self.height - 1, y1)))
        row = bytes(color) * (x1 - x0 + 1)
        for y in range(y0, y1 + 1):
            i = (y * self.width + x0) * 3
            self.pixels[i:i + len(row)] = row

    def line(self, x0: float, y0: float, x1: float, y1: float, color: Color, width: int = 1,
             dash: int | None = None) -> None:
        steps = int(max(abs(x1 - x0), abs(y1 - y0))) + 1
        half = width // 2
        for step in range(steps + 1):
            if dash and (step // dash) % 2:
                continue
            t = step / steps
            x, y = round(x0 + (x1 - x0) * t), round(y0 + (y1 - y0) * t)
            self.rect(x - half, y - half, x - half + width - 1, y - half + width - 1, color)

    def text(self, x: int, y: int, text: str, color: Color = BLACK, scale: int = 2, anchor: str = "left") -> int:
        """Draw text; anchor left/right/center on x. Returns the width in pixels."""
        text = "".join(ch if ch in _FONT else ch.upper() for ch in text)
        width = len(text) * 6 * scale - scale
        if anchor == "right":
            x -= width
        elif anchor == "center":
            x -= width // 2
        for n, ch in enumerate(text):
            rows = _FONT.get(ch, _FONT["?"])
            for r, bits in enumerate(rows):
                for c in range(5):
                    if bits & (1 << (4 - c)):
                        px, py = x + (n * 6 + c) * scale, y + r * scale
                        self.rect(px, py, px + scale - 1, py + scale - 1, color)
        return width

    def save(self, path: Path) -> None:
        raw = bytearray()
        stride = self.width * 3
        for y in range(self.height):
            raw.append(0)
            raw += self.pixels[y * stride:(y + 1) * stride]

        def chunk(kind: bytes, data: bytes) -> bytes:
            return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)
        Path(path).write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                               + chunk(b"IDAT", zlib.compress(bytes(raw), 9)) + chunk(b"IEND", b""))


def _nice_step(span: float, ticks: int = 6) -> float:
    raw = span / max(1, ticks)
    power = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
    for m in (1, 2, 2.5, 5, 10):
        if m * power >= raw:
            return m * power
    return 10 * power


def _fmt(value: float) -> str:
    return f"{value:.0f}" if abs(value - round(value)) < 1e-9 else f"{value:.1f}"


def line_chart(path: Path, title: str, x: Sequence[float], series: dict[str, Sequence[float]],
               xlabel: str = "", ylabel: str = "", hlines: dict[str, float] | None = None,
               ymin: float | None = 0.0, size: tuple[int, int] = (900, 540)) -> None:
    width, height = size
    c = Canvas(width, height)
    left, right, top, bottom = 90, 30, 60, 80
    hlines = hlines or {}
    values = [v for s in series.values() for v in s] + list(hlines.values())
    lo = min(values) if ymin is None else ymin
    hi = max(values)
    step = _nice_step(hi - lo or 1)
    lo = math.floor(lo / step) * step
    hi = math.ceil(hi * 1.05 / step) * step
    x_lo, x_hi = min(x), max(x)
    xstep = _nice_step(x_hi - x_lo or 1, 10)

    def px(v: float) -> float:
        return left + (v - x_lo) / ((x_hi - x_lo) or 1) * (width - left - right)

    def py(v: float) -> float:
        return height - bottom - (v - lo) / ((hi - lo) or 1) * (height - top - bottom)

    c.text(width // 2, 18, title, scale=2, anchor="center")
    y = lo
    while y <= hi + 1e-9:
        c.line(left, py(y), width - right, py(y), GREY)
        c.text(left - 8, int(py(y)) - 7, _fmt(y), DARK, anchor="right")
        y += step
    xv = math.ceil(x_lo / xstep) * xstep
    while xv <= x_hi + 1e-9:
        c.line(px(xv), height - bottom, px(xv), height - bottom + 5, DARK)
        c.text(int(px(xv)), height - bottom + 12, _fmt(xv), DARK, anchor="center")
        xv += xstep
    c.line(left, top, left, height - bottom, BLACK, 2)
    c.line(left, height - bottom, width - right, height - bottom, BLACK, 2)
    c.text(width // 2, height - 34, xlabel, anchor="center")
    c.text(10, top - 24, ylabel, anchor="left")
    for n, (label, value) in enumerate(hlines.items()):
        c.line(left, py(value), width - right, py(value), RED, 2, dash=8)
        c.text(width - right - 4, int(py(value)) - 18, label, RED, anchor="right")
    legend_x = left + 16
    for n, (label, ys) in enumerate(series.items()):
        color = PALETTE[n % len(PALETTE)]
        pts = list(zip(x, ys))
        for (xa, ya), (xb, yb) in zip(pts, pts[1:]):
            c.line(px(xa), py(ya), px(xb), py(yb), color, 3)
        for xa, ya in pts:
            c.rect(int(px(xa)) - 3, int(py(ya)) - 3, int(px(xa)) + 3, int(py(ya)) + 3, color)
        c.rect(legend_x, top + 10 + n * 22, legend_x + 24, top + 14 + n * 22, color)
        c.text(legend_x + 32, top + 6 + n * 22, label, BLACK)
    c.save(path)


def bar_chart(path: Path, title: str, labels: Sequence[str], series: dict[str, Sequence[float | None]],
              unit: str = "", marks: dict[int, float] | None = None, size: tuple[int, int] = (900, 0)) -> None:
    """Horizontal grouped bars: one group per label, one bar per series. marks: {group: target}."""
    groups = len(labels)
    per = len(series)
    bar_h, gap = 18, 16
    width = size[0]
    height = size[1] or 70 + groups * (per * bar_h + gap) + 30 + 22 * per
    c = Canvas(width, height)
    label_w = max(len(l) for l in labels) * 12 + 20
    left, right, top = label_w, 120, 50
    values = [v for s in series.values() for v in s if v is not None] + list((marks or {}).values())
    hi = max(values) * 1.05 if values else 1

    def px(v: float) -> float:
        return left + v / hi * (width - left - right)

    c.text(width // 2, 16, title, anchor="center")
    for g, label in enumerate(labels):
        y0 = top + g * (per * bar_h + gap)
        c.text(left - 10, y0 + (per * bar_h) // 2 - 7, label, BLACK, anchor="right")
        for s, (name, vals) in enumerate(series.items()):
            v = vals[g]
            if v is None:
                continue
            color = PALETTE[s % len(PALETTE)]
            c.rect(left, y0 + s * bar_h, int(px(v)), y0 + s * bar_h + bar_h - 3, color)
            c.text(int(px(v)) + 6, y0 + s * bar_h + 1, f"{v:.1f}{unit}", DARK)
        if marks and g in marks:
            x = px(marks[g])
            c.line(x, y0 - 3, x, y0 + per * bar_h, RED, 2)
    c.line(left, top - 6, left, top + groups * (per * bar_h + gap), BLACK, 2)
    ly = height - 16 - 22 * per
    for s, name in enumerate(series):
        color = PALETTE[s % len(PALETTE)]
        c.rect(left, ly + s * 22 + 3, left + 24, ly + s * 22 + 11, color)
        c.text(left + 32, ly + s * 22, name, BLACK)
    if marks:
        c.line(left + 300, ly + 7, left + 324, ly + 7, RED, 2)
        c.text(left + 332, ly, "TARGET", RED)
    c.save(path)
