"""The debtor's portal tells the truth (issue 17): a dispute's status in its own words, no action
offered that would be refused, a history without page views, invoices dated as issued, promises
with their amounts and dates in the debtor's language, and French typography in the portal's
French texts. SQLite and PostgreSQL where a database is involved.

The portal takes "today" from the real clock (the creditor's time zone): invoices are created
relative to it."""
from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from babel.dates import format_date
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from sqlalchemy import select

from portal.extensions import db
from portal.models import Dispute, Event, Invoice, PaymentAttempt, PaymentAttemptLine
from portal.services import disputes
from support import buttons, portal_login, portal_text as page, put_ledger

ROOT = Path(__file__).resolve().parents[2]
FR_PO = ROOT / "portal" / "translations" / "fr" / "LC_MESSAGES" / "messages.po"


@pytest.fixture
def ledger_(api, today):
    """D1 (French) and D2 (English), each with three overdue invoices issued 30 days before due."""
    return put_ledger(api, [(f"{prefix}-{i}", ref, today - timedelta(days=i), "100.00")
                            for ref, prefix in (("D1", "Q"), ("D2", "P")) for i in (1, 2, 3)])


def login(client, app, creditor, ref):
    portal_login(client, app, ref, creditor.id)
    return client


def dispute(client, number) -> Dispute:
    r = client.post(f"/portal/invoices/{number}/dispute", data={"reason": "wrong_amount", "comment": "Not agreed."},
                    content_type="multipart/form-data")
    assert r.status_code == 303, r.data
    db.session.rollback()
    return db.session.scalar(select(Dispute).join(Invoice, Invoice.id == Dispute.invoice_id)
                             .where(Invoice.number == number))


def status_of(client, d: Dispute) -> str:
    text = page(client, f"/portal/disputes/{d.id}")
    return re.search(r"<dd><span class=\"badge[^\"]*\">([^<]*)</span>", text).group(1)


# --- 1. a dispute's own words -------------------------------------------------------------------

@pytest.mark.parametrize("ref, number, words", [
    ("D1", "Q-1", ("En cours d'examen", "En attente de votre réponse", "Résolue")),
    ("D2", "P-1", ("Under review", "Awaiting your reply", "Resolved"))])
def test_a_dispute_reads_in_its_own_words(ledger_, client, app, creditor, ref, number, words):
    c = login(client, app, creditor, ref)
    d = dispute(c, number)
    under_review, awaiting, resolved = words
    assert status_of(c, d) == under_review
    assert "À régler" not in page(c, f"/portal/disputes/{d.id}")
    disputes.creditor_reply(creditor.id, d.id, user=creditor.email, body="Which amount did you expect?")
    assert status_of(c, d) == awaiting
    c.post(f"/portal/disputes/{d.id}/messages", data={"body": "100 less."})
    assert status_of(c, d) == under_review  # the supplier's turn again
    disputes.resolve(creditor.id, d.id, user=creditor.email, resolution="rejected")
    assert status_of(c, d) == resolved


# --- 2. no action offered that will be refused ---------------------------------------------------

def test_promise_is_offered_exactly_where_it_would_be_accepted(ledger_, client, app, creditor, today):
    c = login(client, app, creditor, "D2")
    dispute(c, "P-1")
    # P-2: a card payment on its way, as the checkout's webhook leaves it.
    inv = db.session.scalar(select(Invoice).where(Invoice.number == "P-2"))
    attempt = PaymentAttempt(creditor_id=inv.creditor_id, debtor_id=inv.debtor_id, provider="stripe",
                             provider_ref="cs_test_1", amount=inv.balance, currency="EUR", status="processing")
    db.session.add(attempt)
    db.session.flush()
    db.session.add(PaymentAttemptLine(attempt_id=attempt.id, invoice_id=inv.id, amount=inv.balance))
    db.session.commit()

    offered = {n for n in ("P-1", "P-2", "P-3") if f"Promise a date for invoice {n}" in buttons(page(c))}
    assert offered == {"P-3"}
    for n in ("P-1", "P-2", "P-3"):
        accepted = c.get(f"/portal/invoices/{n}/promise").status_code == 200
        assert accepted == (n in offered), n
    r = c.post("/portal/invoices/P-2/promise", data={"date": (today + timedelta(days=3)).isoformat()})
    assert r.status_code == 303 and "on its way" in page(c)
    # Once promised, the promise is shown, not offered again.
    assert c.post("/portal/invoices/P-3/promise", data={"date": (today + timedelta(days=3)).isoformat()}).status_code == 303
    assert not any(b.startswith("Promise a date") for b in buttons(page(c)))


