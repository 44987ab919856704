"""Words, not codes (issue 18): the back office names statuses, event types, actors and languages
in the user's language, the debtor by its name and the invoice by its number, and dates its rows
in the creditor's time zone, not in UTC."""
from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from types import SimpleNamespace

import pytest
from flask import g
from flask_babel import force_locale
from sqlalchemy import select

from portal.extensions import db
from portal.models import Creditor, Event
from portal.models.payments import MANDATE_RANK
from portal.services.ledger import REVERSAL_EVENTS
from portal.templating import creditor_time
from support import back_office_login, portal_login, put_ledger, response_text

ROOT = Path(__file__).resolve().parents[2]
#: every event type written with a literal, and those built from a status (f"mandate.{status}"...)
LITERAL = re.compile(r'(?:record\(\s*|"type":\s*|\(\s*)"([a-z_]+\.[a-z_]+)"|\'([a-z_]+\.[a-z_]+)\'')
BUILT = ([f"mandate.{s}" for s in MANDATE_RANK] + [f"promise.{s}" for s in ("kept", "broken", "cancelled")]
         + [f"payment.{s}" for s in ("processing", "failed", "expired")] + list(REVERSAL_EVENTS.values())
         + [f"bank.transaction_{s}" for s in ("matched", "suggested", "ignored")])
NOT_EVENTS = {"attachment.pdf"}


def written_event_types() -> set[str]:
    found = set(BUILT)
    # services and the dunning jobs write the log (DESIGN: every state change is a service's event)
    for path in list((ROOT / "portal" / "services").rglob("*.py")) + list((ROOT / "dunning_jobs").rglob("*.py")):
        text = path.read_text()
        if "events." not in text and "_record" not in text:
            continue
        for m in LITERAL.finditer(text):
            found.add(m.group(1) or m.group(2))
    return {t for t in found if t.split(".")[0] in KNOWN_AREAS} - NOT_EVENTS


KNOWN_AREAS = {"portal", "document", "payment", "invoice", "discount", "mandate", "dispute", "promise", "reminder",
               "thank_you", "message", "link", "debtor", "creditor_user", "user", "charges", "letter", "task", "plan",
               "bank", "statement", "attachment", "creditor", "dunning", "api_key", "import"}


def words(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def test_the_scan_finds_the_event_types():
    types = written_event_types()
    for t in ("portal.opened", "payment.received", "task.closed", "bank.statement_imported", "reminder.sent",
              "mandate.active", "promise.broken", "dunning.failed", "plan.replaced"):
        assert t in types, t
    assert len(types) > 60


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_every_event_type_the_app_writes_reads_as_words(app, lang):
    module = app.jinja_env.get_template("creditor/_feed_labels.html").module
    missing = []
    with app.test_request_context(), force_locale(lang):
        g.creditor = SimpleNamespace(timezone="Europe/Paris")
        for t in sorted(written_event_types()):
            data = {"amount": 12345, "currency": "EUR", "date": "2026-10-05", "until": "2026-10-20",
                    "step": "reminder_1", "plan": "standard", "stage": "sending", "user": "anne@example.com"}
            for actor in ("debtor", "system", "creditor"):
                text = str(module.describe(SimpleNamespace(type=t, data=data, actor=actor)))
                fallback = t.replace("_", " ").replace(".", ": ").capitalize()
                if not text.strip() or t in text or text.strip() == fallback or "_" in text:
                    missing.append((t, actor, text))
    assert not missing


@pytest.fixture
def book(api, client, app, creditor):
    """Alpha SARL (D1) owes F-1 (1000.00), 400.00 of it paid: partly paid; it opened its portal."""
    put_ledger(api, [("F-1", "D1", date(2026, 9, 1), "1000.00")], debtors=(("D1", "Alpha SARL", "fr"),))
    assert api.post("/invoices/F-1/payments", json={"amount": "400.00", "date": "2026-09-10",
                                                   "reference": "VIR-1"}).status_code == 201
    portal_login(app.test_client(), app, "D1", creditor.id)
    return api


def _set_language(creditor_id, lang):
    db.session.get(Creditor, creditor_id).language = lang
    db.session.commit()


@pytest.mark.parametrize("lang, opened, partly, by", [
    ("fr", "Alpha SARL a ouvert son portail pour la première fois", "partiellement réglée", "Par : API"),
    ("en", "Alpha SARL opened their portal for the first time", "partly paid", "By: API"),
])
def test_activity_and_invoice_pages_say_words(client, creditor, book, lang, opened, partly, by):
    _set_language(creditor.id, lang)
    back_office_login(client, creditor)
    page = response_text(client.get("/app/activity"))
    text = words(page).replace("\u00a0", " ").replace("\u202f", " ")
    assert opened in text
    assert by in text  # the invoices came through the API
    for code in ("portal.opened", "payment.received", "invoice.created", "debtor.created", " UTC", "Par : cli"):
        assert code not in text, code
    assert '<a href="/app/debtors/D1">Alpha SARL</a>' in page and '<a href="/app/invoices/F-1">F-1</a>' in page

    # Times in the creditor's zone (Europe/Paris), as the language writes them.
    opened_at = db.session.scalar(select(Event.at).where(Event.type == "portal.opened"))
    assert creditor_time(opened_at, "Europe/Paris", lang) in page

    invoice = words(response_text(client.get("/app/invoices/F-1"))).replace("\u00a0", " ")
    assert partly in invoice
    assert "partially_paid" not in invoice and "offline" not in invoice and " UTC" not in invoice

