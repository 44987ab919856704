"""The dunning day by day, D-10 to D+35, against a real SMTP server: exactly which e-mails
arrive on which day, in which language, for which invoices, with working portal links."""
from __future__ import annotations

import re
from datetime import date, timedelta

import pytest

from dunning_jobs import day as dunning_day
from dunning_jobs import outbox
from portal.extensions import db
from portal.models import Event, OutboxMessage, Reminder
from portal.services import ledger, letters, reminders

DUE = date(2026, 3, 31)


@pytest.fixture
def app_config(smtp_server):
    return {"SMTP_URL": smtp_server.url, "MAIL_FROM": "Atelier Test <relances@atelier.test>"}


@pytest.fixture
def mail_app(app):
    return app


def _setup(creditor_id):
    from portal.models import Creditor
    creditor = db.session.get(Creditor, creditor_id)
    ledger.upsert_debtor(creditor, "D1", {"name": "Alpha SARL", "email": "alpha@example.com", "language": "fr",
                                          "kind": "business"})
    ledger.upsert_debtor(creditor, "D2", {"name": "Bob Smith", "email": "bob@example.com", "language": "en",
                                          "kind": "consumer"})
    ledger.upsert_debtor(creditor, "D3", {"name": "Gamma SAS", "email": None, "language": "fr"})
    for number, ref, due, amount in [("A-1", "D1", DUE, "1000.00"), ("B-1", "D2", DUE, "200.00"),
                                     ("B-2", "D2", DUE + timedelta(days=5), "50.00"), ("C-1", "D3", DUE, "300.00")]:
        ledger.upsert_invoice(creditor, number, {"debtor_ref": ref, "issue_date": "2026-03-01",
                                                 "due_date": due.isoformat(), "amount": amount, "currency": "EUR"})
    return creditor


def _numbers(text: str) -> list[str]:
    return sorted(set(re.findall(r"\b[A-C]-[12]\b", text)))


def test_day_by_day_timeline(mail_app, creditor, smtp_server, client):
    creditor_row = _setup(creditor.id)
    seen: dict[date, list[tuple[str, list[str]]]] = {}
    bodies = {}
    for offset in range(-10, 36):
        day = DUE + timedelta(days=offset)
        result = dunning_day.run(day)
        again = dunning_day.run(day)
        assert (again.planned, again.sent, again.awaiting_approval) == (0, 0, 0), f"second run on {day}"
        received = smtp_server.handler.take()
        assert result.sent == len(received)
        for r in received:
            seen.setdefault(day, []).append((r.rcpt_tos[0], _numbers(r.text())))
            bodies[(day, r.rcpt_tos[0])] = r
    d = lambda n: DUE + timedelta(days=n)  # noqa: E731
    expected = {
        d(-7): [("alpha@example.com", ["A-1"]), ("bob@example.com", ["B-1"])],
        d(-2): [("bob@example.com", ["B-2"])],
        d(1): [("alpha@example.com", ["A-1"]), ("bob@example.com", ["B-1"])],
        d(6): [("bob@example.com", ["B-2"])],
        d(8): [("alpha@example.com", ["A-1"]), ("bob@example.com", ["B-1"])],
        d(13): [("bob@example.com", ["B-2"])],
        d(15): [("alpha@example.com", ["A-1"]), ("bob@example.com", ["B-1"])],
        d(20): [("bob@example.com", ["B-2"])],
    }
    assert {k: sorted(v) for k, v in seen.items()} == expected

    # Language and tone follow the debtor and the step.
    assert "Échéance prochaine" in bodies[(d(-7), "alpha@example.com")].subject
    assert "coming due soon" in bodies[(d(-7), "bob@example.com")].subject
    firm_fr = bodies[(d(15), "alpha@example.com")]
    assert "L441-10" in firm_fr.text() and "40,00" in firm_fr.text()  # business debtor: charges stated
    firm_en = bodies[(d(15), "bob@example.com")]
    # A consumer is charged neither interest nor indemnity, and no business law is cited to them.
    assert "L441-10" not in firm_en.subject + firm_en.text() and "40.00" not in firm_en.text()
    for r in bodies.values():
        assert r.message["Reply-To"] == creditor.email
        assert r.html() and "FR76 3000 6000 0112 3456 7890 189" in r.text()

    # The debtor without an e-mail got letters instead, waiting to be printed: composed as HTML,
    # their PDF made when printed.
    queued = db.session.scalars(db.select(OutboxMessage).where(OutboxMessage.channel == "letter")).all()
    assert queued and all(m.to_addr is None and m.attachment is None and m.letter_html for m in queued)
    assert all(letters.pdf_of(m).startswith(b"%PDF") for m in queued)

    # Formal notices wait for approval: nothing was e-mailed at D+30.
    waiting = reminders.awaiting(creditor.id, d(35))
    assert sorted(debtor.ref for debtor, _ in waiting) == ["D1", "D2", "D3"]
    logged = db.session.execute(db.select(Event.invoice_id, Event.data).where(
        Event.type == "reminder.awaiting_approval")).all()
    assert len(logged) == 4 and all(data["step"] == "formal_notice" for _, data in logged)
    assert {data["date"] for _, data in logged} == {d(30).isoformat(), d(35).isoformat()}

    # Each e-mail's link opens that debtor's portal with its invoices preselected.
    link = re.search(r"http://portal\.test(/l/\S+)", bodies[(d(8), "bob@example.com")].text()).group(1)
    assert client.get(link).status_code == 303
    page = client.get("/portal/").data.decode()
    assert "Bob Smith" in page and "B-1" in page and "A-1" not in page
    # The row is outlined and ticked; its heading cell names the invoice (a link to its PDF).
    row = re.search(r'<tr class="[^"]*\bselected\b[^"]*">(.*?)</tr>', page, re.S)
    assert row and re.search(r'<th scope="row"[^>]*>.*?\bB-1\b.*?</th>', row.group(1), re.S)
    assert re.search(r'<input type="checkbox"[^>]*value="B-1"[^>]*checked', row.group(1))


