#!/usr/bin/env python3
"""Runs `salur bench` at several chunk sizes and plots end-to-end records/s against chunk size.

    scripts/plot_chunk_sizes.py [--recipients N] [--sizes 1,10,50,100,250,500] [--out docs/chunk_size.png]

Needs the local services (scripts/services.sh) and a release build (cargo build --release).
Each size is one `salur bench --skip-baselines --skip-shared-ledger --json` run; the figures go to
docs/chunk_size.json and the plot to docs/chunk_size.png. The PNG is drawn with the standard
library only (zlib), so the script needs nothing installed. `--from-json FILE` re-plots saved
figures without running anything.
"""

import argparse
import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# 5x7 bitmap font: digits, a few letters and signs, enough for axis labels and a title.
FONT = {
    "0": ["01110", "10001", "10011", "10101", "11001", "10001", "01110"],
    "1": ["00100", "01100", "00100", "00100", "00100", "00100", "01110"],
    "2": ["01110", "10001", "00001", "00010", "00100", "01000", "11111"],
    "3": ["11110", "00001", "00001", "01110", "00001", "00001", "11110"],
    "4": ["00010", "00110", "01010", "10010", "11111", "00010", "00010"],
    "5": ["11111", "10000", "11110", "00001", "00001", "10001", "01110"],
    "6": ["00110", "01000", "10000", "11110", "10001", "10001", "01110"],
    "7": ["11111", "00001", "00010", "00100", "01000", "01000", "01000"],
    "8": ["01110", "10001", "10001", "01110", "10001", "10001", "01110"],
    "9": ["01110", "10001", "10001", "01111", "00001", "00010", "01100"],
    " ": ["00000"] * 7,
    "/": ["00001", "00010", "00010", "00100", "01000", "01000", "10000"],
    "(": ["00010", "00100", "01000", "01000", "01000", "00100", "00010"],
    ")": ["01000", "00100", "00010", "00010", "00010", "00100", "01000"],
    ",": ["00000", "00000", "00000", "00000", "00110", "00100", "01000"],
    ".": ["00000", "00000", "00000", "00000", "00000", "01100", "01100"],
    "-": ["00000", "00000", "00000", "11111", "00000", "00000", "00000"],
    "=": ["00000", "00000", "11111", "00000", "11111", "00000", "00000"],
    ":": ["00000", "01100", "01100", "00000", "01100", "01100", "00000"],
    "g": ["00000", "00000", "01111", "10001", "01111", "00001", "01110"],
    "m": ["00000", "00000", "11010", "10101", "10101", "10001", "10001"],
    "y": ["00000", "00000", "10001", "10001", "01111", "00001", "01110"],
    "a": ["00000", "00000", "01110", "00001", "01111", "10001", "01111"],
    "b": ["10000", "10000", "10110", "11001", "10001", "10001", "11110"],
    "c": ["00000", "00000", "01110", "10000", "10000", "10001", "01110"],
    "d": ["00001", "00001", "01101", "10011", "10001", "10001", "01111"],
    "e": ["00000", "00000", "01110", "10001", "11111", "10000", "01110"],
    "h": ["10000", "10000", "10110", "11001", "10001", "10001", "10001"],
    "i": ["00100", "00000", "01100", "00100", "00100", "00100", "01110"],
    "k": ["10000", "10000", "10010", "10100", "11000", "10100", "10010"],
    "l": ["01100", "00100", "00100", "00100", "00100", "00100", "01110"],
    "n": ["00000", "00000", "10110", "11001", "10001", "10001", "10001"],
    "o": ["00000", "00000", "01110", "10001", "10001", "10001", "01110"],
    "p": ["00000", "00000", "11110", "10001", "11110", "10000", "10000"],
    "r": ["00000", "00000", "10110", "11001", "10000", "10000", "10000"],
    "s": ["00000", "00000", "01111", "10000", "01110", "00001", "11110"],
    "t": ["01000", "01000", "11100", "01000", "01000", "01001", "00110"],
    "u": ["00000", "00000", "10001", "10001", "10001", "10011", "01101"],
    "z": ["00000", "00000", "11111", "00010", "00100", "01000", "11111"],
}


