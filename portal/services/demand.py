"""What a message asks for, computed once: the e-mail, the letter, the portal banner the link opens
and the EPC QR code all print this object's figures, never figures of their own.

(Issue 14: the shape is fixed here so that composing, letters and the portal can be written
side by side; `compute` fills it.)"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from ..models import Invoice


@dataclass(frozen=True)
class Line:
    """One open item the message asks to be paid: an invoice, or a charges item (Invoice.kind ==
    "charges") claimed by an earlier message."""
    invoice: Invoice
    #: what is asked for this item: its balance today (minor units)
    balance: int
    days_late: int
    #: charges this message claims on this invoice, new with it (they become a charges item)
    interest: int = 0
    indemnity: int = 0


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
