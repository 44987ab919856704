"""The EPC QR code ("GiroCode", EPC069-12) drawn: SVG for pages and letters, PNG for e-mails
(mail clients block SVG and data: URIs, so an e-mail carries it as an inline image part).

The text comes from references.epc_qr_payload; EPC069-12 asks for error correction level M and
at most version 13, which a 331-byte payload always fits."""
from __future__ import annotations

import base64
import io

import segno


#: Any of the 8 masks makes a valid code every reader decodes; picking the best one draws and
#: scores all 8, ~7x the cost of drawing one (a QR code per e-mail of a dunning day). Mask 0
#: (the checkerboard) is read by zbarimg in tests/web/test_pay_by_transfer.py and friends.
MASK = 0


def _qr(payload: str) -> segno.QRCode:
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
    """PNG bytes, for an e-mail's inline image part (Content-ID)."""
    out = io.BytesIO()
    _qr(payload).save(out, kind="png", scale=scale)
    return out.getvalue()
