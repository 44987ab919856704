"""Disputes, end to end: the debtor disputes an invoice in the portal (reason, comment, optional
attachment); reminders pause for that invoice only; the creditor's users are told; the creditor
replies from the back office (each reply e-mailed to the debtor with a fresh portal link) and
resolves it (credit note through the ledger, corrected amount, or rejection), after which the
planner resumes with the invoice's next rung of the ladder, or dunning ends. Attachments are
sniffed, size-limited, safely named and served only to that debtor and that creditor.
SQLite and PostgreSQL; e-mail through a real SMTP server.

Seeded ledger (tests/conftest.py, both debtors switched to English here): D1 F-1 1200.00 due 2026-10-01, F-2 300.50 due 2026-10-31;
D2 (en) F-3 99.99 due 2026-11-14, F-4 5000.00 due 2026-12-31. Standard plan: D-7 courtesy,
D+1 reminder_1, D+8 reminder_2, D+15 firm, D+30 formal notice (awaiting approval)."""
from __future__ import annotations

import io
import re
from datetime import date

import pytest
from sqlalchemy import func, select

from dunning_jobs import day as dunning_day
from dunning_jobs import outbox
from portal.extensions import db
from portal.models import (Dispute, DisputeAttachment, DisputeMessage, Event, Invoice, OutboxMessage, Payment,
                           Reminder)
from support import back_office_login, flashes, portal_login, response_text

PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 32
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 32
MB = 1024 * 1024


@pytest.fixture
def app_config(smtp_server):
    return {"SMTP_URL": smtp_server.url, "MAIL_FROM": "Atelier Test <relances@atelier.test>"}


@pytest.fixture
def browser(make_app, app_config):
    """Another browser: a test client on its own app instance."""
    return lambda: make_app(**app_config).test_client()


@pytest.fixture(autouse=True)
def english(seeded, app, creditor):
    """The creditor's back office and D1's portal in English, so that the tests read the English
    texts (D2 is English already; tests/web/test_i18n.py covers the French catalogue)."""
    from portal.models import Creditor, Debtor
    db.session.get(Creditor, creditor.id).language = "en"
    db.session.scalar(select(Debtor).where(Debtor.creditor_id == creditor.id, Debtor.ref == "D1")).language = "en"
    db.session.commit()


@pytest.fixture
def d1(seeded, client, app, creditor):
    """D1 logged into the portal in `client`."""
    portal_login(client, app, "D1", creditor.id)
    return client


@pytest.fixture
def back_office(seeded, browser, creditor):
    return back_office_login(browser(), creditor)


def look():
    """End the test's own transaction: what follows reads rows as committed now."""
    db.session.rollback()
    db.session.expire_all()


def raise_dispute(client, number, reason="wrong_amount", comment="The amount is not what we agreed.", file=None):
    data = {"reason": reason, "comment": comment}
    if file is not None:
        name, content = file
        data["attachment"] = (io.BytesIO(content), name, "application/pdf")
    return client.post(f"/portal/invoices/{number}/dispute", data=data, content_type="multipart/form-data")


def disputes_of(number) -> list[Dispute]:
    look()
    return list(db.session.scalars(select(Dispute).join(Invoice, Invoice.id == Dispute.invoice_id)
                                   .where(Invoice.number == number).order_by(Dispute.id)))


def invoice(number) -> Invoice:
    look()
    return db.session.scalar(select(Invoice).where(Invoice.number == number))


def steps(number) -> list[str]:
    look()
    return list(db.session.scalars(select(Reminder.step_code).join(Invoice, Invoice.id == Reminder.invoice_id)
                                   .where(Invoice.number == number).order_by(Reminder.id)))


def events_of(type_) -> list[Event]:
    look()
    return list(db.session.scalars(select(Event).where(Event.type == type_).order_by(Event.id)))


def outbox_of(kind) -> list[OutboxMessage]:
    look()
    return list(db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == kind).order_by(OutboxMessage.id)))


def count(model) -> int:
    look()
    return db.session.scalar(select(func.count()).select_from(model))


def numbers_in(body: str) -> list[str]:
    return sorted(set(re.findall(r"\bF-[1-4]\b", body)))


