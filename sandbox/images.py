"""Small real PNG images for the sandbox's ``/api/images/products/<p>/<i>`` (made in-process).

Each image id gets a solid 32x32 colour derived from the id, encoded as a valid PNG
(signature, IHDR, IDAT, IEND with CRCs), so clients can check the bytes decode.
"""

from __future__ import annotations

import struct
import zlib
from functools import lru_cache

SIZES = ("cart_default", "small_default", "medium_default", "home_default", "large_default")


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


@lru_cache(maxsize=1024)
def png_bytes(image_id: int, size: int = 32) -> bytes:
    """A ``size`` x ``size`` RGB PNG whose colour depends on ``image_id``."""
    r, g, b = (image_id * 67) % 256, (image_id * 131) % 256, (image_id * 197) % 256
    row = b"\x00" + bytes((r, g, b)) * size
    raw = row * size
    ihdr = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", zlib.compress(raw))
        + _chunk(b"IEND", b"")
    )
