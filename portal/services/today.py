"""Today, the back office's home: what waits for a person this morning, in six lists (formal
notices to approve, disputes waiting for our reply, promises broken, e-mails the receiving server
refused, calls due, bank suggestions to confirm), and their counts for the menu.

Each list is defined once, as a select of its rows (`_SECTIONS`): `work()` reads the rows (one
query per list, whatever the number of debtors) and `counts()` counts every list, plus the menu's
other badges, in a single query, so the menu and the page can never disagree. Within a list the
most at stake comes first, then the oldest ("prioritise by urgency and amount at stake")."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import exists, func, literal, or_, select
from sqlalchemy.orm import aliased

from ..domain.calendar import local_now
from ..extensions import db
from ..models import (OPEN_STATUSES, TX_SUGGESTED, BankTransaction, Creditor, Debtor, Dispute, DisputeMessage,
                      Invoice, OutboxMessage, PaymentPromise, Reminder, Task)

#: the order of the page and of the total
SECTIONS = ("approvals", "disputes", "promises", "bounces", "calls", "bank")
#: a broken promise is news for this long after its date; later it is just an overdue invoice
PROMISE_NEWS_DAYS = 30
#: rows shown per list; the count says how many there are in all
LIMIT = 100


@dataclass(frozen=True)
class Item:
    """One thing to do: who, how much is at stake, since when (creditor's calendar), and what
    the link to act on it needs."""
    debtor_ref: str | None
    debtor_name: str | None
    amount: int
    currency: str
    since: date
    #: what it is about: invoice numbers, the refused address, the payer's name on the transfer
    detail: str
    #: the row the link points at (debtor, dispute, task or transaction id)
    target: int
    #: a call assigned to the signed-in user
    mine: bool = False
    #: the server's answer for a refused e-mail, the reason of a dispute or a suggestion, how many
    #: invoices a formal notice names
    note: str | None = None


def _balance():
    return Invoice.amount - Invoice.amount_paid


def _approvals(creditor_id: int, today: date):
    """One formal notice per debtor, postponed ones left out (as the approvals page lists them)."""
    return (select(Debtor.id.label("target"), Debtor.ref, Debtor.name, func.sum(_balance()).label("amount"),
                   func.min(Invoice.currency).label("currency"), func.min(Reminder.dunning_date).label("since"),
                   func.min(Invoice.number).label("detail"), func.count().label("note"))
            .select_from(Reminder).join(Invoice, Invoice.id == Reminder.invoice_id)
            .join(Debtor, Debtor.id == Reminder.debtor_id)
            .where(Reminder.creditor_id == creditor_id, Reminder.status == "awaiting_approval",
                   or_(Reminder.postponed_to.is_(None), Reminder.postponed_to <= today))
            .group_by(Debtor.id, Debtor.ref, Debtor.name))


def _disputes(creditor_id: int, today: date):
    """Open disputes whose last word is the debtor's (or that have none): we owe a reply."""
    open_ones = select(Dispute.id).where(Dispute.creditor_id == creditor_id, Dispute.status == "open")
    last = (select(DisputeMessage.dispute_id, func.max(DisputeMessage.id).label("last_id"))
            .where(DisputeMessage.dispute_id.in_(open_ones))  # this creditor's open ones, not every thread
            .group_by(DisputeMessage.dispute_id).subquery())
    message = aliased(DisputeMessage)
    return (select(Dispute.id.label("target"), Debtor.ref, Debtor.name, _balance().label("amount"),
                   Invoice.currency, func.coalesce(message.created_at, Dispute.opened_at).label("since"),
                   Invoice.number.label("detail"), Dispute.reason.label("note"))
            .select_from(Dispute).join(Invoice, Invoice.id == Dispute.invoice_id)
            .join(Debtor, Debtor.id == Dispute.debtor_id)
            .outerjoin(last, last.c.dispute_id == Dispute.id).outerjoin(message, message.id == last.c.last_id)
            .where(Dispute.creditor_id == creditor_id, Dispute.status == "open",
                   or_(message.author.is_(None), message.author != "creditor")))


def _promises(creditor_id: int, today: date):
    """Promises broken lately on invoices still owed, the latest promise of each invoice only (a
    newer promise, live or broken, supersedes it)."""
    newer = aliased(PaymentPromise)
    return (select(Debtor.id.label("target"), Debtor.ref, Debtor.name, _balance().label("amount"), Invoice.currency,
                   PaymentPromise.promised_date.label("since"), Invoice.number.label("detail"))
            .select_from(PaymentPromise).join(Invoice, Invoice.id == PaymentPromise.invoice_id)
            .join(Debtor, Debtor.id == PaymentPromise.debtor_id)
            .where(PaymentPromise.creditor_id == creditor_id, PaymentPromise.status == "broken",
                   PaymentPromise.promised_date >= today - timedelta(days=PROMISE_NEWS_DAYS),
                   Invoice.status.in_(OPEN_STATUSES),
                   ~exists().where(newer.invoice_id == PaymentPromise.invoice_id, newer.id > PaymentPromise.id)))


def _bounces(creditor_id: int, today: date):
    """E-mails the receiving server refused for good whose reminders are not planned again yet
    (the debtor page's failed steps: changing the address plans them again), invoices still owed."""
    failed_reminder = (exists().where(Reminder.message_id == OutboxMessage.id, Reminder.status == "failed",
                                      Invoice.id == Reminder.invoice_id, Invoice.status.in_(OPEN_STATUSES)))
    return (select(Debtor.id.label("target"), Debtor.ref, Debtor.name,
                   func.coalesce(OutboxMessage.amount, 0).label("amount"),
                   func.coalesce(OutboxMessage.currency, Creditor.currency).label("currency"),
                   OutboxMessage.next_attempt_at.label("since"), OutboxMessage.to_addr.label("detail"),
                   OutboxMessage.last_error.label("note"))
            .select_from(OutboxMessage).join(Debtor, Debtor.id == OutboxMessage.debtor_id)
            .join(Creditor, Creditor.id == OutboxMessage.creditor_id)
            .where(OutboxMessage.creditor_id == creditor_id, OutboxMessage.status == "failed",
                   OutboxMessage.channel == "email", failed_reminder))


def _calls(creditor_id: int, today: date, user_id: int | None = None):
    """Open call tasks due today or earlier; what the debtor owes in all is what is at stake."""
    owed = (select(Invoice.debtor_id, func.sum(_balance()).label("owed"), func.min(Invoice.currency).label("currency"))
            .where(Invoice.creditor_id == creditor_id, Invoice.status.in_(OPEN_STATUSES))
            .group_by(Invoice.debtor_id).subquery())
    mine = (Task.assigned_to_id == user_id) if user_id is not None else literal(False)
    return (select(Task.id.label("target"), Debtor.ref, Debtor.name, func.coalesce(owed.c.owed, 0).label("amount"),
                   func.coalesce(owed.c.currency, Creditor.currency).label("currency"), Task.due.label("since"),
                   func.coalesce(Debtor.phone, "").label("detail"), mine.label("mine"))
            .select_from(Task).join(Debtor, Debtor.id == Task.debtor_id).join(Creditor, Creditor.id == Task.creditor_id)
            .outerjoin(owed, owed.c.debtor_id == Task.debtor_id)
            .where(Task.creditor_id == creditor_id, Task.status == "open", Task.due <= today))


def _bank(creditor_id: int, today: date):
    """Transfers the matcher suggested an invoice for: a person confirms."""
    return (select(BankTransaction.id.label("target"), Debtor.ref, Debtor.name, BankTransaction.amount,
                   BankTransaction.currency, BankTransaction.booking_date.label("since"),
                   func.coalesce(BankTransaction.counterparty, "").label("detail"),
                   BankTransaction.reason.label("note"))
            .select_from(BankTransaction).outerjoin(Debtor, Debtor.id == BankTransaction.debtor_id)
            .where(BankTransaction.creditor_id == creditor_id, BankTransaction.status == TX_SUGGESTED))


_SECTIONS = {"approvals": _approvals, "disputes": _disputes, "promises": _promises, "bounces": _bounces,
             "calls": _calls, "bank": _bank}


def _local_day(value, timezone: str) -> date:
    """A stored UTC time as the creditor's calendar day; a date is one already."""
    return local_now(timezone, value).date() if isinstance(value, datetime) else value


def work(creditor: Creditor, today: date, user_id: int | None = None) -> dict[str, list[Item]]:
    """Every list of Today, the most at stake first, then the oldest; calls assigned to `user_id`
    before anyone's. One query per list."""
    out = {}
    for name in SECTIONS:
        q = _calls(creditor.id, today, user_id) if name == "calls" else _SECTIONS[name](creditor.id, today)
        rows = db.session.execute(q).mappings().all()
        items = [Item(r["ref"], r["name"], int(r["amount"] or 0), r["currency"], _local_day(r["since"], creditor.timezone),
                      r["detail"] or "", r["target"], bool(r.get("mine")),
                      None if r.get("note") is None else str(r["note"]))
                 for r in rows]
        items.sort(key=lambda i: (not i.mine, -i.amount, i.since, i.target))
        out[name] = items[:LIMIT]
    return out


def counts(creditor_id: int, today: date) -> dict[str, int]:
    """How many in each list, their total (`today`), and the menu's other badges (`open_disputes`,
    `open_calls`: every open one, as their pages list them): one query."""
    def n(q):
        return select(func.count()).select_from(q.subquery()).scalar_subquery()
    columns = {name: n(_SECTIONS[name](creditor_id, today)) for name in SECTIONS}
    columns["open_disputes"] = (select(func.count()).select_from(Dispute)
                                .where(Dispute.creditor_id == creditor_id, Dispute.status == "open").scalar_subquery())
    columns["open_calls"] = (select(func.count()).select_from(Task)
                             .where(Task.creditor_id == creditor_id, Task.status == "open").scalar_subquery())
    row = db.session.execute(select(*(c.label(k) for k, c in columns.items()))).mappings().one()
    found = {k: int(v or 0) for k, v in row.items()}
    found["today"] = sum(found[name] for name in SECTIONS)
    return found


def no_counts() -> dict[str, int]:
    return dict.fromkeys((*SECTIONS, "open_disputes", "open_calls", "today"), 0)

