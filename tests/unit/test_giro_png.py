"""The e-mail's EPC QR code: the PNG written from the matrix has segno's pixels, and a reader
decodes the payload from it (with the fixed mask)."""
from __future__ import annotations

import io
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


@pytest.mark.parametrize("payload", PAYLOADS)
def test_png_has_segnos_pixels(payload):
    out = io.BytesIO()
    giro._qr(payload).save(out, kind="png", scale=4)
    assert pixels(giro.qr_png(payload)) == pixels(out.getvalue())


@pytest.mark.skipif(shutil.which("zbarimg") is None, reason="zbarimg (zbar-tools) not installed")
@pytest.mark.parametrize("payload", PAYLOADS)
def test_png_reads_back(payload, tmp_path):
    path = tmp_path / "qr.png"
    path.write_bytes(giro.qr_png(payload))
    read = subprocess.run(["zbarimg", "-q", "--raw", "-Sbinary", str(path)], capture_output=True, check=True).stdout
    assert read.decode("utf-8").rstrip("\n") == payload.rstrip("\n")
