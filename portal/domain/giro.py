"""The EPC QR code ("GiroCode", EPC069-12) drawn: SVG for pages and letters, PNG for e-mails
(mail clients block SVG and data: URIs, so an e-mail carries it as an inline image part).

The text comes from references.epc_qr_payload; EPC069-12 asks for error correction level M and
at most version 13, which a 331-byte payload always fits."""
from __future__ import annotations

import base64
import io
import struct
import zlib



#: Any of the 8 masks makes a valid code every reader decodes; picking the best one draws and
#: scores all 8, ~7x the cost of drawing one (a QR code per e-mail of a dunning day). Mask 0
#: (the checkerboard) is read by zbarimg in tests/web/test_pay_by_transfer.py and friends.
MASK = 0


def _qr(payload: str):
    import segno  # here: only a process that draws a QR code loads it

    return segno.make_qr(payload, error="m", boost_error=False, encoding="utf-8", mask=MASK)


def qr_svg(payload: str, scale: int = 3) -> str:
    """Inline SVG markup (no XML declaration), black on white, with the quiet zone."""
    out = io.BytesIO()
    _qr(payload).save(out, kind="svg", scale=scale, xmldecl=False, svgns=True, nl=False,
                      title="EPC QR code", unit=None)
    return out.getvalue().decode("utf-8")


def qr_svg_data_uri(payload: str, scale: int = 3) -> str:
    """A data: URI of the SVG, for an <img> in a PDF letter (WeasyPrint reads it)."""
    return "data:image/svg+xml;base64," + base64.b64encode(qr_svg(payload, scale).encode()).decode()


def qr_png(payload: str, scale: int = 4) -> bytes:
    """PNG bytes, for an e-mail's inline image part (Content-ID): 1-bit greyscale, black on
    white, the quiet zone of 4 modules. Written here from the matrix: segno's PNG writer took
    longer than drawing the code (the same pixels, checked in tests/unit/test_giro_png.py)."""
    qr = _qr(payload)
    light = b"\x01" * QUIET_ZONE
    rows = [light + bytes(row).translate(_LIGHT) + light for row in qr.matrix]
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


#: a matrix row (1 = dark module) as PNG greys (1 = white)
_LIGHT = bytes.maketrans(b"\x00\x01", b"\x01\x00")
#: light modules around the code, as ISO/IEC 18004 asks (segno's default too)
QUIET_ZONE = 4


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
