"""The vendored htmx is the published file, and pages load it from us, not from a CDN."""
import hashlib
import re
from pathlib import Path

STATIC = Path(__file__).resolve().parents[2] / "portal" / "static"


def test_vendored_htmx_matches_recorded_sha256():
    readme = (STATIC / "vendor" / "README.md").read_text()
    name, digest = re.search(r"\| (htmx-2\.0\.\d+\.min\.js) \| htmx\.org \| 2\.0\.\d+ \| ([0-9a-f]{64}) \|", readme).groups()
    assert hashlib.sha256((STATIC / "vendor" / name).read_bytes()).hexdigest() == digest


def test_pages_load_htmx_locally(client):
    html = client.get("/app/login").data.decode()
    scripts = re.findall(r'<script[^>]*src="([^"]+)"', html)
    assert scripts and all(src.startswith("/static/") for src in scripts)
    assert client.get(scripts[0]).status_code == 200
