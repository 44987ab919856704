"""Portal routes for paying: card checkout, direct debit, the mandate, and the page that
waits for the provider's confirmation. Every form works without JavaScript (PRG with a flash
message on error); htmx only polls the waiting page."""
from __future__ import annotations

from flask import flash, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _

from .. import gateways
from ..models import OPEN_STATUSES
from ..services import Invalid, NotFound, ServiceError, Unavailable, account, mandates, payments, transfer
from .blueprint import bp
from .session import SESSION_KEY, portal_required


def _back_home(message: str, category: str = "error"):
    flash(message, category)
    return redirect(url_for("debtor.home"), code=303)


@bp.post("/portal/pay")
@portal_required
def pay():
    """Pay the ticked invoices, or the one whose own Pay button was pressed, by card or direct debit."""
    numbers = [request.form["only"]] if request.form.get("only") else request.form.getlist("invoice")
    method = request.form.get("method", "card")
    if method in ("recalculate", "transfer"):
        # No script: the page is drawn again with these ticks (and its total); by transfer, the
        # details for exactly these. Kept in the session: the address never carries the CSRF token.
        session[SESSION_KEY]["ticked"] = _ticks(numbers)
        session.modified = True
        if method == "transfer":
            return redirect(url_for("debtor.pay_by_transfer", invoice=numbers), code=303)
        return redirect(url_for("debtor.home", _anchor="pay-bar"), code=303)
    try:
        if method == "direct_debit":
            attempt = payments.collect(g.debtor_id, numbers)
            return redirect(url_for("debtor.payment_status", attempt_id=attempt.id), code=303)
        # A French debtor types "12,50": the amount parser reads a dot.
        amount = (request.form.get("amount") or "").strip().replace(",", ".") or None
        _attempt, url = payments.start_card_payment(g.debtor_id, numbers, amount)
    except payments.InFlight as e:  # another tab or click started one first: that one, to resume or cancel
        flash(_("A payment for this invoice is already under way. You can continue it or cancel it here."), "info")
        if e.attempt_id is None:
            return redirect(url_for("debtor.home"), code=303)
        return redirect(url_for("debtor.payment_status", attempt_id=e.attempt_id), code=303)
    except Invalid as e:
        return _back_home(_translated(e))
    except NotFound:
        return _back_home(_("This way of paying is not available."))
    except ServiceError as e:
        if e.status == 409 and e.field == "mandate":  # no usable mandate: not a passing outage
            return _back_home(_("This way of paying is not available."))
        return _back_home(_("Payment is unavailable at the moment. Please try again later or pay by bank transfer."))
    session[SESSION_KEY]["select"] = []  # the reminder's preselection has served
    session.modified = True
    return redirect(url, code=303)


def _ticks(numbers: list[str]) -> dict:
    """The ticks as the session keeps them (a cookie: 4 kB at most): the ticked numbers, or when
    shorter the payable ones left unticked."""
    payable = [line.invoice.number for line in account.load(g.debtor_id).payable]
    ticked = set(numbers)
    chosen = [n for n in payable if n in ticked]
    left = [n for n in payable if n not in ticked]
    return {"only": chosen} if len(chosen) <= len(left) else {"all_but": left}


def _translated(e: Invalid) -> str:
    return {"invoice": _("Choose at least one open invoice that is not already being paid."),
            "amount": _("Enter an amount between the minimum and the balance of the invoice.")}.get(e.field, e.message)


@bp.get("/portal/invoices/<path:number>/pay")
@portal_required
def pay_part(number):
    """Pay part of one invoice, where the creditor allows it."""
    acc = account.load(g.debtor_id)
    invoice = account.invoice_for(g.debtor_id, number)
    if acc.creditor.partial_payment_min is None or gateways.card() is None or invoice.status not in OPEN_STATUSES:
        raise NotFound("no partial payment")
    return render_template("debtor/pay_part.html", acc=acc, inv=invoice,
                           minimum=min(acc.creditor.partial_payment_min, invoice.balance),
                           transfer=transfer.for_invoice(acc.creditor, invoice))