class Canvas:
    def __init__(self, width, height):
        self.w, self.h = width, height
        self.px = bytearray(b"\xff" * (width * height * 3))

    def dot(self, x, y, color):
        if 0 <= x < self.w and 0 <= y < self.h:
            i = (y * self.w + x) * 3
            self.px[i : i + 3] = bytes(color)

    def rect(self, x0, y0, x1, y1, color):
        for y in range(min(y0, y1), max(y0, y1) + 1):
            for x in range(min(x0, x1), max(x0, x1) + 1):
                self.dot(x, y, color)

    def line(self, x0, y0, x1, y1, color, width=1):
        steps = max(abs(x1 - x0), abs(y1 - y0), 1)
        for s in range(steps + 1):
            x = round(x0 + (x1 - x0) * s / steps)
            y = round(y0 + (y1 - y0) * s / steps)
            self.rect(x - width // 2, y - width // 2, x + width // 2, y + width // 2, color)

    def text(self, x, y, s, color=(0, 0, 0), scale=2, anchor="left"):
        width = len(s) * 6 * scale
        if anchor == "center":
            x -= width // 2
        elif anchor == "right":
            x -= width
        for ch in s:
            glyph = FONT.get(ch, FONT[" "])
            for gy, row in enumerate(glyph):
                for gx, bit in enumerate(row):
                    if bit == "1":
                        self.rect(x + gx * scale, y + gy * scale,
                                  x + gx * scale + scale - 1, y + gy * scale + scale - 1, color)
            x += 6 * scale

    def png(self):
        raw = b"".join(b"\x00" + bytes(self.px[y * self.w * 3 : (y + 1) * self.w * 3])
                       for y in range(self.h))

        def chunk(kind, data):
            body = kind + data
            return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

        return (b"\x89PNG\r\n\x1a\n"
                + chunk(b"IHDR", struct.pack(">IIBBBBB", self.w, self.h, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw, 9))
                + chunk(b"IEND", b""))


def nice_step(top):
    for step in (500, 1000, 2000, 2500, 5000, 10000, 20000, 25000, 50000):
        if top / step <= 8:
            return step
    return 100000


def plot(points, recipients, out):
    """points: [(chunk_size, records_per_second)], drawn on a log2 x axis."""
    import math

    c = Canvas(900, 560)
    left, right, top, bottom = 110, 860, 70, 480
    ymax = max(r for _, r in points) * 1.15
    step = nice_step(ymax)
    ymax = math.ceil(ymax / step) * step
    xs = [math.log2(s) for s, _ in points]
    xmin, xmax = min(xs) - 0.3, max(xs) + 0.3

    def X(size):
        return round(left + (math.log2(size) - xmin) / (xmax - xmin) * (right - left))

    def Y(value):
        return round(bottom - value / ymax * (bottom - top))

    grid, axis, blue = (225, 225, 225), (40, 40, 40), (31, 99, 180)
    for v in range(0, int(ymax) + 1, step):
        c.line(left, Y(v), right, Y(v), grid)
        c.text(left - 10, Y(v) - 7, f"{v:,}", axis, anchor="right")
    for size, _ in points:
        c.line(X(size), top, X(size), bottom, grid)
        c.text(X(size), bottom + 12, str(size), axis, anchor="center")
    c.line(left, bottom, right, bottom, axis, 2)
    c.line(left, top, left, bottom, axis, 2)
    ordered = sorted(points)
    for (s0, r0), (s1, r1) in zip(ordered, ordered[1:]):
        c.line(X(s0), Y(r0), X(s1), Y(r1), blue, 3)
    for s, r in ordered:
        c.rect(X(s) - 5, Y(r) - 5, X(s) + 5, Y(r) + 5, blue)
        c.text(X(s), Y(r) - 26, f"{r:,.0f}", blue, anchor="center")
    c.text(450, 20, f"salur bench: records/s end to end by chunk size ({recipients:,} recipients)",
           axis, anchor="center")
    c.text(450, 520, "chunk size (record ids per stage message)", axis, anchor="center")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(c.png())


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--recipients", type=int, default=50_000)
    p.add_argument("--sizes", default="1,10,50,100,250,500")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "chunk_size.png")
    p.add_argument("--binary", type=Path, default=ROOT / "target" / "release" / "salur")
    p.add_argument("--from-json", type=Path, help="plot saved figures instead of running")
    args = p.parse_args()

    if args.from_json:
        saved = json.loads(args.from_json.read_text())
        plot([(r["chunk_size"], r["records_per_second"]) for r in saved["runs"]],
             saved["recipients"], args.out)
        print(f"wrote {args.out}")
        return

    runs = []
    for size in (int(s) for s in args.sizes.split(",")):
        # Chunk size 1 is slow (one transaction per record per stage): fewer records.
        n = args.recipients if size >= 10 else max(1000, args.recipients // 20)
        cmd = [str(args.binary), "bench", "--recipients", str(n), "--chunk-size", str(size),
               "--skip-baselines", "--skip-shared-ledger", "--json"]
        print("running:", " ".join(cmd), file=sys.stderr)
        done = subprocess.run(cmd, stdout=subprocess.PIPE, check=True, text=True)
        report = json.loads(done.stdout)
        rate = report["salur"]["end_to_end_records_per_second"]
        print(f"chunk {size}: {rate:,.0f} records/s", file=sys.stderr)
        runs.append({"chunk_size": size, "recipients": n, "records_per_second": rate,
                     "intake_records_per_second": report["salur"]["intake_records_per_second"]})
    figures = {"recipients": args.recipients, "machine": report["machine"], "runs": runs}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(figures, indent=2) + "\n")
    plot([(r["chunk_size"], r["records_per_second"]) for r in runs], args.recipients, args.out)
    print(f"wrote {args.out} and {args.out.with_suffix('.json')}")


if __name__ == "__main__":
    main()
