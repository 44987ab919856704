"""Formal notices wait for the creditor: the list awaiting a decision (and what a letter would
lack), the count the menu and dashboard show, approve (the message is composed then, with the
figures of the day of approval), a preview of the letter exactly as approving would build it,
skip, postpone, and deciding several at once.

Deciding several at once takes each debtor in its own transaction: each notice is a decision
about one debtor, so one that cannot go (no postal address for a letter, paid or decided
meanwhile) must not hold back the others; the result names both."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import func, select

from ..extensions import db
from ..models import OPEN_STATUSES, Creditor, Debtor, Invoice, OutboxMessage, Reminder, utcnow
from . import Invalid, NotFound, events, ladder, letters
from .composing import build_message, top_step


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
    needs the debtor's postal address. The message is composed now, with the day's figures.

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
        channel = "email" if delivery == "email" else "letter"
        message = build_message(creditor, debtor, "formal_notice", live, [], top_step(live), day, channel,
                                daily_key=None, delivery=delivery)
        for reminder, _ in live:
            reminder.status = "planned" if channel == "email" else "sent"
        if channel == "letter":  # approved into the print queue: sent, the invoices climb
            ladder.record_sent([reminder for reminder, _ in live], day)
        events.record("reminder.approved", creditor_id=creditor.id, debtor_id=debtor_id, actor="creditor",
                      user=user, message_id=message.id, invoices=[i.number for _, i in live], delivery=delivery)
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


@dataclass
class Waiting:
    """One debtor's formal notice awaiting approval."""
    debtor: Debtor
    rows: list  # (reminder, invoice)
    #: the delivery offered first: e-mail when the debtor has one, else a registered letter
    delivery: str

    @property
    def deliveries(self) -> tuple[str, ...]:
        return DELIVERIES if self.debtor.email else DELIVERIES[1:]

    @property
    def letter_without_address(self) -> bool:
        return not self.debtor.address


def waiting(creditor_id: int, today: date) -> list[Waiting]:
    return [Waiting(debtor, rows, "email" if debtor.email else "registered")
            for debtor, rows in awaiting(creditor_id, today)]


def waiting_count(creditor_id: int, today: date) -> int:
    """Formal notices (one per debtor) waiting for a decision today, postponed ones left out."""
    return db.session.scalar(
        select(func.count(func.distinct(Reminder.debtor_id)))
        .where(Reminder.creditor_id == creditor_id, Reminder.status == "awaiting_approval",
               (Reminder.postponed_to.is_(None)) | (Reminder.postponed_to <= today))) or 0


def preview(creditor: Creditor, debtor_id: int, day: date, delivery: str | None) -> tuple[bytes, str]:
    """The letter (PDF) and its file name as approving would send it now: approve() itself runs
    in dry-run mode and everything it did (reminders, the portal link, events) is rolled back."""
    try:
        message = approve(creditor, debtor_id, day, user="preview", delivery=delivery, dry_run=True)
        if message is None:
            raise NotFound("the invoices were paid, cancelled or disputed meanwhile")
        return letters.pdf_of(message), message.attachment_name
    finally:
        db.session.rollback()


@dataclass
class Decided:
    """What deciding several notices did, by debtor name."""
    approved: list[tuple[str, str]] = field(default_factory=list)  # (name, delivery)
    skipped: list[str] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (name, reason code)
    paid: list[str] = field(default_factory=list)  # paid, cancelled or disputed meanwhile: nothing sent
    missing: int = 0  # nothing waiting (decided meanwhile, or not this creditor's debtor)


def decide(creditor: Creditor, action: str, choices: dict[int, str | None], day: date, user: str) -> Decided:
    """Approve (with each debtor's chosen delivery) or skip the notices of these debtors, each
    in its own transaction. Debtors of another creditor count as missing."""
    if action not in ("approve", "skip"):
        raise Invalid("choose approve or skip", field="action")
    names = dict(db.session.execute(select(Debtor.id, Debtor.name).where(
        Debtor.creditor_id == creditor.id, Debtor.id.in_(list(choices)))).all())
    creditor_id = creditor.id
    db.session.rollback()
    done = Decided(missing=len(set(choices) - set(names)))
    for debtor_id in sorted(names, key=names.get):
        name = names[debtor_id]
        if action == "skip":
            if skip(creditor_id, debtor_id, user=user):
                done.skipped.append(name)
            else:
                done.missing += 1
            continue
        try:
            message = approve(creditor, debtor_id, day, user=user, delivery=choices[debtor_id])
        except NotFound:
            done.missing += 1
        except Invalid as e:
            done.refused.append((name, e.code))
        else:
            if message is None:
                done.paid.append(name)
            else:
                done.approved.append((name, message.delivery))
    return done
