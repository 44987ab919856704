"""Reminder messages: one per debtor and day, listing every invoice that reached a step, in the
tone of the most advanced one; formal notices after the creditor's approval; thank-you notes.

A message is written to the outbox in the same transaction as the reminders it carries and
the portal link it contains; the outbox sends it after commit.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, parseaddr

from flask import current_app, render_template
from flask_babel import force_locale
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..domain.charges import MissingReferenceRate, late_charges
from ..domain.money import format_money
from ..extensions import db
from ..models import (OPEN_STATUSES, Creditor, Debtor, DunningStep, Invoice, OutboxMessage, ReferenceRate, Reminder,
                      utcnow)
from . import Invalid, NotFound, events, links
from .plans import render_text



@dataclass
class Item:
    invoice: Invoice
    reminder: Reminder
    days_late: int
    interest: int
    indemnity: int


def reference_rates() -> list[tuple[date, int]]:
    return [(r.effective_from, r.rate_bp) for r in db.session.scalars(select(ReferenceRate))]


def _items(creditor: Creditor, debtor: Debtor, rows, day: date, steps: dict[int, DunningStep]) -> list[Item]:
    rates = None
    items = []
    for reminder, invoice in rows:
        step = steps.get(reminder.step_id)
        interest = indemnity = 0
        if step is not None and step.adds_charges and debtor.kind == "business":
            rates = rates if rates is not None else reference_rates()
            try:
                charges = late_charges(invoice.balance, invoice.currency, invoice.due_date, day,
                                       debtor_kind=debtor.kind, reference_rates=rates,
                                       contractual_bp=creditor.late_interest_bp)
                interest, indemnity = charges.interest, charges.indemnity
            except MissingReferenceRate as e:
                # Never state a guessed rate: the indemnity alone, and the creditor is told.
                current_app.logger.warning("%s", e)
                indemnity = late_charges(invoice.balance, invoice.currency, invoice.due_date, day,
                                         debtor_kind=debtor.kind, reference_rates=[], contractual_bp=0).indemnity
                events.record("charges.rate_missing", creditor_id=creditor.id, debtor_id=debtor.id,
                              invoice_id=invoice.id, actor="system", error=str(e))
        reminder.interest, reminder.indemnity = interest, indemnity
        items.append(Item(invoice, reminder, max(0, (day - invoice.due_date).days), interest, indemnity))
    return items


def _lock_debtor(debtor_id: int) -> Debtor | None:
    """Row lock with SKIP LOCKED: a debtor being composed by another worker is left to it."""
    return db.session.scalar(select(Debtor).where(Debtor.id == debtor_id).with_for_update(skip_locked=True))


def compose_day(creditor: Creditor, day: date) -> int:
    """Turn every planned reminder of the creditor into messages; returns messages written."""
    debtor_ids = db.session.scalars(
        select(Reminder.debtor_id).where(Reminder.creditor_id == creditor.id, Reminder.status == "planned",
                                         Reminder.message_id.is_(None)).distinct()).all()
    db.session.commit()
    written = 0
    for debtor_id in debtor_ids:
        written += _compose_debtor(creditor, debtor_id, day)
    return written


def _compose_debtor(creditor: Creditor, debtor_id: int, day: date) -> int:
    debtor = _lock_debtor(debtor_id)
    if debtor is None:
        db.session.rollback()
        return 0
    rows = db.session.execute(
        select(Reminder, Invoice).join(Invoice, Invoice.id == Reminder.invoice_id)
        .where(Reminder.debtor_id == debtor.id, Reminder.status == "planned", Reminder.message_id.is_(None))
        .order_by(Invoice.due_date, Invoice.id)).all()
    thanks, dunning = [], []
    for reminder, invoice in rows:
        if reminder.step_code == "thank_you":
            thanks.append((reminder, invoice))
        elif invoice.status in OPEN_STATUSES and not invoice.disputed:
            dunning.append((reminder, invoice))
        else:  # paid or disputed since it was planned: nothing to chase
            reminder.status = "cancelled"
    written = 0
    if dunning:
        written += _write(creditor, debtor, "reminder", dunning, day)
    if thanks:
        written += _write(creditor, debtor, "thank_you", thanks, day)
    db.session.commit()
    return written


def _write(creditor: Creditor, debtor: Debtor, kind: str, rows, day: date) -> int:
    """One message for these reminders, inside a savepoint: if the debtor already had its
    message of this kind today, the reminders wait for tomorrow's."""
    step_ids = {r.step_id for r, _ in rows if r.step_id}
    steps = {s.id: s for s in db.session.scalars(select(DunningStep).where(DunningStep.id.in_(step_ids)))}
    top = max(steps.values(), key=lambda s: s.position) if steps else None
    if kind == "thank_you" and not debtor.email:
        for reminder, _ in rows:
            reminder.status = "cancelled"
        return 0
    channel = "letter" if (not debtor.email or (top is not None and top.channel == "letter")) else "email"
    try:
        with db.session.begin_nested():
            items = _items(creditor, debtor, rows, day, steps)
            message = build_message(creditor, debtor, kind, items, top, day, channel,
                                    daily_key=f"{kind}:{debtor.id}:{day.isoformat()}")
            for item in items:
                item.reminder.message_id = message.id
                if channel == "letter":  # waits in the print queue: the reminder is done
                    item.reminder.status = "sent"
        return 1
    except IntegrityError:
        return 0


