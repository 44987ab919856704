"""The EPC QR code ("GiroCode", EPC069-12) drawn: SVG for pages and letters, PNG for e-mails
(mail clients block SVG and data: URIs, so an e-mail carries it as an inline image part).

The text comes from references.epc_qr_payload; EPC069-12 asks for error correction level M and
at most version 13, which a 331-byte payload always fits. The symbol is made by zxing-cpp (C++,
~0.25 ms; segno, pure Python, took ~0.9 ms with a fixed mask: a QR code per e-mail is a quarter
of a dunning day's composing); both writers below draw its module matrix."""
from __future__ import annotations

import base64
import struct
import zlib

#: light modules around the code, as ISO/IEC 18004 asks
QUIET_ZONE = 4


def matrix(payload: str) -> list[bytes]:
    """The symbol's rows, one byte per module, 1 = dark, without the quiet zone.

    The payload goes in as UTF-8 bytes (byte mode, no ECI), as EPC069-12's character set 1 asks:
    given a str, zxing-cpp would write Latin-1 ("è" as one byte) and French names would break."""
    import zxingcpp  # here: only a process that draws a QR code loads it

    symbol = zxingcpp.create_barcode(payload.encode("utf-8"), zxingcpp.BarcodeFormat.QRCode, ec_level="M")
    image = memoryview(symbol.to_image(scale=1, add_quiet_zones=False))  # 0 dark, 255 light
    size = image.shape[1]
    raw = image.tobytes().translate(_DARK)
    return [raw[i:i + size] for i in range(0, len(raw), size)]


def qr_svg(payload: str, scale: int = 3) -> str:
    """Inline SVG markup (no XML declaration), black on white, with the quiet zone: one path of
    the dark runs of each row."""
    rows = matrix(payload)
    size = (len(rows) + 2 * QUIET_ZONE) * scale
    runs = []
    for y, row in enumerate(rows):
        x = 0
        while x < len(row):
            if row[x]:
                start = x
                while x < len(row) and row[x]:
                    x += 1
                runs.append(f"M{start + QUIET_ZONE} {y + QUIET_ZONE}h{x - start}v1h-{x - start}z")
            else:
                x += 1
    side = len(rows) + 2 * QUIET_ZONE
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" viewBox="0 0 {side} {side}" '
            f'shape-rendering="crispEdges"><title>EPC QR code</title><rect width="{side}" height="{side}" fill="#fff"/>'
            f'<path fill="#000" d="{"".join(runs)}"/></svg>')


def qr_svg_data_uri(payload: str, scale: int = 3) -> str:
    """A data: URI of the SVG, for an <img> in a PDF letter (WeasyPrint reads it)."""
    return "data:image/svg+xml;base64," + base64.b64encode(qr_svg(payload, scale).encode()).decode()


def qr_png(payload: str, scale: int = 4) -> bytes:
    """PNG bytes, for an e-mail's inline image part (Content-ID): 1-bit greyscale, black on
    white, the quiet zone included."""
    light = b"\x01" * QUIET_ZONE
    rows = [light + row.translate(_LIGHT) + light for row in matrix(payload)]
    width = len(rows[0])
    blank = b"\x01" * width
    rows = [blank] * QUIET_ZONE + rows + [blank] * QUIET_ZONE
    raw = bytearray()
    for row in rows:
        bits = "".join(("1" if module else "0") * scale for module in row)
        bits += "1" * (-len(bits) % 8)
        line = b"\x00" + int(bits, 2).to_bytes(len(bits) // 8, "big")  # filter type 0, then the pixels
        raw += line * scale
    size = width * scale
    return b"".join((b"\x89PNG\r\n\x1a\n", _chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 1, 0, 0, 0, 0)),
                     _chunk(b"IDAT", zlib.compress(bytes(raw), 9)), _chunk(b"IEND", b"")))


#: zxing-cpp's pixels (0 dark, 255 light) as modules (1 dark)
_DARK = bytes.maketrans(b"\x00\xff", b"\x01\x00")
#: modules (1 dark) as PNG greys (1 white)
_LIGHT = bytes.maketrans(b"\x00\x01", b"\x01\x00")


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
