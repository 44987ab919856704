"""Portal routes for promises to pay: the form (GET) and the promise (POST) on one URL. Works
without JavaScript: post, redirect, get, with a flash message."""
from __future__ import annotations

from flask import flash, g, redirect, render_template, request, url_for
from flask_babel import format_date
from flask_babel import gettext as _

from ..services import Conflict, Invalid, promises
from .blueprint import bp
from .session import portal_required


def _refused(e: Conflict) -> str:
    return {"not_open": _("This invoice is no longer open."),
            "disputed": _("This invoice is under dispute: a promise to pay can be made once the dispute is settled."),
            "payment_in_flight": _("A payment for this invoice is on its way: no promise is needed."),
            "already_promised": _("A promise to pay is already recorded for this invoice.")}.get(e.code, e.message)


@bp.get("/portal/invoices/<path:number>/promise")
@portal_required
def promise_form(number):
    try:
        offer = promises.offer(g.debtor_id, number)
    except Conflict as e:
        flash(_refused(e), "error")
        return redirect(url_for("debtor.home"), code=303)
    return render_template("debtor/promise.html", acc=offer, offer=offer, inv=offer.invoice)


@bp.post("/portal/invoices/<path:number>/promise")
@portal_required
def promise_make(number):
    try:
        promise = promises.make(g.debtor_id, number, request.form.get("date"), request.form.get("amount"))
    except Conflict as e:
        flash(_refused(e), "error")
        return redirect(url_for("debtor.home"), code=303)
    except Invalid as e:
        flash(_invalid(e), "error")
        return redirect(url_for("debtor.promise_form", number=number), code=303)
    flash(_("Thank you: we have noted your promise to pay invoice %(number)s by %(date)s. "
            "No reminder will be sent for it until then.",
            number=number, date=format_date(promise.promised_date)), "info")  # the portal's one date format
    return redirect(url_for("debtor.home"), code=303)


def _invalid(e: Invalid) -> str:
    if e.field == "amount":
        return _("Enter an amount greater than zero and at most the balance of the invoice, or leave it blank.")
    return _("Choose a date within the dates shown.")