def build_message(creditor: Creditor, debtor: Debtor, kind: str, items: list[Item], step: DunningStep | None,
                  day: date, channel: str, daily_key: str | None, delivery: str | None = None) -> OutboxMessage:
    """Render and store one message with a fresh portal link preselecting its invoices; `delivery`
    (email, letter, registered: chosen at approval) is stated by the letter and kept on the row."""
    issued = links.issue(debtor, issued_by="reminder", commit=False,
                         invoice_numbers=[i.invoice.number for i in items if i.invoice.status in OPEN_STATUSES] or None)
    deadline = day + timedelta(days=creditor.formal_notice_days)
    subject, text_body, html_body = render_message(creditor, debtor, kind, items, step, issued.url, day, deadline,
                                                   delivery=delivery)
    attachment = name = None
    if kind == "formal_notice" or channel == "letter":
        attachment = letter_pdf(creditor, debtor, kind, items, step, issued.url, day, deadline, delivery=delivery)
        name = f"{'mise-en-demeure' if kind == 'formal_notice' else 'relance'}-{debtor.ref.replace('/', '-')}-{day}.pdf"
    domain = parseaddr(current_app.config["MAIL_FROM"])[1].rpartition("@")[2] or "relance.local"
    message = OutboxMessage(creditor_id=creditor.id, debtor_id=debtor.id, kind=kind, channel=channel,
                            daily_key=daily_key, to_addr=debtor.email if channel == "email" else None,
                            subject=subject, text_body=text_body, html_body=html_body, attachment=attachment,
                            attachment_name=name, delivery=delivery, message_id_header=f"<{uuid.uuid4().hex}@{domain}>",
                            status="pending" if channel == "email" else "letter", next_attempt_at=utcnow())
    message.created_at = message.next_attempt_at  # the Date header, needed before the INSERT
    if channel == "email":
        message.raw = smtp_bytes(message, creditor)
    db.session.add(message)
    db.session.flush()
    events.record("message.planned", creditor_id=creditor.id, debtor_id=debtor.id, actor="system",
                  message_id=message.id, kind=kind, channel=channel, step=step.code if step else kind,
                  invoices=[i.invoice.number for i in items], date=day.isoformat())
    return message


def to_email(message: OutboxMessage, creditor: Creditor) -> EmailMessage:
    """The e-mail of an outbox message: text, HTML alternative and the PDF if any."""
    email = EmailMessage()
    email["From"] = current_app.config["MAIL_FROM"]
    email["To"] = message.to_addr
    email["Reply-To"] = creditor.email
    email["Subject"] = message.subject
    email["Message-ID"] = message.message_id_header
    email["Date"] = format_datetime(message.created_at)
    email["Auto-Submitted"] = "auto-generated"
    email["X-Relance-Kind"] = message.kind
    email.set_content(message.text_body)
    email.add_alternative(message.html_body, subtype="html")
    if message.attachment:
        email.add_attachment(message.attachment, maintype="application", subtype="pdf",
                             filename=message.attachment_name)
    return email