def run_days(smtp_server, *days) -> dict[date, list[tuple[str, list[str]]]]:
    """Run the dunning day on each date; the dunning e-mails each day sent: (recipient, invoice numbers)."""
    seen = {}
    for day in days:
        dunning_day.run(day)
        got = [(m.rcpt_tos[0], numbers_in(m.text())) for m in smtp_server.handler.take()
               if m.message["X-Relance-Kind"] in ("reminder", "formal_notice", "thank_you")]
        if got:
            seen[day] = sorted(got)
    look()
    return seen


# --- raising a dispute ---------------------------------------------------------------------------


def test_dispute_before_due_date_pauses_that_invoice_only(d1, app, creditor, smtp_server):
    r = raise_dispute(d1, "F-1", file=("bon-de-livraison.pdf", PDF))
    assert r.status_code == 303
    [dispute] = disputes_of("F-1")
    assert r.headers["Location"].endswith(f"/portal/disputes/{dispute.id}")
    assert (dispute.status, dispute.reason, dispute.resolution) == ("open", "wrong_amount", None)
    [message] = dispute.messages
    assert (message.author, message.author_name, message.body) == ("debtor", "Alpha SARL",
                                                                   "The amount is not what we agreed.")
    [att] = message.attachments
    assert (att.filename, att.content_type, att.size, att.content) == ("bon-de-livraison.pdf", "application/pdf",
                                                                       len(PDF), PDF)
    assert invoice("F-1").disputed and not invoice("F-2").disputed
    [opened] = events_of("dispute.opened")
    assert (opened.actor, opened.invoice_id, opened.data["reason"], opened.data["dispute_id"]) == (
        "debtor", dispute.invoice_id, "wrong_amount", dispute.id)
    assert opened.data["attachment"]["sha256"] == att.sha256

    # The creditor's user is told at once (its default choice), in the same transaction.
    [alert] = outbox_of("creditor_alert")
    assert alert.to_addr == creditor.email and "Alpha SARL" in alert.subject
    assert "F-1" in alert.text_body and "The amount is not what we agreed." in alert.text_body

    # The portal shows the dispute instead of the Dispute button, and the thread.
    home = response_text(d1.get("/portal/"))
    assert f"/portal/disputes/{dispute.id}" in home
    thread = response_text(d1.get(f"/portal/disputes/{dispute.id}"))
    assert "The amount is not what we agreed." in thread and "bon-de-livraison.pdf" in thread

    assert outbox.send_pending().sent == 1
    assert [m.rcpt_tos for m in smtp_server.handler.take()] == [[creditor.email]]

    # D-7 of F-1 (courtesy), its due date, D+1, D+8: nothing for F-1; F-2 still gets its courtesy notice.
    seen = run_days(smtp_server, date(2026, 9, 24), date(2026, 10, 1), date(2026, 10, 2), date(2026, 10, 9),
                    date(2026, 10, 24))
    assert steps("F-1") == []
    assert steps("F-2") == ["courtesy"]
    assert seen == {date(2026, 10, 24): [("alpha@example.com", ["F-2"])]}


def test_dispute_after_the_due_date_and_one_open_dispute_per_invoice(d1, app, creditor, smtp_server):
    run_days(smtp_server, date(2026, 10, 2))  # F-1's first reminder went out
    assert steps("F-1") == ["reminder_1"]
    assert raise_dispute(d1, "F-1", reason="already_paid", comment="Paid on 28 September.").status_code == 303
    [first] = disputes_of("F-1")

    # A second dispute on the same invoice: the form and the POST lead to the open one.
    r = d1.get("/portal/invoices/F-1/dispute")
    assert r.status_code == 303 and r.headers["Location"].endswith(f"/portal/disputes/{first.id}")
    r = raise_dispute(d1, "F-1", comment="Again")
    assert r.status_code == 303 and r.headers["Location"].endswith(f"/portal/disputes/{first.id}")
    assert len(disputes_of("F-1")) == 1 and len(first.messages) == 1

    assert run_days(smtp_server, date(2026, 10, 9), date(2026, 10, 16)) == {}
    assert steps("F-1") == ["reminder_1"]


