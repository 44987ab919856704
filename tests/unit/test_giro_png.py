"""The EPC QR code: the PNG and the SVG written from zxing-cpp's module matrix draw exactly its
modules with the quiet zone, the symbol is level M within version 13 (EPC069-12), and a reader
decodes the payload, UTF-8 included, from the PNG."""
from __future__ import annotations

import io
import re
import shutil
import subprocess

import pytest
from PIL import Image

from portal.domain import giro
from portal.domain.references import debtor_reference, epc_qr_payload, invoice_reference

PAYLOADS = [epc_qr_payload(name, "FR7630006000011234567890189", bic, amount, "EUR", ref)
            for name, bic, amount, ref in [
                ("Atelier Test", "BNPAFRPP", 9990, invoice_reference(7)),
                ("Société Générale des Eaux de la Vallée du Rhône et de ses Affluents", None, 123456789,
                 debtor_reference(123456)),
                ("Créancier SARL", "AGRIFRPP882", 1, debtor_reference(1))]]


def pixels(png: bytes) -> tuple:
    image = Image.open(io.BytesIO(png)).convert("L")
    return image.size, bytes(image.tobytes())


def modules_with_quiet_zone(payload):
    rows = giro.matrix(payload)
    q = giro.QUIET_ZONE
    side = len(rows) + 2 * q
    return [[0] * side] * q + [[0] * q + list(row) + [0] * q for row in rows] + [[0] * side] * q


@pytest.mark.parametrize("payload", PAYLOADS)
def test_symbol_is_level_m_within_version_13(payload):
    import zxingcpp

    symbol = zxingcpp.create_barcode(payload.encode(), zxingcpp.BarcodeFormat.QRCode, ec_level="M")
    size = len(giro.matrix(payload))
    assert symbol.ec_level == "M" and (size - 17) % 4 == 0 and (size - 17) // 4 <= 13
    assert symbol.symbology_identifier == "]Q1"  # no ECI: the bytes are the payload's UTF-8


@pytest.mark.parametrize("payload", PAYLOADS)
def test_png_draws_the_modules(payload):
    expected = modules_with_quiet_zone(payload)
    (width, height), grey = pixels(giro.qr_png(payload, scale=4))
    assert width == height == 4 * len(expected)
    drawn = [[int(grey[(4 * y + 1) * width + 4 * x + 2] == 0) for x in range(len(expected))]
             for y in range(len(expected))]
    assert drawn == expected
    # each module is a full 4x4 square
    assert all(grey[(4 * y + dy) * width + 4 * x + dx] == (0 if expected[y][x] else 255)
               for y in range(len(expected)) for x in range(len(expected)) for dy in range(4) for dx in range(4))


@pytest.mark.parametrize("payload", PAYLOADS)
def test_svg_draws_the_modules(payload):
    expected = modules_with_quiet_zone(payload)
    svg = giro.qr_svg(payload, scale=3)
    assert svg.startswith("<svg") and "<title>EPC QR code</title>" in svg and f'width="{3 * len(expected)}"' in svg
    drawn = [[0] * len(expected) for _ in expected]
    for x, y, w in re.findall(r"M(\d+) (\d+)h(\d+)v1h-\d+z", svg):
        for i in range(int(w)):
            drawn[int(y)][int(x) + i] = 1
    assert drawn == expected


@pytest.mark.skipif(shutil.which("zbarimg") is None, reason="zbarimg (zbar-tools) not installed")
@pytest.mark.parametrize("payload", PAYLOADS)
def test_png_reads_back(payload, tmp_path):
    path = tmp_path / "qr.png"
    path.write_bytes(giro.qr_png(payload))
    read = subprocess.run(["zbarimg", "-q", "--raw", "-Sbinary", str(path)], capture_output=True, check=True).stdout
    assert read.decode("utf-8").rstrip("\n") == payload.rstrip("\n")