def smtp_bytes(message: OutboxMessage, creditor: Creditor) -> bytes:
    """RFC 5322 bytes with CRLF line ends, as they go over SMTP (before dot-stuffing)."""
    return to_email(message, creditor).as_bytes(policy=SMTP_POLICY)


def _context(creditor, debtor, kind, items, step, url, day, deadline) -> dict:
    currency = items[0].invoice.currency if items else creditor.currency
    total = sum(i.invoice.balance for i in items if i.invoice.currency == currency)
    charges = sum(i.interest + i.indemnity for i in items if i.invoice.currency == currency)
    lang = debtor.language
    values = {"debtor_name": debtor.name, "creditor_name": creditor.name, "count": len(items),
              "total": format_money(total, currency, lang),
              "deadline": deadline.strftime("%d/%m/%Y") if lang == "fr" else deadline.isoformat()}
    subject = intro = None
    if step is not None:
        subject = render_text(getattr(step, f"subject_{lang}"), **values)
        intro = render_text(getattr(step, f"body_{lang}"), **values)
    return dict(creditor=creditor, debtor=debtor, kind=kind, items=items, step=step, url=url, day=day,
                deadline=deadline, currency=currency, total=total, charges=charges, subject=subject,
                intro=intro, lang=lang, with_charges=any(i.interest or i.indemnity for i in items))


def render_message(creditor, debtor, kind, items, step, url, day, deadline, delivery=None) -> tuple[str, str, str]:
    ctx = _context(creditor, debtor, kind, items, step, url, day, deadline) | {"delivery": delivery}
    with force_locale(debtor.language):
        if ctx["subject"] is None:  # thank-you notes have no step
            ctx["subject"] = render_template("email/subject_thank_you.txt", **ctx).strip()
        text_body = render_template("email/message.txt", **ctx)
        html_body = render_template("email/message.html", **ctx)
    return " ".join(ctx["subject"].split())[:300], text_body, html_body


def letter_pdf(creditor, debtor, kind, items, step, url, day, deadline, delivery=None) -> bytes:
    from weasyprint import HTML  # imported late: it loads Pango, which only PDF letters need

    ctx = _context(creditor, debtor, kind, items, step, url, day, deadline) | {"delivery": delivery}
    with force_locale(debtor.language):
        html = render_template("pdf/letter.html", **ctx)
    return HTML(string=html).write_pdf()


# --- approvals of formal notices --------------------------------------------------------------

def awaiting(creditor_id: int, today: date):
    """(debtor, [(reminder, invoice)]) waiting for the creditor's decision, postponed ones hidden."""
    rows = db.session.execute(
        select(Reminder, Invoice, Debtor).join(Invoice, Invoice.id == Reminder.invoice_id)
        .join(Debtor, Debtor.id == Reminder.debtor_id)
        .where(Reminder.creditor_id == creditor_id, Reminder.status == "awaiting_approval",
               (Reminder.postponed_to.is_(None)) | (Reminder.postponed_to <= today))
        .order_by(Debtor.name, Invoice.due_date)).all()
    grouped: dict[int, tuple[Debtor, list]] = {}
    for reminder, invoice, debtor in rows:
        grouped.setdefault(debtor.id, (debtor, []))[1].append((reminder, invoice))
    return list(grouped.values())


def _awaiting_for(creditor_id: int, debtor_id: int):
    return db.session.execute(
        select(Reminder, Invoice).join(Invoice, Invoice.id == Reminder.invoice_id)
        .where(Reminder.creditor_id == creditor_id, Reminder.debtor_id == debtor_id,
               Reminder.status == "awaiting_approval").with_for_update()).all()


#: how a formal notice leaves, chosen at approval (OutboxMessage.delivery)
DELIVERIES = ("email", "letter", "registered")