def test_refused_forms_say_why_and_record_nothing(d1, app, creditor):
    for data, where in [({"reason": "because", "comment": "x"}, "reason"),
                        ({"reason": "other", "comment": "   "}, "comment"),
                        ({"reason": "other", "comment": "x" * 5001}, "comment")]:
        r = d1.post("/portal/invoices/F-1/dispute", data=data)
        assert r.status_code == 422, data
        assert 'aria-invalid="true"' in response_text(r) and f'id="{where}-error"' in response_text(r)
    assert count(Dispute) == 0 and not invoice("F-1").disputed and outbox_of("creditor_alert") == []
    # What the debtor typed is kept.
    r = d1.post("/portal/invoices/F-1/dispute", data={"reason": "bogus", "comment": "Keep me"})
    assert "Keep me</textarea>" in response_text(r)

    # Another debtor's invoice, an unknown one, a paid one: not found.
    assert d1.get("/portal/invoices/F-3/dispute").status_code == 404
    assert raise_dispute(d1, "F-3").status_code == 404
    assert d1.get("/portal/invoices/NOPE/dispute").status_code == 404
    assert count(Dispute) == 0


def test_a_paid_invoice_cannot_be_disputed(d1, seeded, app, creditor):
    r = seeded.post("/invoices/F-2/payments", json={"amount": "300.50", "date": "2026-10-01", "reference": "VIR-1"})
    assert r.status_code in (200, 201), r.json
    assert d1.get("/portal/invoices/F-2/dispute").status_code == 404
    assert raise_dispute(d1, "F-2").status_code in (404, 409, 422)
    assert disputes_of("F-2") == []


# --- the thread, replies and e-mails ------------------------------------------------------------


def test_thread_replies_are_emailed_with_a_portal_link(seeded, browser, app, creditor, smtp_server):
    d2 = browser()
    portal_login(d2, app, "D2", creditor.id)
    assert raise_dispute(d2, "F-3", reason="not_received", comment="We never got this invoice.").status_code == 303
    [dispute] = disputes_of("F-3")
    assert outbox.send_pending().sent == 1  # the creditor's alert
    smtp_server.handler.take()

    bo = back_office_login(browser(), creditor)
    queue = response_text(bo.get("/app/disputes"))
    assert "Beta Ltd" in queue and "F-3" in queue and "awaiting your reply" in queue
    nav = re.search(r'href="/app/disputes">Disputes <span class="badge warn">(\d+)</span>', queue)
    assert nav and nav.group(1) == "1"

    r = bo.post(f"/app/disputes/{dispute.id}/reply", content_type="multipart/form-data",
                data={"body": "Here is a copy.\n\nBest regards", "attachment": (io.BytesIO(PDF), "F-3 copy.pdf")})
    assert r.status_code == 303
    look()
    reply = db.session.scalar(select(DisputeMessage).where(DisputeMessage.author == "creditor"))
    assert (reply.author_name, reply.body) == (creditor.email, "Here is a copy.\n\nBest regards")
    [att] = reply.attachments
    assert att.filename == "F-3_copy.pdf" and att.debtor_id == dispute.debtor_id
    [replied] = events_of("dispute.replied")
    assert (replied.actor, replied.data["user"], replied.data["dispute_id"]) == ("creditor", creditor.email, dispute.id)

    # One e-mail to the debtor, in English, with a fresh portal link that opens its portal.
    [message] = outbox_of("dispute_reply")
    assert message.to_addr == "beta@example.com" and message.status == "pending"
    assert outbox.send_pending().sent == 1
    [mail] = smtp_server.handler.take()
    assert mail.rcpt_tos == ["beta@example.com"]
    assert "F-3" in mail.subject and "Here is a copy." in mail.text() and "Here is a copy." in mail.html()
    link = re.search(r"http://portal\.test(/l/\S+)", mail.text()).group(1)
    fresh = browser()
    r = fresh.get(link)  # lands on the thread the e-mail is about
    assert r.status_code == 303 and r.headers["Location"].endswith(f"/portal/disputes/{dispute.id}")
    thread = response_text(fresh.get(r.headers["Location"]))
    assert "Here is a copy." in thread and "F-3_copy.pdf" in thread and "We never got this invoice." in thread
    assert creditor.email not in thread  # the debtor sees the creditor's name, not its user's address

    # The debtor answers; the queue shows the creditor owes a reply again.
    r = fresh.post(f"/portal/disputes/{dispute.id}/messages", data={"body": "Thanks, but the amount is wrong too."})
    assert r.status_code == 303
    look()
    assert [m.author for m in db.session.get(Dispute, dispute.id).messages] == ["debtor", "creditor", "debtor"]
    assert [e.actor for e in events_of("dispute.replied")] == ["creditor", "debtor"]
    assert "awaiting your reply" in response_text(bo.get("/app/disputes?status=open"))
    assert "Thanks, but the amount is wrong too." in response_text(bo.get(f"/app/disputes/{dispute.id}"))
    # ... and is told by e-mail (its default choice), with the message and the debtor's page.
    alert = outbox_of("creditor_alert")[-1]
    assert alert.to_addr == creditor.email and "New message from" in alert.subject
    assert "F-3" in alert.text_body and "Thanks, but the amount is wrong too." in alert.text_body
    assert "/app/debtors/" in alert.text_body

    # An empty reply is refused on both sides.
    assert fresh.post(f"/portal/disputes/{dispute.id}/messages", data={"body": " "}).status_code == 422
    assert bo.post(f"/app/disputes/{dispute.id}/reply", data={"body": ""}).status_code == 422
    look()
    assert len(db.session.get(Dispute, dispute.id).messages) == 3


