"""The payments screen: recent payment attempts, the partial-payment minimum and how far ahead
debtors may promise to pay."""
from __future__ import annotations

from flask import flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from .. import gateways
from ..services import Invalid, ServiceError, promises, reversals, tenants
from .blueprint import bp
from .messages import message


def _payments_page(status=200, errors=None):
    return render_template("creditor/payments.html", attempts=reversals.recent_attempts(g.creditor.id),
                           card_enabled=gateways.card() is not None, dd_enabled=gateways.direct_debit() is not None,
                           errors=errors or {}), status


@bp.get("/payments")
@login_required
def payments_page():
    return _payments_page()


@bp.post("/payments/settings")
@login_required
def payment_settings():
    try:
        tenants.set_partial_minimum(g.creditor, request.form.get("partial_payment_min"), user=current_user.email)
    except Invalid as e:  # refused before anything was written
        return _payments_page(422, {"partial_payment_min": message(e)})
    flash(_("Payment settings saved."))
    return redirect(url_for("creditor.payments_page"))


@bp.post("/payments/promises")
@login_required
def promise_settings():
    try:
        promises.set_max_days(g.creditor, request.form.get("promise_max_days"), user=current_user.email)
    except Invalid:  # refused before anything was written
        return _payments_page(422, {"promise_max_days": _("Enter a whole number of days between 1 and 180.")})
    flash(_("Promise settings saved."))
    return redirect(url_for("creditor.payments_page"))


@bp.post("/payments/<int:payment_id>/refund")
@login_required
def refund_credit(payment_id):
    """Give back the credit a card payment left on the debtor's account (money received twice)."""
    try:
        reversals.refund_credit(g.creditor.id, payment_id, user=current_user.email)
    except ServiceError as e:
        if e.status == 404:
            raise
        flash(_("This payment has no credit to refund by card.") if e.status == 409
              else _("The refund could not be made just now. Please try again later."), "error")
    else:
        flash(_("The credit was refunded to the debtor's card."))
    return redirect(url_for("creditor.payments_page"), code=303)
