"""What a payment started today asks of each invoice (card checkout, direct debit): its balance,
less the early-payment discount while it is available (CONTRACT §10), and how the provider's
page names the line."""
from __future__ import annotations

from datetime import date

from ..domain import discount
from ..models import Invoice
from . import charge_items


def due_today(inv: Invoice, today: date) -> int:
    """Never zero (an attempt line is for money): a balance the discount alone would settle is asked whole."""
    return discount.due_now(inv.amount, inv.balance, inv.discount_percent, inv.discount_until, today) or inv.balance


def label(inv: Invoice, amount: int, language: str, today: date) -> str:
    """The checkout line: "Facture F-1", "(paiement partiel)" for less than due today, the discount
    named when it is deducted."""
    if inv.kind == charge_items.KIND:
        return charge_items.label(inv, language)
    due = due_today(inv, today)
    part = amount < due
    discounted = not part and due < inv.balance
    percent = f"{inv.discount_percent.normalize():f}" if discounted else ""
    if language == "fr":
        return f"Facture {inv.number}" + (" (paiement partiel)" if part else "") + (
            f" (escompte de {percent}\u00a0% déduit)" if discounted else "")
    return f"Invoice {inv.number}" + (" (part payment)" if part else "") + (
        f" ({percent}% early-payment discount deducted)" if discounted else "")