# --- resolving -------------------------------------------------------------------------------------


def test_rejected_dispute_resumes_reminders_from_the_right_step(d1, back_office, app, creditor, smtp_server):
    assert raise_dispute(d1, "F-1").status_code == 303
    [dispute] = disputes_of("F-1")
    smtp_server.handler.take()
    assert run_days(smtp_server, date(2026, 9, 24), date(2026, 10, 2), date(2026, 10, 9)) == {}
    assert steps("F-1") == []

    r = back_office.post(f"/app/disputes/{dispute.id}/resolve", data={"resolution": "rejected",
                                                                       "note": "The price is the one quoted."})
    assert r.status_code == 303
    [dispute] = disputes_of("F-1")
    assert (dispute.status, dispute.resolution, dispute.adjustment) == ("resolved", "rejected", None)
    assert dispute.resolved_at is not None and not invoice("F-1").disputed
    assert dispute.messages[-1].body == "The price is the one quoted."
    [resolved] = events_of("dispute.resolved")
    assert (resolved.actor, resolved.data["resolution"], resolved.data["dunning"]) == ("creditor", "rejected", "resumed")
    [mail] = outbox_of("dispute_reply")
    assert mail.to_addr == "alpha@example.com" and "The price is the one quoted." in mail.text_body

    # On 10 October (D+9) the ladder starts where the invoice stood, on its first rung (the
    # courtesy notice, missed under the dispute, is not sent late); the second rung a week later.
    seen = run_days(smtp_server, date(2026, 10, 10), date(2026, 10, 11), date(2026, 10, 16), date(2026, 10, 17))
    assert steps("F-1") == ["reminder_1", "reminder_2"]
    assert seen[date(2026, 10, 10)] == [("alpha@example.com", ["F-1"])]
    assert date(2026, 10, 11) not in seen and date(2026, 10, 16) not in seen
    assert seen[date(2026, 10, 17)] == [("alpha@example.com", ["F-1"])]

    # Resolved: no second resolution, no more replies.
    assert back_office.post(f"/app/disputes/{dispute.id}/resolve", data={"resolution": "rejected"}).status_code == 422
    assert d1.post(f"/portal/disputes/{dispute.id}/messages", data={"body": "Hm"}).status_code == 422
    assert len(events_of("dispute.resolved")) == 1
    # The invoice can be disputed again now.
    assert raise_dispute(d1, "F-1", reason="other", comment="New facts").status_code == 303
    assert [d.status for d in disputes_of("F-1")] == ["resolved", "open"]


