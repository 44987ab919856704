"""The approval list of formal notices, beyond one debtor at a time: what waits (and what a
letter would lack), the count the menu and dashboard show, a preview of the letter exactly as
approving would build it, and deciding several at once.

Deciding several at once takes each debtor in its own transaction (reminders.approve/skip):
each notice is a decision about one debtor, so one that cannot go (no postal address for a
letter, paid or decided meanwhile) must not hold back the others; the result names both.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import func, select

from ..extensions import db
from ..models import Creditor, Debtor, Reminder
from . import Invalid, NotFound, reminders

DELIVERIES = reminders.DELIVERIES


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
            for debtor, rows in reminders.awaiting(creditor_id, today)]


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
        message = reminders.approve(creditor, debtor_id, day, user="preview", delivery=delivery, dry_run=True)
        if message is None:
            raise NotFound("the invoices were paid, cancelled or disputed meanwhile")
        return message.attachment, message.attachment_name
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
            if reminders.skip(creditor_id, debtor_id, user=user):
                done.skipped.append(name)
            else:
                done.missing += 1
            continue
        try:
            message = reminders.approve(creditor, debtor_id, day, user=user, delivery=choices[debtor_id])
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