# --- 3. the history ----------------------------------------------------------------------------

@pytest.fixture
def d1_history(ledger_, client, app, creditor, today):
    """D1's history after two visits, a promise of 40.00 on Q-1 and one of the balance on Q-2."""
    c = login(client, app, creditor, "D1")
    promised = today + timedelta(days=5)
    assert c.post("/portal/invoices/Q-1/promise", data={"date": promised.isoformat(), "amount": "40,00"}).status_code == 303
    assert c.post("/portal/invoices/Q-2/promise", data={"date": promised.isoformat()}).status_code == 303
    page(c)
    text = page(c)
    return text[text.index('id="history-h"'):], promised


def test_history_shows_no_page_views(d1_history):
    history, _ = d1_history
    db.session.rollback()  # they stay in the creditor's feed
    assert db.session.scalar(select(Event.id).where(Event.type == "portal.opened").limit(1)) is not None
    assert "consulté cette page" not in history and "opened this page" not in history


def test_history_dates_an_invoice_as_issued(d1_history, today):
    history, _ = d1_history
    issued = today - timedelta(days=1 + 30)  # due yesterday, issued 30 days before; imported today
    assert re.search(rf'<time datetime="{issued.isoformat()}">{format_date(issued, "medium", locale="fr")}</time>'
                     r"\s*Facture émise — Q-1", history), history[:2000]


def test_history_shows_a_promise_with_its_amount_and_a_french_date(d1_history):
    history, promised = d1_history
    day = format_date(promised, "medium", locale="fr")
    assert f"Vous avez promis de régler 40,00\u00a0€ au plus tard le {day} — Q-1" in history
    assert f"Vous avez promis de régler 100,00\u00a0€ au plus tard le {day} — Q-2" in history
    assert promised.isoformat() not in re.sub(r'datetime="[^"]*"', "", history)


# --- 4. French typography ----------------------------------------------------------------------

# A mark of punctuation used as such (followed by a space, a tag or the end), with no no-break
# space before it: "Total : " or "Total: " where French wants "Total\u00a0: ".
BARE_MARK = re.compile(r"(?<![\u00a0\u202f])[:;?!](?=\s|<|$)")


def _portal_msgids() -> set[str]:
    """Every message of the debtor's portal: its templates and its views."""
    found = set()
    for folder, method_map in (("portal/templates/debtor", [("**.html", "jinja2")]),
                               ("portal/debtor", [("**.py", "python")])):
        for _file, _line, message, _comments, _context in extract_from_dir(str(ROOT / folder), method_map=method_map):
            found.update([message] if isinstance(message, str) else [m for m in message if m])
    return found


def test_portal_french_texts_have_a_no_break_space_before_double_marks():
    with open(FR_PO, "rb") as f:
        catalog = read_po(f, locale="fr")
    ids = _portal_msgids()
    assert {"Open invoices", "Statement of account", "This invoice is no longer open."} <= ids
    bad = []
    for message_id in ids:
        entry = catalog.get(message_id)
        if entry is None:
            continue  # a missing translation is test_i18n's to report
        strings = entry.string if isinstance(entry.string, (list, tuple)) else [entry.string]
        bad += [s for s in strings if BARE_MARK.search(s)]
    assert not bad, bad