def test_credit_note_partial_resumes_on_the_rest_full_ends_dunning(d1, back_office, app, creditor, smtp_server):
    raise_dispute(d1, "F-1")
    raise_dispute(d1, "F-2", reason="goods_or_service", comment="Half the goods were damaged.")
    [f1], [f2] = disputes_of("F-1"), disputes_of("F-2")

    # More than the balance, a bad amount, no amount: refused, nothing recorded.
    for amount in ("1200.01", "12.345", "", "-5"):
        r = back_office.post(f"/app/disputes/{f1.id}/resolve", data={"resolution": "credit_note", "amount": amount})
        assert r.status_code == 422, amount
        assert 'id="amount-error"' in response_text(r)
    assert count(Payment) == 0 and disputes_of("F-1")[0].status == "open"

    # A partial credit note (French decimal comma accepted): through the one ledger.
    r = back_office.post(f"/app/disputes/{f1.id}/resolve", data={"resolution": "credit_note", "amount": "200,00"})
    assert r.status_code == 303
    look()
    payment = db.session.scalar(select(Payment).where(Payment.provider == "credit_note"))
    assert (payment.reference, payment.amount, payment.currency) == (f"dispute-{f1.id}", 20000, "EUR")
    assert [(a.invoice_id, a.amount) for a in payment.allocations] == [(f1.invoice_id, 20000)]
    inv = invoice("F-1")
    assert (inv.amount, inv.amount_paid, inv.status, inv.disputed) == (120000, 20000, "partially_paid", False)
    assert disputes_of("F-1")[0].adjustment == 20000

    # A full credit note settles F-2: dunning ends there.
    r = back_office.post(f"/app/disputes/{f2.id}/resolve", data={"resolution": "credit_note", "amount": "300.50"})
    assert r.status_code == 303
    inv2 = invoice("F-2")
    assert (inv2.status, inv2.amount_paid, inv2.disputed) == ("paid", 30050, False)
    resolved = {e.invoice_id: e.data for e in events_of("dispute.resolved")}
    assert resolved[f2.invoice_id]["dunning"] == "ended" and resolved[f1.invoice_id]["dunning"] == "resumed"
    assert len(events_of("invoice.paid")) == 1

    smtp_server.handler.take()
    run_days(smtp_server, date(2026, 10, 2), date(2026, 11, 2), date(2026, 11, 9))
    assert steps("F-1")[:1] == ["reminder_1"]  # reminded on the rest
    assert steps("F-2") == ["thank_you"]  # recorded as not due: nobody paid, nothing to thank for
    look()
    assert db.session.scalar(select(Reminder.status).join(Invoice, Invoice.id == Reminder.invoice_id)
                             .where(Invoice.number == "F-2")) == "cancelled"
    assert outbox_of("thank_you") == []
    look()
    reminded = db.session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "reminder")
                                 .order_by(OutboxMessage.id))
    assert "1,000.00" in reminded.text_body and "1,200.00" not in reminded.text_body  # the balance

    # Both resolutions were e-mailed to the debtor.
    assert len(outbox_of("dispute_reply")) == 2


def test_amount_corrected(d1, back_office, app, creditor, seeded):
    seeded.post("/invoices/F-1/payments", json={"amount": "100.00", "date": "2026-09-15", "reference": "VIR-9"})
    raise_dispute(d1, "F-1")
    [d] = disputes_of("F-1")
    for amount in ("99.99", "0", "1200.00", ""):
        r = back_office.post(f"/app/disputes/{d.id}/resolve", data={"resolution": "amount_corrected", "amount": amount})
        assert r.status_code == 422, amount
    assert invoice("F-1").amount == 120000
    r = back_office.post(f"/app/disputes/{d.id}/resolve", data={"resolution": "amount_corrected", "amount": "1000.00",
                                                                "note": "Corrected to the quote."})
    assert r.status_code == 303
    inv = invoice("F-1")
    assert (inv.amount, inv.amount_paid, inv.status, inv.disputed, inv.balance) == (
        100000, 10000, "partially_paid", False, 90000)
    [d] = disputes_of("F-1")
    assert (d.resolution, d.adjustment) == ("amount_corrected", 20000)
    [updated] = [e for e in events_of("invoice.updated") if e.data.get("dispute_id") == d.id]
    assert (updated.data["amount_before"], updated.data["amount"], updated.data["fields"]) == (120000, 100000, ["amount"])
    assert events_of("dispute.resolved")[0].data["adjustment"] == 20000
    # The API says the same.
    got = seeded.get("/invoices/F-1").json
    assert (got["amount"], got["balance"], got["disputed"]) == ("1000.00", "900.00", False)
    # A rejection with an amount, an unknown resolution: refused (and this one is resolved already).
    assert back_office.post(f"/app/disputes/{d.id}/resolve", data={"resolution": "rejected"}).status_code == 422


