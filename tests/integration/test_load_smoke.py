"""The load benchmark's own user code (benchmarks/load.py: debtors opening their link, browsing
home, statement and PDF, paying by card through the fake Stripe) for a few seconds with a few
users, against gunicorn on PostgreSQL (a throw-away database on the test server). It runs as a
subprocess: locust monkey-patches with gevent, which must not touch pytest's process.
Asserted: zero failed requests and every card payment applied exactly once. Never time."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[2]
PG_URL = os.environ.get("TEST_DATABASE_URL")


@pytest.mark.skipif(not PG_URL, reason="the load smoke test serves gunicorn on PostgreSQL: needs TEST_DATABASE_URL")
def test_load_smoke_zero_errors_and_payments_applied_once(tmp_path):
    admin = make_url(PG_URL).set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "load.py"), "--users", "8", "--seconds", "8",
                           "--spawn-rate", "8", "--invoices", "3", "--workers", "1", "--threads", "4",
                           "--pg-url", admin], cwd=ROOT, capture_output=True, text=True, timeout=240)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert lines, f"no figures\nstdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}"
    figures = json.loads(lines[-1])
    assert figures["errors"] == [], figures["errors"]
    assert figures["total"]["failures"] == 0 and figures["total"]["requests"] > 0
    check = figures["exactly_once"]
    assert check["ok"], check
    counts = check["counts"]
    assert counts["checkouts_paid"] > 0  # the users really paid
    assert counts["payments"] == counts["distinct_payment_refs"] == counts["checkouts_paid"] == counts["paid_invoices"]
    assert figures["ok"] and proc.returncode == 0, figures["failures"]
