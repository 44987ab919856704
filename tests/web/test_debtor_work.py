"""The debtor page's work section (issue 18, "the debtor page as a workplace"): pausing and resuming
dunning, recording a payment or a credit note by hand, sending the next step now, and the next
scheduled step per invoice; on both engines, through the back office's forms."""
from __future__ import annotations

from datetime import timedelta

import pytest
from babel.dates import format_date
from sqlalchemy import select

from dunning_jobs import outbox
from portal.extensions import db
from portal.models import Creditor, DunningPause, Event, Invoice, OutboxMessage, Payment, Reminder
from support import back_office_login, csrf_token_in, flashes, put_ledger, response_text


@pytest.fixture
def app_config(smtp_server):
    return {"SMTP_URL": smtp_server.url, "MAIL_FROM": "Atelier Test <relances@atelier.test>"}


@pytest.fixture
def creditor(new_creditor):
    return new_creditor("Atelier Test", language="en")


@pytest.fixture
def desk(client, api, creditor, today):
    """Alpha (D1) owes two invoices, 20 and 3 days late; Beta (D2) one, not due yet."""
    put_ledger(api, [("F-1", "D1", today - timedelta(days=20), "100.00"),
                     ("F-2", "D1", today - timedelta(days=3), "250.00"),
                     ("F-3", "D2", today + timedelta(days=30), "40.00")])
    return back_office_login(client, creditor)


def events_of(type_):
    db.session.rollback()
    return db.session.scalars(select(Event).where(Event.type == type_).order_by(Event.id)).all()


def invoice(number):
    db.session.rollback()
    return db.session.scalar(select(Invoice).where(Invoice.number == number))


# --- next steps ---------------------------------------------------------------------------------

def test_the_page_shows_each_invoices_next_step_and_its_date(desk, today):
    page = response_text(desk.get("/app/debtors/D1"))
    assert 'id="work"' in page and "Send the next step now" in page
    rows = page.split('id="next-steps"')[1].split("</table>")[0]
    assert "F-1" in rows and "F-2" in rows and "First reminder" in rows
    assert "due now: goes with the next run" in rows
    # Beta's invoice: the courtesy notice 7 days before the due date.
    page = response_text(desk.get("/app/debtors/D2"))
    rows = page.split('id="next-steps"')[1].split("</table>")[0]
    assert "Courtesy notice" in rows and "from" in rows


def test_the_page_speaks_french(desk, app, creditor):
    db.session.get(Creditor, creditor.id).language = "fr"
    db.session.commit()
    page = response_text(desk.get("/app/debtors/D1"))
    assert "Envoyer l’étape suivante maintenant" in page or "Envoyer l'étape suivante maintenant" in page
    assert "Suspendre les relances" in page


# --- pauses ---------------------------------------------------------------------------------------

def test_pause_the_debtor_then_resume_it(desk, today):
    until = today + timedelta(days=10)
    r = desk.post("/app/debtors/D1/pauses", data={"reason": "Litige commercial en cours", "until": until.isoformat()})
    assert r.status_code == 303 and r.headers["Location"].endswith("/app/debtors/D1#work")
    paused = events_of("dunning.paused")
    assert [(e.data["reason"], e.data["until"], e.data["invoice"]) for e in paused] == \
        [("Litige commercial en cours", until.isoformat(), None)]
    page = response_text(desk.get("/app/debtors/D1"))
    assert "Dunning of this debtor paused through" in " ".join(flashes(page))
    assert "Litige commercial en cours" in page and "Resume now" in page
    assert "held: paused" in page.split('id="next-steps"')[1].split("</table>")[0]
    pause_id = db.session.scalar(select(DunningPause.id))
    r = desk.post(f"/app/debtors/D1/pauses/{pause_id}/resume")
    assert r.status_code == 303
    row = db.session.get(DunningPause, pause_id)
    assert row.ended_at is not None and row.ended_by == "owner1@creditor1.test"
    assert [e.data["pause_id"] for e in events_of("dunning.resumed")] == [pause_id]
    # Resumed twice: refused, nothing more recorded.
    desk.post(f"/app/debtors/D1/pauses/{pause_id}/resume")
    assert "This pause is over already." in flashes(response_text(desk.get("/app/debtors/D1")))
    assert len(events_of("dunning.resumed")) == 1


def test_pause_one_invoice(desk, today):
    r = desk.post("/app/debtors/D1/pauses", data={"reason": "Avoir en préparation", "invoice": "F-2",
                                                  "until": (today + timedelta(days=5)).isoformat()})
    assert r.status_code == 303
    row = db.session.scalar(select(DunningPause))
    assert row.invoice_id == invoice("F-2").id
    assert events_of("dunning.paused")[0].data["invoice"] == "F-2"


