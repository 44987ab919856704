"""Short links (issue 14, CONTRACT §5): a printed letter carries PORTAL_BASE_URL/l/<code>, a short
random code that opens the same portal link row as its signed token, under the same rules: the same
session start, expiry, revocation, refusal page and rate limit."""
import re
import subprocess
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.models import Creditor, DunningPlan, DunningStep, Invoice, OutboxMessage, PortalLink, Reminder, utcnow
from portal.services import ledger, links, plans, reminders
from test_links import assert_reveals_nothing, ledger_id, no_open_recorded, portal_state, refused


def issue_short(app, creditor_id, ref, **kwargs):
    """(link id, short path, token path) of a fresh link with a short code."""
    with app.app_context():
        issued = links.issue(ledger.get_debtor(creditor_id, ref), issued_by="creditor", short=True, **kwargs)
        base = app.config["PORTAL_BASE_URL"]
        return issued.link.id, issued.short_url.replace(base, ""), issued.url.replace(base, "")


def test_short_code_is_short_and_from_a_plain_alphabet(app, seeded, creditor):
    _, short, token = issue_short(app, creditor.id, "D1")
    code = short[len("/l/"):]
    assert re.fullmatch(r"[23456789abcdefghjkmnpqrstuvwxyz]{10}", code)
    assert len("http://portal.test" + short) < 40 < len("http://portal.test" + token)


def test_short_code_opens_that_debtors_portal(client, app, seeded, creditor):
    link_id, short, _ = issue_short(app, creditor.id, "D2", invoice_numbers=["F-3"])
    r = client.get(short)
    assert r.status_code == 303 and r.headers["Location"] == "/portal/"
    assert r.headers["Cache-Control"] == "no-store"
    state = portal_state(client)
    assert (state["debtor"], state["link"], state["select"], state["lang"]) == (
        ledger_id(app, creditor.id, "D2"), link_id, ["F-3"], "en")
    home = client.get("/portal/")
    assert home.status_code == 200 and b"Beta Ltd" in home.data and b"Alpha SARL" not in home.data
    db.session.expire_all()
    assert db.session.get(PortalLink, link_id).open_count == 1


def test_short_code_typed_in_capitals_still_opens(client, app, seeded, creditor):
    link_id, short, _ = issue_short(app, creditor.id, "D1")
    assert client.get("/l/" + short[len("/l/"):].upper()).status_code == 303
    assert portal_state(client)["link"] == link_id


def test_the_token_of_a_link_with_a_short_code_still_works(client, app, seeded, creditor):
    link_id, _, token_path = issue_short(app, creditor.id, "D1")
    assert client.get(token_path).status_code == 303
    assert portal_state(client)["link"] == link_id


@pytest.mark.parametrize("end", ["expired", "revoked"])
def test_an_ended_link_is_refused_by_code_and_token_alike(client, app, seeded, creditor, end):
    link_id, short, token_path = issue_short(app, creditor.id, "D1")
    if end == "revoked":
        links.revoke(creditor.id, link_id)
    else:
        db.session.get(PortalLink, link_id).expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    for path in (short, token_path):
        refused(client, path)
    no_open_recorded(app, link_id)


def test_revoking_ends_a_session_opened_by_code(client, app, seeded, creditor):
    link_id, short, _ = issue_short(app, creditor.id, "D1")
    assert client.get(short).status_code == 303
    assert client.get("/portal/").status_code == 200
    links.revoke(creditor.id, link_id)
    r = client.get("/portal/")
    assert r.status_code == 401
    assert_reveals_nothing(r)
    refused(client, short)


@pytest.mark.parametrize("code", ["k7m2x9pqrs", "k7m2x9pqr", "k7m2x9pqrst", "k7m2x9pqr0", "k7m2x9pqr1"])
def test_unknown_or_malformed_codes_refused(client, app, seeded, creditor, code):
    link_id, short, _ = issue_short(app, creditor.id, "D1")
    assert short != "/l/" + code
    refused(client, "/l/" + code)
    no_open_recorded(app, link_id)


def test_links_without_a_short_code_have_none(app, seeded, creditor):
    issued = links.issue(ledger.get_debtor(creditor.id, "D1"), issued_by="creditor")
    assert issued.short_url is None and issued.link.short_code is None


def test_short_codes_are_rate_limited_as_tokens_are(make_app, seeded, creditor):
    limited = make_app(RATELIMIT_ENABLED=True)
    _, short, _ = issue_short(limited, creditor.id, "D1")
    c = limited.test_client()
    statuses = [c.get(f"/l/{'k7m2x9pq' + a + b}").status_code for a in "23456" for b in "234567"][:30]
    assert statuses == [404] * 30
    assert c.get(short).status_code == 429  # guessing codes throttles the address, valid ones included


def test_a_composed_letter_prints_a_short_link_that_opens_the_portal(client, app, seeded, creditor, tmp_path):
    """The letter (PDF) of a formal notice, composed and stored: its link is a short one, on one line,
    and it opens that debtor's portal (both engines)."""
    row = db.session.get(Creditor, creditor.id)
    row.legal_name, row.address = "Atelier Test SARL", "12 rue des Lilas\n69003 LYON"
    db.session.commit()
    debtor = ledger.get_debtor(creditor.id, "D1")
    invoices = db.session.scalars(select(Invoice).where(Invoice.debtor_id == debtor.id).order_by(Invoice.id)).all()
    # Reminders not stored: the message is composed for them as the day's composing would.
    dunning = [(Reminder(invoice_id=i.id, step_code="formal_notice"), i) for i in invoices]
    plans.ensure_default_plans(creditor.id)
    step = db.session.scalar(select(DunningStep).join(DunningPlan).where(
        DunningPlan.creditor_id == creditor.id, DunningStep.code == "formal_notice").limit(1))
    message = reminders.build_message(row, debtor, "formal_notice", dunning, [], step, date(2026, 12, 6), "email",
                                      daily_key=None)
    db.session.commit()
    pdf = tmp_path / "notice.pdf"
    pdf.write_bytes(db.session.get(OutboxMessage, message.id).attachment)
    text = subprocess.run(["pdftotext", str(pdf), "-"], check=True, capture_output=True, text=True).stdout
    [url] = [line for line in text.splitlines() if line.startswith("http://portal.test/l/")]
    assert re.fullmatch(r"http://portal\.test/l/[a-z2-9]{10}", url)
    assert "Envoyée par courrier électronique" in " ".join(text.split())
    assert client.get(url.replace("http://portal.test", "")).status_code == 303
    assert portal_state(client)["debtor"] == debtor.id
