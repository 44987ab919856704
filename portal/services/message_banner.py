"""The portal's banner for the message a debtor came from: "Notre relance du 19 novembre 2026",
the amount it asked (the message's own figure, never recomputed), the late-payment charges it
claimed (as frozen on its reminders at composing: services/composing._freeze_charges) and its
deadline. Only that debtor's message: the queries filter by the session's debtor id."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select

from ..domain.long_dates import long_date
from ..extensions import db
from ..models import OPEN_STATUSES, Event, Invoice, OutboxMessage, Reminder


@dataclass(frozen=True)
class Banner:
    message_id: int
    #: reminder or formal_notice
    kind: str
    day: date
    amount: int
    currency: str
    deadline: date | None
    #: the day and deadline in the long format of the page's language
    day_text: str
    deadline_text: str | None
    #: what the items the message asked for still owe now, when it is less than it asked
    remaining: int | None
    #: the charges the message claimed with it, part of `amount` (0: none)
    interest: int = 0
    indemnity: int = 0

    @property
    def charges(self) -> int:
        return self.interest + self.indemnity


def _message_day(message: OutboxMessage) -> date:
    """The dunning day the message was written for, as its "message.planned" event recorded it
    (a formal notice is written on the day of its approval, not the day it was planned)."""
    for (data,) in db.session.execute(select(Event.data).where(
            Event.debtor_id == message.debtor_id, Event.type == "message.planned").order_by(Event.id.desc())
            .limit(200)):
        if data.get("message_id") == message.id and data.get("date"):
            return date.fromisoformat(data["date"])
    return db.session.scalar(select(func.max(Reminder.dunning_date)).where(
        Reminder.message_id == message.id)) or message.created_at.date()


def for_session(debtor_id: int, message_id: int | None, numbers: list[str], lang: str) -> Banner | None:
    """The banner of `message_id` if it is `debtor_id`'s message and asked for an amount, else None.
    `numbers`: the open items the message's link preselected."""
    if not isinstance(message_id, int):
        return None
    message = db.session.scalar(select(OutboxMessage).where(OutboxMessage.id == message_id,
                                                            OutboxMessage.debtor_id == debtor_id))
    if message is None or message.amount is None or message.currency is None:
        return None
    day = _message_day(message)
    remaining = None
    if numbers:
        owed = db.session.scalar(select(func.coalesce(func.sum(Invoice.amount - Invoice.amount_paid), 0)).where(
            Invoice.debtor_id == debtor_id, Invoice.number.in_(numbers), Invoice.status.in_(OPEN_STATUSES),
            Invoice.currency == message.currency))
        remaining = int(owed) if owed < message.amount else None
    interest, indemnity = db.session.execute(select(
        func.coalesce(func.sum(Reminder.interest), 0), func.coalesce(func.sum(Reminder.indemnity), 0)).where(
        Reminder.message_id == message.id, Reminder.debtor_id == debtor_id)).one()
    return Banner(message.id, message.kind, day, message.amount, message.currency, message.deadline,
                  long_date(day, lang), long_date(message.deadline, lang) if message.deadline else None, remaining,
                  int(interest), int(indemnity))