@pytest.mark.parametrize("data, field, text", [
    ({"reason": "", "until": "+10"}, "reason", "Give a reason for the pause."),
    ({"reason": "x" * 201, "until": "+10"}, "reason", "The reason is too long (200 characters at most)."),
    ({"reason": "ok", "until": ""}, "until", "Choose the last day of the pause."),
    ({"reason": "ok", "until": "+0"}, "until", "The pause must end after today."),
    ({"reason": "ok", "until": "+366"}, "until", "A pause lasts one year at most."),
    ({"reason": "ok", "until": "31/12/2026"}, "until", "Enter a date like 2026-12-31."),
    ({"reason": "ok", "until": "+10", "invoice": "F-3"}, "invoice", "Choose one of this debtor's invoices."),
])
def test_pause_refusals_name_the_field_and_record_nothing(desk, today, data, field, text):
    data = dict(data)
    if data["until"].startswith("+"):
        data["until"] = (today + timedelta(days=int(data["until"][1:]))).isoformat()
    r = desk.post("/app/debtors/D1/pauses", data=data)
    assert r.status_code == 422
    page = response_text(r)
    assert f'<p class="field-error" id="pause-{field}-error">{text}</p>' in page
    assert 'aria-invalid="true"' in page and "<details class=\"step\" open>" in page
    if data["reason"] == "ok":
        assert 'value="ok"' in page  # what was typed comes back
    assert db.session.scalar(select(DunningPause.id)) is None and not events_of("dunning.paused")


# --- payments and credit notes ---------------------------------------------------------------------

def test_record_a_payment_for_one_invoice(desk, today):
    r = desk.post("/app/debtors/D1/payments", data={"amount": "250,00", "date": today.isoformat(),
                                                    "method": "cheque", "reference": "CHQ 0042", "invoices": "F-2"})
    assert r.status_code == 303
    assert (invoice("F-2").status, invoice("F-1").status) == ("paid", "open")
    payment = db.session.scalar(select(Payment))
    assert (payment.provider, payment.reference, payment.amount) == ("offline", "CHQ 0042", 25000)
    assert [e.data["method"] for e in events_of("payment.entered")] == ["cheque"]
    assert [e.invoice_id for e in events_of("invoice.paid")] == [invoice("F-2").id]
    assert "Payment recorded: dunning stops for what it paid." in flashes(response_text(desk.get("/app/debtors/D1")))


def test_a_payment_without_invoices_goes_oldest_first(desk, today):
    desk.post("/app/debtors/D1/payments", data={"amount": "150.00", "date": today.isoformat(),
                                                "method": "transfer", "reference": "VIR-1"})
    assert (invoice("F-1").status, invoice("F-2").amount_paid) == ("paid", 5000)


@pytest.mark.parametrize("data, field, text", [
    ({"amount": ""}, "amount", "Enter the amount."),
    ({"amount": "abc"}, "amount", "Enter an amount like 120.50."),
    ({"amount": "0"}, "amount", "Enter an amount more than zero, like 120.50."),
    ({"date": "+1"}, "date", "The date cannot be in the future."),
    ({"date": ""}, "date", "Enter the date the money was received."),
    ({"method": "bitcoin"}, "method", "Choose how the money came."),
    ({"reference": " "}, "reference", "Enter the payment’s reference (bank transfer, cheque number…)."),
    ({"invoices": "F-3"}, "invoices", "Choose among the debtor’s open invoices."),
])
def test_payment_refusals_name_the_field_and_record_nothing(desk, today, data, field, text):
    form = {"amount": "10.00", "date": today.isoformat(), "method": "transfer", "reference": "R-1", **data}
    if form["date"].startswith("+"):
        form["date"] = (today + timedelta(days=1)).isoformat()
    r = desk.post("/app/debtors/D1/payments", data=form)
    assert r.status_code == 422
    page = response_text(r).replace("'", "’")
    assert f'id="payment-{field}-error">{text}</p>' in page
    assert db.session.scalar(select(Payment.id)) is None and not events_of("payment.entered")


def test_a_reference_used_twice_is_refused(desk, today):
    form = {"amount": "10.00", "date": today.isoformat(), "method": "transfer", "reference": "R-1"}
    assert desk.post("/app/debtors/D1/payments", data=form).status_code == 303
    r = desk.post("/app/debtors/D1/payments", data=form)
    assert r.status_code == 422
    assert "This reference was already used for another payment." in response_text(r)
    assert len(db.session.scalars(select(Payment)).all()) == 1


