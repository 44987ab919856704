"""Reading EPC QR codes ("GiroCode") back as a bank app would: from pixels, with Debian's zbarimg
(zbar-tools), never from the text we encoded. A PDF is rasterised first with pdftoppm (poppler),
an SVG data: URI drawn into a PDF by WeasyPrint first. Imported by name (`from qr_codes import …`).
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest

TOOLS = ("zbarimg", "pdftoppm")
needs_tools = pytest.mark.skipif(any(shutil.which(t) is None for t in TOOLS),
                                 reason="reading QR codes back needs zbarimg (zbar-tools) and pdftoppm "
                                        "(poppler-utils); .ci/run installs them")


@dataclass(frozen=True)
class Epc:
    """An EPC069-12 payload, element by element."""
    bic: str
    name: str
    iban: str
    currency: str
    amount: Decimal
    reference: str
    raw: str


def parse_epc(text: str) -> Epc:
    lines = text.split("\n")
    assert lines[:4] == ["BCD", "002", "1", "SCT"], text
    assert len(lines) == 10 and lines[8] == "", text  # no purpose; the text ends with the reference
    return Epc(lines[4], lines[5], lines[6], lines[7][:3], Decimal(lines[7][3:]), lines[9], text)


def read_png(path: Path) -> Epc:
    """The one QR code in an image."""
    out = subprocess.run(["zbarimg", "--raw", "-q", "-Sdisable", "-Sqrcode.enable", str(path)],
                         capture_output=True, timeout=60)
    assert out.returncode == 0, f"zbarimg found no QR code in {path} ({out.returncode}): {out.stderr[-300:]!r}"
    text = out.stdout.decode("utf-8")
    assert text.count("BCD\n") == 1, f"expected one EPC code, got {text!r}"
    return parse_epc(text.removesuffix("\n"))


def read_pdf(pdf: bytes, keep: Path | None = None) -> list[Epc]:
    """Every page at 150 dpi, each page's code (pages without one are skipped). `keep`: a
    directory to leave the page images in, to look at."""
    with tempfile.TemporaryDirectory() as tmp:
        where = Path(keep or tmp)
        where.mkdir(parents=True, exist_ok=True)
        (where / "doc.pdf").write_bytes(pdf)
        subprocess.run(["pdftoppm", "-png", "-r", "150", str(where / "doc.pdf"), str(where / "page")],
                       check=True, timeout=120)
        found = []
        for page in sorted(where.glob("page*.png")):
            probe = subprocess.run(["zbarimg", "-q", "-Sdisable", "-Sqrcode.enable", str(page)],
                                   capture_output=True, timeout=60)
            if probe.returncode == 0:
                found.append(read_png(page))
        return found


def read_data_uri(uri: str) -> Epc:
    """The code of an <img src="data:image/svg+xml;base64,…">, drawn 50 mm wide on a page."""
    from weasyprint import HTML
    assert uri.startswith("data:image/svg+xml;base64,"), uri[:60]
    codes = read_pdf(HTML(string=f'<img src="{uri}" style="width: 50mm">').write_pdf())
    assert len(codes) == 1, codes
    return codes[0]
