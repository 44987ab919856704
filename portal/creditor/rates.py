"""Late-payment rates: the ECB reference table, shown read-only (it is shared by every creditor:
the operator keeps it with `flask rates set`), and the creditor's own terms (contractual rate,
days a formal notice gives)."""
from __future__ import annotations

from flask import flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from ..services import Invalid, rates
from .blueprint import bp
from .forms import ActionForm
from .messages import message


def _rates_page(status=200, errors=None):
    return render_template("creditor/rates.html", table=rates.table(), errors=errors or {},
                           form=ActionForm()), status


@bp.get("/rates")
@login_required
def late_payment_rates():
    return _rates_page()


@bp.post("/rates/terms")
@login_required
def set_terms():
    try:
        rates.set_terms(g.creditor, request.form.get("contractual_rate"), request.form.get("formal_notice_days"),
                        user=current_user.email)
    except Invalid as e:  # refused before anything was written
        return _rates_page(422, {e.field: message(e)})
    flash(_("Terms saved."))
    return redirect(url_for("creditor.late_payment_rates"))
