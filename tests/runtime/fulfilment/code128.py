"""A small, independent Code 128 reader for tests: PDF page -> bar rectangles -> text.

It shares nothing with reportlab: the symbol table below is typed from the Code 128
specification (ISO/IEC 15417, table 1: bar/space widths in modules, value 0..105, then
STOP), the bars are read back from the PDF content stream with pypdf, and the checksum
is verified. A label whose barcode does not encode the tracking id fails here.
"""

from __future__ import annotations

from dataclasses import dataclass

from pypdf import PageObject, PdfReader
from pypdf.generic import ContentStream

# Value -> widths "bar space bar space bar space" in modules (ISO/IEC 15417 table 1).
PATTERNS = (  # noqa: SIM905 - one row per ten values reads like the spec table
    "212222 222122 222221 121223 121322 131222 122213 122312 132212 221213 "
    "221312 231212 112232 122132 122231 113222 123122 123221 223211 221132 "
    "221231 213212 223112 312131 311222 321122 321221 312212 322112 322211 "
    "212123 212321 232121 111323 131123 131321 112313 132113 132311 211313 "
    "231113 231311 112133 112331 132131 113123 113321 133121 313121 211331 "
    "231131 213113 213311 213131 311123 311321 331121 312113 312311 332111 "
    "314111 221411 431111 111224 111422 121124 121421 141122 141221 112214 "
    "112412 122114 122411 142112 142211 241211 221114 413111 241112 134111 "
    "111242 121142 121241 114212 124112 124211 411212 421112 421211 212141 "
    "214121 412121 111143 111341 131141 114113 114311 411113 411311 113141 "
    "114131 311141 411131 211412 211214 211232"
).split()
STOP = "2331112"
START_A, START_B, START_C = 103, 104, 105
CODE_C, CODE_B, CODE_A, SHIFT, FNC1 = 99, 100, 101, 98, 102

_BY_PATTERN = {p: v for v, p in enumerate(PATTERNS)}


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    w: float
    h: float


def _mul(a: list[float], b: list[float]) -> list[float]:
    """Compose PDF matrices [a b c d e f]: a then b."""
    a0, a1, a2, a3, a4, a5 = a
    b0, b1, b2, b3, b4, b5 = b
    return [
        a0 * b0 + a1 * b2,
        a0 * b1 + a1 * b3,
        a2 * b0 + a3 * b2,
        a2 * b1 + a3 * b3,
        a4 * b0 + a5 * b2 + b4,
        a4 * b1 + a5 * b3 + b5,
    ]


def filled_rects(reader: PdfReader, page: PageObject) -> list[Rect]:
    """Every rectangle painted with a fill operator, in page coordinates (axis-aligned CTMs)."""
    ops = ContentStream(page.get_contents(), reader).operations
    ctm = [1.0, 0.0, 0.0, 1.0, 0.0, 0.0]
    stack: list[list[float]] = []
    pending: list[Rect] = []
    out: list[Rect] = []
    for operands, op in ops:
        if op == b"q":
            stack.append(ctm)
        elif op == b"Q":
            ctm = stack.pop()
        elif op == b"cm":
            ctm = _mul([float(v) for v in operands], ctm)
        elif op == b"re":
            x, y, w, h = (float(v) for v in operands)
            assert ctm[1] == 0, "rotated barcode not supported by this reader"
            assert ctm[2] == 0, "rotated barcode not supported by this reader"
            x0, y0 = ctm[0] * x + ctm[4], ctm[3] * y + ctm[5]
            pending.append(Rect(x0, y0, ctm[0] * w, ctm[3] * h))
        elif op in (b"f", b"F", b"f*", b"B", b"B*", b"b", b"b*"):
            out.extend(pending)
            pending = []
        elif op in (b"n", b"S", b"s"):
            pending = []
    return out


def bars_of_largest_row(rects: list[Rect]) -> list[Rect]:
    """The barcode: the biggest set of filled rectangles sharing one baseline and height."""
    rows: dict[tuple[float, float], list[Rect]] = {}
    for r in rects:
        rows.setdefault((round(r.y, 2), round(r.h, 2)), []).append(r)
    best = max(rows.values(), key=len)
    return sorted(best, key=lambda r: r.x)


def module_widths(bars: list[Rect]) -> str:
    """Bars and gaps as module counts, e.g. '211214...'; checks the widths are near-integer."""
    assert len(bars) >= 10, f"{len(bars)} bars is not Code 128"
    assert (len(bars) - 4) % 3 == 0, f"{len(bars)} bars is not Code 128"
    symbols = (len(bars) - 4) // 3 + 1  # data symbols incl. start and check, plus STOP
    total = bars[-1].x + bars[-1].w - bars[0].x
    module = total / (symbols * 11 + 2)
    widths: list[float] = []
    for i, bar in enumerate(bars):
        widths.append(bar.w)
        if i + 1 < len(bars):
            widths.append(bars[i + 1].x - (bar.x + bar.w))
    digits = []
    for w in widths:
        n = w / module
        assert abs(n - round(n)) < 0.2, f"element of {n:.2f} modules is not a whole module"
        assert 1 <= round(n) <= 4, f"element of {n:.2f} modules is out of range"
        digits.append(str(round(n)))
    return "".join(digits)


def decode_modules(modules: str) -> str:
    """Module string -> the encoded text; raises AssertionError on a bad symbol or checksum."""
    assert modules.endswith(STOP), "no STOP pattern at the end"
    body = modules[: -len(STOP)]
    assert len(body) % 6 == 0
    values = [_BY_PATTERN[body[i : i + 6]] for i in range(0, len(body), 6)]
    start, *data, check = values
    assert start in (START_A, START_B, START_C), f"bad start symbol {start}"
    expected = (start + sum(i * v for i, v in enumerate(data, 1))) % 103
    assert check == expected, f"checksum {check} != {expected}"

    codeset = {START_A: "A", START_B: "B", START_C: "C"}[start]
    text: list[str] = []
    shift = False
    for v in data:
        current = ("B" if codeset == "A" else "A") if shift else codeset
        shift = False
        if current == "C":
            if v < 100:
                text.append(f"{v:02d}")
            elif v == CODE_B:
                codeset = "B"
            elif v == CODE_A:
                codeset = "A"
            elif v != FNC1:
                raise AssertionError(f"unexpected value {v} in code set C")
            continue
        if v < 96:
            if current == "B":
                text.append(chr(v + 32))
            else:
                text.append(chr(v + 32) if v < 64 else chr(v - 64))
        elif v == SHIFT:
            shift = True
        elif v == CODE_C:
            codeset = "C"
        elif (current, v) in (("A", CODE_B), ("B", CODE_A)):
            codeset = "B" if current == "A" else "A"
        # 96, 97, 102 and FNC4 carry no text
    return "".join(text)


def read_code128(path: str) -> str:
    """The text of the Code 128 barcode drawn on the first page of the PDF at ``path``."""
    reader = PdfReader(path)
    bars = bars_of_largest_row(filled_rects(reader, reader.pages[0]))
    return decode_modules(module_widths(bars))
