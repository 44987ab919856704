"""One invoice's page: its amounts, its early-payment discount, the payments applied to it, its
late-payment charges and its events; waiving charges (a confirmation page, then the POST)."""
from __future__ import annotations

from babel.numbers import format_decimal
from flask import flash, g, redirect, render_template, url_for
from flask_babel import get_locale, gettext as _
from flask_login import current_user, login_required

from ..services import Conflict, charge_items, discounts, events, ledger, receivables
from ..domain import discount
from ..domain.calendar import today_for
from .blueprint import bp
from .forms import ActionForm


@bp.get("/invoices/<path:number>")
@login_required
def invoice(number):
    inv = ledger.get_invoice(g.creditor.id, number)
    allocations, today = receivables.allocations(inv.id), today_for(g.creditor)
    return render_template("creditor/invoice.html", inv=inv, allocations=allocations,
                           events=events.latest(g.creditor.id, limit=200, invoice_id=inv.id),
                           charges=charge_items.of_invoice(inv.id), today=today,
                           discount=_discount(inv, allocations, today))


def _discount(inv, allocations, today) -> dict | None:
    """The early-payment discount's terms, what it leaves to pay today, and once granted, its
    amount and the day the invoice was paid (CONTRACT §10)."""
    if inv.discount_until is None:
        return None
    granted = next(((a.amount, p.received_on) for a, p in allocations if p.provider == discounts.PROVIDER), None)
    return {"percent": format_decimal(inv.discount_percent, locale=str(get_locale() or "fr")) + "\u00a0%",
            "amount": discount.discount_amount(inv.amount, inv.discount_percent), "until": inv.discount_until,
            "available": inv.balance > 0 and discount.available(inv.discount_until, today),
            "due_now": discount.due_now(inv.amount, inv.balance, inv.discount_percent, inv.discount_until, today),
            "granted": granted}


@bp.get("/charges/<path:number>/waive")
@login_required
def waive_charges_confirm(number):
    """The confirmation: the open charges of an invoice (or one charges item), a button each."""
    inv, items = charge_items.waivable(g.creditor.id, number)
    return render_template("creditor/waive_charges.html", inv=inv, items=items, form=ActionForm())


@bp.post("/charges/<path:number>/waive")
@login_required
def waive_charges(number):
    try:
        item = charge_items.waive(g.creditor.id, number, user=current_user.email)
    except Conflict:  # paid or waived meanwhile (another tab, a payment just in)
        flash(_("These charges are no longer open."), "error")
        return redirect(url_for("creditor.waive_charges_confirm", number=number))
    flash(_("The late-payment charges were waived: %(label)s.", label=charge_items.label(item)))
    return redirect(url_for("creditor.invoice", number=charge_items.charged_number(item)))