def test_resolution_form_refuses_bad_input(d1, back_office, app, creditor):
    raise_dispute(d1, "F-1")
    [d] = disputes_of("F-1")
    for data in ({"resolution": "maybe"}, {"resolution": "rejected", "amount": "10.00"}, {}):
        r = back_office.post(f"/app/disputes/{d.id}/resolve", data=data)
        assert r.status_code == 422, data
    assert disputes_of("F-1")[0].status == "open" and invoice("F-1").disputed


# --- attachments ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, content, why", [
    ("invoice.pdf", b"<html><script>alert(1)</script></html>", "type"),  # claims PDF, is HTML
    ("notes.txt", b"just text", "type"),
    ("empty.pdf", b"", "type"),
    ("big.pdf", PDF + b"0" * (5 * MB), "size"),
    ("../../etc/passwd.pdf", PDF, "name"),
    ("..\\..\\windows\\evil.pdf", PDF, "name"),
    ("/tmp/abs.pdf", PDF, "name"),
    ("nul\x00.pdf", PDF, "name"),
    ("report..pdf", PDF, "name"),
])
def test_bad_attachments_are_refused(d1, app, creditor, name, content, why):
    r = raise_dispute(d1, "F-1", file=(name, content))
    assert r.status_code == 422
    body = response_text(r)
    assert 'id="attachment-error"' in body
    assert {"type": "Only PDF, PNG or JPEG", "size": "5 MB at most", "name": "file name cannot be used"}[why] in body
    assert count(Dispute) == 0 and count(DisputeAttachment) == 0 and not invoice("F-1").disputed
    assert "The amount is not what we agreed.</textarea>" in body  # the comment is kept


def test_a_request_over_the_server_limit_says_the_file_is_too_large(seeded, make_app, app_config, app, creditor):
    """MAX_CONTENT_LENGTH refuses it while the form is read (CSRF reads it first, here on)."""
    client = make_app(**app_config, MAX_CONTENT_LENGTH=MB, WTF_CSRF_ENABLED=True).test_client()
    portal_login(client, app, "D1", creditor.id)
    r = raise_dispute(client, "F-1", file=("big.pdf", PDF + b"0" * (2 * MB)))
    assert r.status_code == 303 and r.headers["Location"].endswith("/portal/invoices/F-1/dispute")
    assert "The file is too large: 5 MB at most." in flashes(response_text(client.get(r.headers["Location"])))
    assert count(Dispute) == 0


def test_attachment_names_types_and_limit(d1, app, creditor):
    # Exactly 5 MB is accepted; the type comes from the bytes, the name is made safe and truthful.
    big = PDF + b"0" * (5 * MB - len(PDF))
    assert raise_dispute(d1, "F-1", file=("my scan é;.pdf", big)).status_code == 303
    [d] = disputes_of("F-1")
    for name, content in [("photo.png", JPEG), ("schéma", PNG), ("_.", PDF), ("scan.exe", PDF)]:
        r = d1.post(f"/portal/disputes/{d.id}/messages", content_type="multipart/form-data",
                    data={"body": "another", "attachment": (io.BytesIO(content), name, "text/html")})
        assert r.status_code == 303, name
    look()
    got = [(a.filename, a.content_type, a.size) for a in db.session.scalars(
        select(DisputeAttachment).order_by(DisputeAttachment.id))]
    assert got == [("my_scan_e.pdf", "application/pdf", 5 * MB), ("photo.jpg", "image/jpeg", len(JPEG)),
                   ("schema.png", "image/png", len(PNG)), ("attachment.pdf", "application/pdf", len(PDF)),
                   ("scan.pdf", "application/pdf", len(PDF))]