@bp.get("/portal/transfer")
@portal_required
def pay_by_transfer():
    """The transfer details for exactly the ticked items (`?invoice=` repeated): the amount that
    settles them today, the reference of CONTRACT §7, the EPC QR code for euros."""
    acc = account.load(g.debtor_id)
    numbers = request.args.getlist("invoice") or sorted(acc.default_ticks())
    lines = acc.ticked_lines(numbers)
    return render_template("debtor/transfer.html", acc=acc, lines=lines, transfer=acc.transfer_for(numbers))


@bp.get("/portal/payments/<int:attempt_id>")
@portal_required
def payment_status(attempt_id):
    """Back from the provider: 'processing' until its webhook confirms, then 'paid'. htmx polls
    this URL for the status fragment; without JavaScript the page refreshes itself."""
    attempt = payments.attempt_for(g.debtor_id, attempt_id)
    if request.headers.get("HX-Request"):
        return render_template("debtor/_payment_status.html", attempt=attempt)
    return render_template("debtor/payment.html", acc=account.load(g.debtor_id), attempt=attempt)


@bp.get("/portal/payments/<int:attempt_id>/cancel")
@portal_required
def payment_cancelled(attempt_id):
    """Stripe's cancel_url: the browser comes back by GET, which changes nothing. The page says
    the payment is not completed, and offers to continue it or to cancel it (a POST)."""
    attempt = payments.attempt_for(g.debtor_id, attempt_id)
    return render_template("debtor/payment.html", acc=account.load(g.debtor_id), attempt=attempt, came_back=True)


@bp.post("/portal/payments/<int:attempt_id>/cancel")
@portal_required
def payment_cancel(attempt_id):
    """Cancel a card payment not completed: its Checkout Session is expired, so it cannot be
    paid later by surprise, and what Stripe then says is recorded (paid after all, or expired)."""
    attempt = payments.cancel_checkout(g.debtor_id, attempt_id)
    if attempt.status == "succeeded":
        return redirect(url_for("debtor.payment_status", attempt_id=attempt.id), code=303)
    return _back_home(_("Payment cancelled: nothing was charged."), "info")


@bp.get("/portal/payments/<int:attempt_id>/resume")
@portal_required
def payment_resume(attempt_id):
    """Back to the Checkout page of a card payment still open; its status page otherwise."""
    try:
        url = payments.resume_url(g.debtor_id, attempt_id)
    except Unavailable:
        flash(_("Payment is unavailable at the moment. Please try again later or pay by bank transfer."), "error")
        url = None
    return redirect(url or url_for("debtor.payment_status", attempt_id=attempt_id), code=303)


@bp.post("/portal/mandate")
@portal_required
def mandate_start():
    try:
        return redirect(mandates.start(g.debtor_id), code=303)
    except NotFound:
        return _back_home(_("This way of paying is not available."))
    except ServiceError as e:
        if e.status == 409:
            return _back_home(_("A Direct Debit mandate is already set up."))
        return _back_home(_("Direct Debit set-up is unavailable at the moment. Please try again later."))


@bp.get("/portal/mandate/return")
@portal_required
def mandate_return():
    mandate = mandates.refresh(g.debtor_id)
    if mandate is not None and mandate.status != "requested":
        return _back_home(_("Thank you: your Direct Debit mandate is set up."), "info")
    return _back_home(_("Your Direct Debit mandate is being set up."), "info")


@bp.post("/portal/mandate/cancel")
@portal_required
def mandate_cancel():
    try:
        mandates.cancel(g.debtor_id)
    except ServiceError:
        return _back_home(_("The mandate could not be cancelled just now. Please try again later."))
    return _back_home(_("Your Direct Debit mandate is cancelled."), "info")