def approve(creditor: Creditor, debtor_id: int, day: date, user: str, delivery: str | None = None, *,
            dry_run: bool = False) -> OutboxMessage | None:
    """Send the debtor's pending formal notice the way the creditor chose: `delivery` "email"
    (the letter attached), "letter" or "registered" (with acknowledgement; both go to the print
    queue); default e-mail when the debtor has an address, else a registered letter. A letter
    needs the debtor's postal address.

    dry_run builds exactly the same message (the preview) and commits nothing: the caller reads
    it and rolls back, so no reminder, link or event is left behind."""
    rows = _awaiting_for(creditor.id, debtor_id)
    if not rows:
        raise NotFound("nothing awaits approval for this debtor")
    debtor = db.session.get(Debtor, debtor_id)
    delivery = delivery or ("email" if debtor.email else "registered")
    refusal = (("delivery", "choose e-mail, letter or registered letter") if delivery not in DELIVERIES else
               ("no_email", "the debtor has no e-mail address") if delivery == "email" and not debtor.email else
               ("no_address", "the debtor has no postal address") if delivery != "email" and not debtor.address
               and not dry_run else None)
    if refusal:
        db.session.rollback()
        raise Invalid(refusal[1], field="delivery", code=refusal[0])
    live = [(r, i) for r, i in rows if i.status in OPEN_STATUSES and not i.disputed]
    for reminder, invoice in rows:
        reminder.decided_at = utcnow()
        if (reminder, invoice) not in live:
            reminder.status = "cancelled"
    message = None
    if live:
        steps = {s.id: s for s in db.session.scalars(select(DunningStep).where(
            DunningStep.id.in_({r.step_id for r, _ in live})))}
        top = max(steps.values(), key=lambda s: s.position)
        items = _items(creditor, debtor, live, day, steps)
        channel = "email" if delivery == "email" else "letter"
        message = build_message(creditor, debtor, "formal_notice", items, top, day, channel, daily_key=None,
                                delivery=delivery)
        for item in items:
            item.reminder.status = "planned" if channel == "email" else "sent"
            item.reminder.message_id = message.id
        events.record("reminder.approved", creditor_id=creditor.id, debtor_id=debtor_id, actor="creditor",
                      user=user, message_id=message.id, invoices=[i.invoice.number for i in items],
                      delivery=delivery)
    if not dry_run:
        db.session.commit()
    return message


def skip(creditor_id: int, debtor_id: int, user: str) -> int:
    rows = _awaiting_for(creditor_id, debtor_id)
    for reminder, invoice in rows:
        reminder.status, reminder.decided_at = "skipped", utcnow()
        events.record("reminder.skipped", creditor_id=creditor_id, debtor_id=debtor_id, invoice_id=invoice.id,
                      actor="creditor", user=user, step=reminder.step_code)
    db.session.commit()
    return len(rows)


def postpone(creditor_id: int, debtor_id: int, until: date, user: str) -> int:
    rows = _awaiting_for(creditor_id, debtor_id)
    for reminder, invoice in rows:
        reminder.postponed_to = until
        events.record("reminder.postponed", creditor_id=creditor_id, debtor_id=debtor_id, invoice_id=invoice.id,
                      actor="creditor", user=user, until=until.isoformat())
    db.session.commit()
    return len(rows)


def last_sent(invoice_ids: list[int]) -> dict[int, dict]:
    """Per invoice, the most advanced reminder step sent and when (the API's last_reminder)."""
    if not invoice_ids:
        return {}
    rows = db.session.execute(
        select(Reminder.invoice_id, Reminder.step_code, Reminder.position, OutboxMessage.sent_at,
               OutboxMessage.created_at)
        .join(OutboxMessage, OutboxMessage.id == Reminder.message_id)
        .where(Reminder.invoice_id.in_(invoice_ids), Reminder.status == "sent",
               Reminder.step_code != "thank_you")).all()
    best: dict[int, tuple] = {}
    for invoice_id, step, position, sent_at, created_at in rows:
        if invoice_id not in best or position > best[invoice_id][0]:
            best[invoice_id] = (position, {"step": step, "sent_at": (sent_at or created_at).isoformat()})
    return {k: v[1] for k, v in best.items()}