def test_formal_notice_after_approval_and_thank_you_once(mail_app, creditor, smtp_server):
    creditor_row = _setup(creditor.id)
    for offset in (-7, 1, 8, 15, 30):
        dunning_day.run(DUE + timedelta(days=offset))
    smtp_server.handler.take()
    debtor = ledger.get_debtor(creditor.id, "D1")
    message = reminders.approve(creditor_row, debtor.id, DUE + timedelta(days=31), user="owner")
    assert message is not None and message.kind == "formal_notice"
    assert outbox.send_pending().sent == 1
    [notice] = smtp_server.handler.take()
    assert notice.rcpt_tos == ["alpha@example.com"]
    [pdf] = notice.attachments()
    assert pdf.get_content_type() == "application/pdf" and pdf.get_content().startswith(b"%PDF")
    assert "mise en demeure" in notice.text().lower() or "mise en demeure" in notice.subject.lower()

    # Paid through the API path, exactly what the notice asked (the invoice, then the charges it
    # claimed): one thank-you, never two, and no more reminders.
    asked = f"{message.amount // 100}.{message.amount % 100:02d}"
    assert message.amount > 100000  # the charges claimed by the firm reminder and the notice
    ledger.record_offline_payment(creditor_row, "A-1", {"amount": asked, "date": "2026-05-02",
                                                        "reference": "VIR-1"})
    for offset in (32, 33, 45):
        dunning_day.run(DUE + timedelta(days=offset))
    thanks = [m for m in smtp_server.handler.take() if m.rcpt_tos == ["alpha@example.com"]]
    assert len(thanks) == 1 and "A-1" in thanks[0].text()
    assert db.session.scalar(db.select(db.func.count()).select_from(Reminder).where(
        Reminder.step_code == "thank_you")) == 1


def test_smtp_down_loses_nothing(mail_app, creditor, smtp_server):
    smtp_server.stop()
    _setup(creditor.id)
    down = dunning_day.run(DUE + timedelta(days=1))
    assert down.planned == 4 and down.sent == 0 and down.failed == 0  # A-1, B-1, C-1 late; B-2 courtesy
    pending = db.session.scalar(db.select(db.func.count()).select_from(OutboxMessage).where(
        OutboxMessage.status == "pending"))
    assert pending == 2
    smtp_server.start()
    up = dunning_day.run(DUE + timedelta(days=1))
    assert (up.planned, up.sent) == (0, 2)
    assert sorted(r.rcpt_tos[0] for r in smtp_server.handler.take()) == ["alpha@example.com", "bob@example.com"]


def test_refusals_retry_or_fail(mail_app, creditor, smtp_server):
    _setup(creditor.id)
    smtp_server.handler.refuse = {"alpha@example.com": "451 4.3.0 try again later",
                                  "bob@example.com": "550 5.1.1 no such user"}
    result = dunning_day.run(DUE + timedelta(days=1))
    assert result.sent == 0 and result.failed == 1
    statuses = dict(db.session.execute(db.select(OutboxMessage.to_addr, OutboxMessage.status)).all())
    assert statuses == {"alpha@example.com": "pending", "bob@example.com": "failed", None: "letter"}
    retry = db.session.scalar(db.select(OutboxMessage).where(OutboxMessage.to_addr == "alpha@example.com"))
    assert retry.attempts == 1 and retry.next_attempt_at > retry.created_at
    # Backoff: not retried before its time, then delivered once the server accepts.
    smtp_server.handler.refuse = {}
    assert outbox.send_pending().sent == 0
    retry.next_attempt_at = retry.created_at
    db.session.commit()
    assert outbox.send_pending().sent == 1
    assert [r.rcpt_tos for r in smtp_server.handler.take()] == [["alpha@example.com"]]