def test_attachments_reach_that_debtor_and_that_creditor_only(d1, seeded, browser, app, creditor, new_creditor):
    assert raise_dispute(d1, "F-1", file=("proof.png", PNG)).status_code == 303
    [d] = disputes_of("F-1")
    [att] = d.messages[0].attachments
    url = f"/portal/disputes/{d.id}/attachments/{att.id}"

    r = d1.get(url)
    assert r.status_code == 200 and r.data == PNG
    assert r.headers["Content-Type"] == "image/png"
    assert r.headers["Content-Disposition"] == 'attachment; filename="proof.png"'
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert events_of("attachment.downloaded")[0].data["attachment_id"] == att.id

    # D2, with a dispute of its own: neither D1's dispute nor D1's attachment through its own dispute.
    d2 = browser()
    portal_login(d2, app, "D2", creditor.id)
    raise_dispute(d2, "F-3", file=("mine.pdf", PDF))
    [own] = disputes_of("F-3")
    for path in (url, f"/portal/disputes/{own.id}/attachments/{att.id}", f"/portal/disputes/{d.id}"):
        r = d2.get(path)
        assert r.status_code == 404 and PNG not in r.data, path
    r = d2.post(f"/portal/disputes/{d.id}/messages", data={"body": "intrusion"})
    assert r.status_code == 404
    # Without a portal session: nothing either.
    assert browser().get(url).status_code == 401

    # Its creditor can; another creditor cannot, not even knowing the ids.
    bo = back_office_login(browser(), creditor)
    r = bo.get(f"/app/disputes/{d.id}/attachments/{att.id}")
    assert r.status_code == 200 and r.data == PNG and r.headers["Content-Disposition"].startswith("attachment;")
    other = back_office_login(browser(), new_creditor("Other Ltd"))
    for path in (f"/app/disputes/{d.id}/attachments/{att.id}", f"/app/disputes/{d.id}"):
        r = other.get(path)
        assert r.status_code == 404 and PNG not in r.data, path
    assert "Alpha SARL" not in response_text(other.get("/app/disputes"))
    for action in ("reply", "resolve"):
        assert other.post(f"/app/disputes/{d.id}/{action}", data={"body": "x", "resolution": "rejected"}).status_code == 404
    look()
    assert db.session.get(Dispute, d.id).status == "open" and len(db.session.get(Dispute, d.id).messages) == 1
    assert outbox_of("dispute_reply") == []
    [downloaded_by_creditor] = [e for e in events_of("attachment.downloaded") if e.actor == "creditor"]
    assert downloaded_by_creditor.creditor_id == creditor.id


def test_back_office_pages(d1, back_office, app, creditor):
    raise_dispute(d1, "F-1", reason="already_paid", comment="Paid by transfer")
    raise_dispute(d1, "F-2", reason="other", comment="Second one")
    [f1], [f2] = disputes_of("F-1"), disputes_of("F-2")
    back_office.post(f"/app/disputes/{f2.id}/resolve", data={"resolution": "rejected"})
    everything = response_text(back_office.get("/app/disputes"))
    assert everything.index(f"/app/disputes/{f1.id}\"") < everything.index(f"/app/disputes/{f2.id}\"")  # open first
    only_open = response_text(back_office.get("/app/disputes?status=open"))
    assert f"/app/disputes/{f1.id}\"" in only_open and f"/app/disputes/{f2.id}\"" not in only_open
    only_resolved = response_text(back_office.get("/app/disputes?status=resolved"))
    assert f"/app/disputes/{f2.id}\"" in only_resolved and f"/app/disputes/{f1.id}\"" not in only_resolved
    detail = response_text(back_office.get(f"/app/disputes/{f1.id}"))
    assert "Paid by transfer" in detail and "Already paid" in detail and 'name="resolution"' in detail
    assert "dispute.opened" not in detail  # the invoice's activity, in words
    assert re.search(r"disputed invoice\s*<a[^>]*>F-1</a>|Opened a dispute", detail), detail
    resolved_page = response_text(back_office.get(f"/app/disputes/{f2.id}"))
    assert 'name="resolution"' not in resolved_page and "Rejected" in resolved_page
    assert back_office.get("/app/disputes/999999").status_code == 404
