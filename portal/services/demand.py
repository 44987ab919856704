"""What a message asks for, computed once: the e-mail, the letter, the portal banner the link opens
and the EPC QR code all print this object's figures, never figures of their own.

`compute` fills it for the invoices a message is about: their balances, the charges items
earlier messages claimed on them, and, for a step that adds charges, the interest accrued since
the last claim and the indemnity not yet claimed. `claim_charges` then turns the new charges
into charges items (Invoice rows of kind "charges"), open items of their own on the account.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from flask import current_app
from sqlalchemy import func, select

from ..domain import discount
from ..domain.charges import MissingReferenceRate, late_charges
from ..domain.references import debtor_reference, invoice_reference
from ..extensions import db
from ..models import Creditor, Debtor, DunningStep, Invoice, ReferenceRate, Reminder
from . import charge_items, events

#: debtors who owe late-payment charges (a consumer owes none before a court says so)
CHARGED_KINDS = ("business", "public")


@dataclass(frozen=True)
class Line:
    """One open item the message asks to be paid: an invoice, or a charges item (Invoice.kind ==
    "charges") claimed by an earlier message."""
    invoice: Invoice
    #: what is asked for this item: its balance today (minor units), less `discount`
    balance: int
    days_late: int
    #: charges this message claims on this invoice, new with it (they become a charges item)
    interest: int = 0
    indemnity: int = 0
    #: the early-payment discount deducted, still available on the message's day (CONTRACT §10):
    #: `balance` paid by invoice.discount_until settles the invoice
    discount: int = 0


@dataclass(frozen=True)
class Sent:
    """An earlier reminder of these invoices that really went out (the record, not the plan)."""
    day: date
    step_code: str
    tone: str | None


@dataclass(frozen=True)
class Demand:
    currency: str
    lines: list[Line]
    #: the one amount: the lines' balances plus the charges this message claims
    total: int
    #: ISO 11649 RF reference, unformatted: the invoice's when one invoice is asked, else the debtor's
    reference: str
    #: pay by this day (formal notices; None when the message sets no deadline)
    deadline: date | None
    #: earlier reminders of these invoices, oldest first ("nos relances des 12 et 19 novembre")
    earlier: list[Sent] = field(default_factory=list)

    @property
    def new_charges(self) -> int:
        return sum(line.interest + line.indemnity for line in self.lines)


def reference_rates() -> list[tuple[date, int]]:
    return [(r.effective_from, r.rate_bp) for r in db.session.scalars(select(ReferenceRate))]


@dataclass
class Reads:
    """What computing a demand reads of some invoices: the charges items still open on them, the
    charges already claimed on them, the reminders sent about them, and the ECB rates. Composing
    loads them once for a batch of debtors (each statement then serves 25 messages, not one);
    messages of different debtors never touch each other's rows, so the batch's reads stay true."""
    items: dict[int, list[Invoice]]
    claimed: dict[int, tuple[int, bool]]
    #: per invoice, its reminders sent after its due date and before the day: (day, code, position, tone)
    sends: dict[int, list[tuple]]
    rates: list[tuple[date, int]]

    @classmethod
    def load(cls, invoice_ids: Sequence[int], day: date) -> Reads:
        ids = list(invoice_ids)
        sends: dict[int, list[tuple]] = {}
        if ids:
            for invoice_id, *row in db.session.execute(
                    select(Reminder.invoice_id, Reminder.dunning_date, Reminder.step_code, Reminder.position,
                           DunningStep.tone)
                    .join(Invoice, Invoice.id == Reminder.invoice_id)
                    .outerjoin(DunningStep, DunningStep.id == Reminder.step_id)
                    .where(Reminder.invoice_id.in_(ids), Reminder.status == "sent",
                           Reminder.step_code != "thank_you", Reminder.dunning_date > Invoice.due_date,
                           Reminder.dunning_date < day)):
                sends.setdefault(invoice_id, []).append(tuple(row))
        return cls(charge_items.open_by_invoice(ids), _claimed(ids) if ids else {}, sends, reference_rates())

    def earlier(self, invoice_ids: Sequence[int]) -> list[Sent]:
        """The reminders of these invoices that really went out after their due date (courtesy
        notices are not reminders), one per day (the most advanced), oldest first."""
        best: dict[date, tuple] = {}
        for sent_on, code, position, tone in (row for i in invoice_ids for row in self.sends.get(i, ())):
            if tone != "courtesy" and (sent_on not in best or position > best[sent_on][0]):
                best[sent_on] = (position, code, tone)
        return [Sent(d, code, tone) for d, (_p, code, tone) in sorted(best.items())]


def compute(creditor: Creditor, debtor: Debtor, invoices: Sequence[Invoice], day: date, *,
            step: DunningStep | None, formal: bool = False, reads: Reads | None = None) -> Demand:
    """What a message about `invoices` asks for on `day`. `step` is the most advanced step of the
    message (None: no step, e.g. a thank-you); `formal`: a formal notice, which sets a deadline;
    `reads`: loaded beforehand for these invoices (and maybe others), else read now.
    Writes nothing (events aside: a missing ECB rate is recorded)."""
    invoices = list({inv.id: inv for inv in invoices if inv.kind != charge_items.KIND}.values())
    currency = invoices[0].currency if invoices else creditor.currency
    ids = [inv.id for inv in invoices]
    reads = reads or Reads.load(ids, day)
    charged = step is not None and step.adds_charges and debtor.kind in CHARGED_KINDS
    lines = []
    for inv in invoices:
        interest = indemnity = 0
        if charged and inv.balance > 0:
            interest, indemnity = _new_charges(creditor, debtor, inv, day, reads.rates,
                                               *reads.claimed.get(inv.id, (0, False)))
        due = discount.due_now(inv.amount, inv.balance, inv.discount_percent, inv.discount_until, day) or inv.balance
        lines.append(Line(inv, due, max(0, (day - inv.due_date).days), interest, indemnity, inv.balance - due))
        lines += [Line(item, item.balance, max(0, (day - item.due_date).days)) for item in reads.items.get(inv.id, ())]
    total = sum(ln.balance + ln.interest + ln.indemnity for ln in lines if ln.invoice.currency == currency)
    single = len(lines) == 1 and not (lines[0].interest or lines[0].indemnity)
    # One invoice alone: its own reference. Anything more (several invoices, or charges beside
    # the invoice) the debtor's, which a transfer of the whole amount settles item by item.
    reference = invoice_reference(lines[0].invoice.id) if single else debtor_reference(debtor.id)
    deadline = day + timedelta(days=creditor.formal_notice_days) if formal else None
    return Demand(currency, lines, total, reference, deadline, reads.earlier(ids))


def _claimed(invoice_ids: list[int]) -> dict[int, tuple[int, bool]]:
    """Per invoice: interest already claimed, and whether the indemnity was, by the reminders
    whose message was written (their charges are frozen on them)."""
    rows = db.session.execute(
        select(Reminder.invoice_id, func.sum(Reminder.interest), func.max(Reminder.indemnity))
        .where(Reminder.invoice_id.in_(invoice_ids), Reminder.message_id.is_not(None))
        .group_by(Reminder.invoice_id)).all()
    return {invoice_id: (int(interest or 0), bool(indemnity)) for invoice_id, interest, indemnity in rows}


def _new_charges(creditor: Creditor, debtor: Debtor, inv: Invoice, day: date, rates, interest_claimed: int,
                 indemnity_claimed: bool) -> tuple[int, int]:
    contractual = creditor.late_interest_bp if debtor.kind == "business" else None
    try:
        accrued = late_charges(inv.balance, inv.currency, inv.due_date, day, debtor_kind=debtor.kind,
                               reference_rates=rates, contractual_bp=contractual)
        interest, indemnity = accrued.interest, accrued.indemnity
    except MissingReferenceRate as e:
        # Never state a guessed rate: the indemnity alone, and the creditor is told.
        current_app.logger.warning("%s", e)
        interest = 0
        indemnity = late_charges(inv.balance, inv.currency, inv.due_date, day, debtor_kind=debtor.kind,
                                 reference_rates=[], contractual_bp=0).indemnity
        events.record("charges.rate_missing", creditor_id=creditor.id, debtor_id=debtor.id, invoice_id=inv.id,
                      actor="system", error=str(e))
    return max(0, interest - interest_claimed), 0 if indemnity_claimed else indemnity


def claim_charges(creditor: Creditor, debtor: Debtor, demand: Demand, day: date) -> list[Invoice]:
    """The charges `demand` claims, each invoice's as a charges item of its own (payable,
    allocated after the principal, waivable): charge_items.claim."""
    return [charge_items.claim(creditor, debtor, line.invoice, line.interest + line.indemnity, day)
            for line in demand.lines if line.interest + line.indemnity]