def test_record_a_credit_note(desk, today):
    r = desk.post("/app/debtors/D1/credit-notes", data={"amount": "100.00", "number": "AV-7", "invoices": "F-1"})
    assert r.status_code == 303
    assert invoice("F-1").status == "paid"
    assert [e.data["number"] for e in events_of("credit_note.entered")] == ["AV-7"]
    # Settled by a credit, not by money: no thank-you for a payment.
    thank_you = db.session.scalar(select(Reminder).where(Reminder.step_code == "thank_you"))
    assert thank_you.status == "cancelled"
    r = desk.post("/app/debtors/D1/credit-notes", data={"amount": "1.00", "number": "AV-7", "invoices": "F-2"})
    assert r.status_code == 422 and "This credit note was already recorded." in response_text(r)
    r = desk.post("/app/debtors/D1/credit-notes", data={"amount": "250.01", "number": "AV-8", "invoices": "F-2"})
    assert r.status_code == 422
    assert "A credit note cannot be more than what the invoices still owe." in response_text(r)
    assert invoice("F-2").amount_paid == 0


# --- send the next step now -----------------------------------------------------------------------

def test_send_now_plans_and_composes_the_first_rung_then_says_why_not(desk, today, smtp_server):
    r = desk.post("/app/debtors/D1/send-now")
    assert r.status_code == 303
    assert "The next step is on its way" in " ".join(flashes(response_text(desk.get("/app/debtors/D1"))))
    db.session.rollback()
    messages = db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "reminder")).all()
    assert len(messages) == 1  # one e-mail for both invoices
    steps = db.session.scalars(select(Reminder.step_code).where(Reminder.message_id == messages[0].id)).all()
    assert sorted(steps) == ["reminder_1", "reminder_1"]
    assert outbox.send_pending().sent == 1
    assert [m.rcpt_tos for m in smtp_server.handler.take()] == [["alpha@example.com"]]
    assert [e.data["planned"] for e in events_of("dunning.sent_now")] == [2]
    # Again the same day: the ladder allows nothing before 7 days.
    desk.post("/app/debtors/D1/send-now")
    said = " ".join(flashes(response_text(desk.get("/app/debtors/D1"))))
    last, nxt = today, today + timedelta(days=7)
    assert (f"the last reminder went on {format_date(last, 'long', locale='en')}; "
            f"the next may go from {format_date(nxt, 'long', locale='en')}") in said
    assert smtp_server.handler.take() == [] and outbox.send_pending().sent == 0


def test_send_now_sends_nothing_for_a_paused_debtor(desk, today):
    desk.post("/app/debtors/D1/pauses", data={"reason": "Dossier chez l'avocat",
                                              "until": (today + timedelta(days=3)).isoformat()})
    desk.post("/app/debtors/D1/send-now")
    said = " ".join(flashes(response_text(desk.get("/app/debtors/D1"))))
    assert f"the next step may go from {format_date(today + timedelta(days=4), 'long', locale='en')}" in said
    db.session.rollback()
    assert db.session.scalar(select(Reminder.id).where(Reminder.step_code != "thank_you")) is None


# --- isolation and CSRF ---------------------------------------------------------------------------

ROUTES = ["/app/debtors/D1/pauses", "/app/debtors/D1/payments", "/app/debtors/D1/credit-notes",
          "/app/debtors/D1/send-now"]


def test_another_creditors_debtor_is_not_found(desk, client, new_creditor, today):
    desk.post("/app/debtors/D1/pauses", data={"reason": "r", "until": (today + timedelta(days=3)).isoformat()})
    pause_id = db.session.scalar(select(DunningPause.id))
    client.post("/app/logout")
    other = new_creditor("Other")
    back_office_login(client, other)
    for url in ROUTES + [f"/app/debtors/D1/pauses/{pause_id}/resume"]:
        assert client.post(url, data={"reason": "r", "until": (today + timedelta(days=3)).isoformat(),
                                      "amount": "1.00", "date": today.isoformat(), "method": "cash",
                                      "reference": "X", "number": "AV"}).status_code == 404, url
    assert db.session.get(DunningPause, pause_id).ended_at is None
    assert db.session.scalar(select(Payment.id)) is None


def test_every_action_needs_the_csrf_token(make_app, desk, creditor):
    strict = make_app(WTF_CSRF_ENABLED=True).test_client()
    token = csrf_token_in(strict.get("/app/login").data)
    strict.post("/app/login", data={"email": creditor.email, "password": creditor.password, "csrf_token": token})
    for url in ROUTES:
        assert strict.post(url, data={"reason": "r"}).status_code == 400, url
    assert db.session.scalar(select(DunningPause.id)) is None
    page = strict.get("/app/debtors/D1")
    r = strict.post("/app/debtors/D1/send-now", data={"csrf_token": csrf_token_in(page.data)})
    assert r.status_code == 303
