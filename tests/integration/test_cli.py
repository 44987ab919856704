"""The command line (CONTRACT §3), run for real: `flask --app app …` in a subprocess on the test database."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.domain.charges import late_charges
from portal.models import Creditor, CreditorUser, Debtor, Invoice, Payment, ReferenceRate
from portal.services import demo
from portal.services.demand import reference_rates
from support import Api, CreditorInfo

ROOT = Path(__file__).resolve().parents[2]
FLASK = str(Path(sys.executable).with_name("flask"))
HEADER = "debtor_ref,debtor_name,debtor_email,invoice_number,issue_date,due_date,amount,currency\n"


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(app, database_url):
    """Run `flask --app app ARGS` against this test's database (already migrated by `app`)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "SECRET_KEY", "PORTAL_BASE_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND",
                        "SMTP_URL", "MAIL_FROM", "STRIPE_SECRET_KEY", "GOCARDLESS_ACCESS_TOKEN",
                        "RATELIMIT_STORAGE_URI", "FLASK_APP", "FLASK_DEBUG")}
    env.update({"DATABASE_URL": database_url, "SECRET_KEY": app.config["SECRET_KEY"],
                "PORTAL_BASE_URL": app.config["PORTAL_BASE_URL"], "RATELIMIT_ENABLED": "0"})

    def run(*args) -> Result:
        db.session.remove()  # let the subprocess see and write everything (SQLite locks, PostgreSQL row locks)
        p = subprocess.run([FLASK, "--app", "app", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=120)
        db.session.remove()  # and read what it wrote afresh
        return Result(p.returncode, p.stdout, p.stderr)

    return run


def count(model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


# --- creditor create ----------------------------------------------------------------------------------

def test_creditor_create_prints_one_json_object_whose_key_works(cli, client):
    r = cli("creditor", "create", "--name", "Atelier Nord", "--email", "Owner@Nord.example",
            "--password", "s3cret-enough", "--currency", "USD", "--timezone", "America/New_York",
            "--language", "en")
    assert r.code == 0, r.err
    lines = r.out.strip().splitlines()
    assert len(lines) == 1
    out = json.loads(lines[0])
    assert set(out) == {"creditor_id", "api_key"}
    assert isinstance(out["creditor_id"], int) and out["api_key"].startswith("rl_live_")
    c = db.session.get(Creditor, out["creditor_id"])
    assert (c.name, c.currency, c.timezone, c.language) == ("Atelier Nord", "USD", "America/New_York", "en")
    assert db.session.scalar(select(CreditorUser.email).where(CreditorUser.creditor_id == c.id)) == \
        "owner@nord.example"

    api = Api(client, CreditorInfo(out["creditor_id"], "owner@nord.example", "s3cret-enough", out["api_key"]))
    assert api.put("/debtors/X1", json={"name": "First customer"}).status_code == 201
    assert api.get("/debtors/X1").json["language"] == "en"
    assert api.get("/reports/summary").json["currency"] == "USD"
    assert [e["type"] for e in api.get("/events").json["events"]][0] == "creditor.created"


def test_creditor_create_defaults(cli):
    r = cli("creditor", "create", "--name", "Défaut", "--email", "d@example.com", "--password", "long enough")
    assert r.code == 0, r.err
    c = db.session.get(Creditor, json.loads(r.out)["creditor_id"])
    assert (c.currency, c.timezone, c.language) == ("EUR", "Europe/Paris", "fr")


def test_creditor_create_duplicate_email_fails_clearly(cli, creditor):
    before = count(Creditor)
    for email in (creditor.email, creditor.email.upper()):
        r = cli("creditor", "create", "--name", "Copy", "--email", email, "--password", "long enough")
        assert r.code != 0
        assert r.out.strip() == ""
        assert "already exists" in r.err and "Traceback" not in r.err
    assert count(Creditor) == before


def test_creditor_create_bad_options(cli, app):
    for args, word in [(["--email", "not-an-email"], "e-mail"), (["--password", "short"], "password"),
                       (["--currency", "XXX"], "currency"), (["--timezone", "../../etc/passwd"], "time zone"),
                       (["--language", "de"], "language"), (["--iban", "FR00 1234"], "IBAN"),
                       (["--name", "\u202eAmazon"], "bidirectional"), (["--name", "\u200b\ufeff"], "no visible")]:
        options = {"--name": "Bad", "--email": "bad@example.com", "--password": "long enough", args[0]: args[1]}
        r = cli("creditor", "create", *[x for kv in options.items() for x in kv])
        assert r.code != 0, args
        assert r.out.strip() == ""
        assert word.lower() in r.err.lower() and "Traceback" not in r.err, (args, r.err)
    assert count(Creditor) == 0


# --- link create --------------------------------------------------------------------------------------

def test_link_create_prints_a_url_that_opens_the_portal(cli, seeded, creditor, client):
    r = cli("link", "create", "D2", "--creditor", creditor.email)
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert len(lines) == 1
    url = lines[0]
    assert url.startswith("http://portal.test/l/") and " " not in url
    opened = client.get(url.removeprefix("http://portal.test"))
    assert opened.status_code == 303
    page = client.get(opened.headers["Location"])
    assert page.status_code == 200
    assert b"Beta Ltd" in page.data and b"F-3" in page.data and b"F-1" not in page.data
    # The creditor's contact e-mail in another case works too, and every call is a new link.
    again = cli("link", "create", "D2", "--creditor", creditor.email.upper())
    assert again.code == 0 and again.out.strip() != url


def test_link_create_unknown_debtor_or_creditor_fails(cli, seeded, creditor, new_creditor):
    other = new_creditor("Other")
    Api(seeded.client, other).put("/debtors/B1", json={"name": "Theirs"})
    for args, word in [(["NOPE", "--creditor", creditor.email], "NOPE"),
                       (["B1", "--creditor", creditor.email], "B1"),  # another creditor's debtor
                       (["D1", "--creditor", "nobody@example.com"], "nobody@example.com"),
                       (["has space", "--creditor", creditor.email], "has space")]:
        r = cli("link", "create", *args)
        assert r.code != 0, args
        assert r.out.strip() == ""
        assert word in r.err and "Traceback" not in r.err


# --- rates -------------------------------------------------------------------------------------------

def rate_table() -> dict[str, int]:
    return {r.effective_from.isoformat(): r.rate_bp for r in db.session.scalars(select(ReferenceRate))}


@pytest.fixture
def restore_rates(app):
    """The table survives between tests on PostgreSQL (seed data): leave it as the migration made it."""
    before = rate_table()
    yield
    db.session.remove()
    for row in db.session.scalars(select(ReferenceRate)):
        if row.effective_from.isoformat() not in before:
            db.session.delete(row)
        else:
            row.rate_bp = before[row.effective_from.isoformat()]
    db.session.commit()


def test_rates_set_adds_or_corrects_a_half_year_and_charges_follow(cli, restore_rates):
    r = cli("rates", "set", "--from", "2027-01-01", "--rate", "1.90")
    assert r.code == 0, r.err
    assert json.loads(r.out) == {"effective_from": "2027-01-01", "rate": "1.90", "previous": None}
    assert rate_table()["2027-01-01"] == 190
    # 1000.00 EUR, 10 days late in January 2027: 100000 x 1190 x 10 / 3650000 = 326.03 -> 326
    assert late_charges(100000, "EUR", date(2027, 1, 5), date(2027, 1, 15), debtor_kind="business",
                        reference_rates=reference_rates()).interest == 326
    r = cli("rates", "set", "--from", "2027-01-01", "--rate", "1,95")  # a correction; a decimal comma is fine
    assert r.code == 0, r.err
    assert json.loads(r.out) == {"effective_from": "2027-01-01", "rate": "1.95", "previous": "1.90"}
    listed = cli("rates", "list")
    assert listed.code == 0, listed.err
    lines = listed.out.strip().splitlines()
    assert lines[0].split() == ["2027-01-01", "1.95"]
    assert ["2026-01-01", "2.15"] in [line.split() for line in lines]


def test_rates_set_refuses_bad_input_clearly(cli, restore_rates):
    before = rate_table()
    for args, words in [(["--from", "2027-03-01", "--rate", "1.90"], "--from: the rate in force on 1 January or 1 July"),
                        (["--from", "nope", "--rate", "1.90"], "--from: must be an ISO date"),
                        (["--from", "2027-02-30", "--rate", "1.90"], "--from: is not a valid date"),
                        (["--from", "2027-07-01", "--rate", "abc"], "--rate: a rate in percent is required"),
                        (["--from", "2027-07-01", "--rate", "1.234"], "--rate: a rate in percent between 0 and 100"),
                        (["--from", "2027-07-01", "--rate", "-1"], "between 0 and 100"),
                        (["--from", "2027-07-01", "--rate", "NaN"], "between 0 and 100"),
                        (["--from", "2027-07-01"], "Missing option '--rate'")]:
        r = cli("rates", "set", *args)
        assert r.code != 0, args
        assert r.out.strip() == "" and words in r.err and "Traceback" not in r.err, (args, r.err)
    assert rate_table() == before


# --- demo ---------------------------------------------------------------------------------------------

def test_demo_is_idempotent(cli, client):
    first = cli("demo")
    assert first.code == 0, first.err
    creditor_id = demo.existing().id
    invoices = (Invoice.creditor_id == creditor_id, Invoice.kind == "invoice")  # charges items are the replay's
    counts = (count(Debtor, Debtor.creditor_id == creditor_id), count(Invoice, *invoices),
              count(Payment, Payment.creditor_id == creditor_id))
    assert counts[0] == 20
    assert 60 <= counts[1] <= 140
    assert counts[2] > 0
    assert demo.EMAIL in first.out and demo.PASSWORD in first.out
    url = next(word for word in first.out.split() if word.startswith("http://portal.test/l/"))
    assert client.get(url.removeprefix("http://portal.test")).status_code == 303

    second = cli("demo")
    assert second.code == 0, second.err
    assert "already" in second.out
    assert count(Creditor) == 1
    assert (count(Debtor, Debtor.creditor_id == creditor_id), count(Invoice, *invoices),
            count(Payment, Payment.creditor_id == creditor_id)) == counts


def test_demo_if_empty_leaves_a_used_database_alone(cli, creditor):
    r = cli("demo", "--if-empty")
    assert r.code == 0, r.err
    assert demo.existing() is None
    assert count(Creditor) == 1


# --- import invoices ----------------------------------------------------------------------------------

GOOD = HEADER + (
    "C1,Dupont SARL,compta@dupont.example,F-100,2026-09-01,2026-10-01,1200.00,EUR\n"
    "C1,Dupont SARL,compta@dupont.example,F-101,2026-09-15,2026-10-15,99.90,EUR\n"
    "C2,Martin,,F-102,2026-10-01,2026-10-31,15.00,EUR\n"
)


def test_import_invoices_upserts(cli, creditor, api, tmp_path):
    path = tmp_path / "invoices.csv"
    path.write_text(GOOD)
    r = cli("import", "invoices", str(path), "--creditor", creditor.email)
    assert r.code == 0, r.err
    summary = json.loads(r.out.strip().splitlines()[-1])
    assert summary == {"rows": 3, "debtors_created": 2, "invoices_created": 3, "invoices_updated": 0}
    assert "Importing" in r.err  # the progress bar goes to stderr
    assert api.get("/invoices/F-100").json["amount"] == "1200.00"
    assert api.get("/debtors/C1").json["balance"] == "1299.90"

    path.write_text(GOOD.replace("1200.00", "1000.00"))
    r = cli("import", "invoices", str(path), "--creditor", creditor.email)
    assert r.code == 0, r.err
    assert json.loads(r.out.strip().splitlines()[-1]) == \
        {"rows": 3, "debtors_created": 0, "invoices_created": 0, "invoices_updated": 3}
    assert api.get("/invoices/F-100").json["amount"] == "1000.00"
    assert count(Invoice) == 3


def test_import_invoices_bad_rows_import_nothing(cli, creditor, api, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(GOOD.replace("99.90", '"99,90"').replace("2026-10-31", "2026-02-30"))
    r = cli("import", "invoices", str(path), "--creditor", creditor.email)
    assert r.code != 0
    assert "line 3: amount" in r.err
    assert "line 4: due_date" in r.err
    assert "line 2" not in r.err
    assert "nothing was imported" in r.err
    assert "Traceback" not in r.err
    assert r.out.strip() == ""
    assert count(Invoice) == 0 and count(Debtor) == 0


def test_import_invoices_other_bad_files(cli, creditor, tmp_path):
    cases = {"latin1.csv": GOOD.replace("Martin", "Société").encode("latin-1"),
             "columns.csv": b"debtor_ref,amount\nC1,1.00\n",
             "dup.csv": (GOOD + "C2,Martin,,F-100,2026-10-01,2026-10-31,1.00,EUR\n").encode()}
    for name, data in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        r = cli("import", "invoices", str(path), "--creditor", creditor.email)
        assert r.code != 0, name
        assert "nothing was imported" in r.err and "Traceback" not in r.err, (name, r.err)
    assert count(Invoice) == 0


def test_import_invoices_semicolons_and_bom(cli, creditor, api, tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes(b"\xef\xbb\xbf" + GOOD.replace(",", ";").replace("\n", "\r\n").encode())
    r = cli("import", "invoices", str(path), "--creditor", creditor.email)
    assert r.code == 0, r.err
    assert json.loads(r.out.strip().splitlines()[-1])["invoices_created"] == 3
    assert api.get("/invoices/F-101").json["amount"] == "99.90"


def test_import_invoices_unknown_creditor_or_file(cli, tmp_path):
    path = tmp_path / "invoices.csv"
    path.write_text(GOOD)
    r = cli("import", "invoices", str(path), "--creditor", "nobody@example.com")
    assert r.code != 0 and "nobody@example.com" in r.err
    r = cli("import", "invoices", str(tmp_path / "missing.csv"), "--creditor", "nobody@example.com")
    assert r.code != 0 and "missing.csv" in r.err
    assert count(Invoice) == 0


# --- import bank ----------------------------------------------------------------------------------------

def test_import_bank_prints_the_import_and_records_once(cli, seeded, creditor, tmp_path):
    from recon_files import Entry, camt053
    from portal.models import BankTransaction
    rf = seeded.get("/invoices/F-1").json["payment_reference"]
    path = tmp_path / "releve.xml"
    path.write_bytes(camt053([Entry("1200.00", date(2026, 11, 20), "B1", "ALPHA SARL", rf=rf),
                              Entry("5.00", date(2026, 11, 20), "B2", "X", "divers")]))
    r = cli("import", "bank", str(path), "--creditor", creditor.email)
    assert r.code == 0, r.err
    assert json.loads(r.out) == {"format": "camt.053", "transactions": 2, "new": 2, "duplicates": 0,
                                 "matched": 1, "suggested": 0, "unmatched": 1}
    assert "Importing" in r.err  # the progress bar, on stderr
    again = cli("import", "bank", str(path), "--creditor", str(creditor.id))  # the creditor's id works too
    assert again.code == 0 and json.loads(again.out)["duplicates"] == 2
    assert count(BankTransaction) == 2 and count(Payment) == 1
    assert seeded.get("/invoices/F-1").json["status"] == "paid"

    bad = tmp_path / "bad.xml"
    bad.write_bytes(path.read_bytes().replace(b">5.00<", b">5,OO<", 1))
    r = cli("import", "bank", str(bad), "--creditor", creditor.email)
    assert r.code != 0 and "bad.xml" in r.err and r.out == ""
    assert count(BankTransaction) == 2
