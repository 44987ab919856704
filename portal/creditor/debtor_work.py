"""The debtor page's work section (creditor/_debtor_work.html): pausing and resuming its dunning,
recording a payment or a credit note by hand, sending the next step now, and what dunning does
next per invoice. Each action: a service with its event, POST then redirect with a flash; a
refusal re-renders the debtor page (422) with the message next to the field. Another creditor's
debtor reads as not found (ledger.get_debtor)."""
from __future__ import annotations

from flask import flash, g, make_response, redirect, request, url_for
from flask_babel import format_date
from flask_babel import gettext as _
from flask_login import current_user, login_required

from dunning_jobs import send_now

from ..domain.calendar import today_for
from ..services import Invalid, ServiceError, hand_entries, ledger, next_step, pauses
from ..services.receivables import debtor_invoices
from . import debtors
from .blueprint import bp


@bp.app_template_global()
def debtor_work(debtor) -> dict:
    """What the work section shows, read when the debtor page renders it: the pauses in force,
    the next step per open invoice, the invoices the forms offer, and a refused form's messages
    and values (set by the action that refused it)."""
    today = today_for(g.creditor)
    return {"today": today, "pauses": pauses.active(debtor.id, today),
            "outlook": next_step.outlook(g.creditor, debtor, today),
            "open_invoices": [i for i in debtor_invoices(debtor.id) if i.status in ("open", "partially_paid")],
            "methods": hand_entries.METHODS, "max_until": today.fromordinal(today.toordinal() + pauses.MAX_DAYS),
            "form": g.get("work_form"), "errors": g.get("work_errors", {}), "typed": g.get("work_typed", {})}


def _refused(ref: str, form: str, e: ServiceError, typed: dict):
    """The debtor page again, 422, the refused form's fields filled as typed, its message shown."""
    g.work_form, g.work_errors, g.work_typed = form, {e.field or "form": _message(e)}, typed
    response = make_response(debtors.debtor(ref))
    response.status_code = 422
    return response


def _message(e: ServiceError) -> str:
    return {
        "reason_required": _("Give a reason for the pause."),
        "reason_too_long": _("The reason is too long (200 characters at most)."),
        "until_required": _("Choose the last day of the pause."),
        "until_past": _("The pause must end after today."),
        "until_too_far": _("A pause lasts one year at most."),
        "invoice_unknown": _("Choose one of this debtor's invoices."),
        "pause_over": _("This pause is over already."),
        "amount_required": _("Enter the amount."),
        "amount_invalid": _("Enter an amount more than zero, like 120.50."),
        "amount_over_balance": _("A credit note cannot be more than what the invoices still owe."),
        "date_required": _("Enter the date the money was received."),
        "date_future": _("The date cannot be in the future."),
        "method_invalid": _("Choose how the money came."),
        "reference_required": _("Enter the payment's reference (bank transfer, cheque number…)."),
        "reference_too_long": _("The reference is too long (255 characters at most)."),
        "reference_used": _("This reference was already used for another payment."),
        "number_required": _("Enter the credit note's number."),
        "number_too_long": _("The number is too long (64 characters at most)."),
        "number_used": _("This credit note was already recorded."),
        "invoices_unknown": _("Choose among the debtor's open invoices."),
        "currencies": _("Invoices in different currencies are recorded separately."),
    }.get(e.code) or (_("Enter an amount like 120.50.") if e.field == "amount"
                      else _("Enter a date like 2026-12-31.") if e.field in ("date", "until") else e.message)


def _back(d):
    return redirect(url_for("creditor.debtor", ref=d.ref, _anchor="work"), code=303)


@bp.post("/debtors/<path:ref>/pauses")
@login_required
def pause_dunning(ref):
    d = ledger.get_debtor(g.creditor.id, ref)
    typed = {k: request.form.get(k, "") for k in ("reason", "until", "invoice")}
    try:
        row = pauses.pause(d, reason=typed["reason"], until=typed["until"], invoice_number=typed["invoice"] or None,
                           today=today_for(g.creditor), user=current_user.email)
    except Invalid as e:
        return _refused(ref, "pause", e, typed)
    until = format_date(row.until, "long")
    flash(_("Dunning of invoice %(number)s paused through %(date)s.", number=typed["invoice"], date=until)
          if row.invoice_id else _("Dunning of this debtor paused through %(date)s.", date=until))
    return _back(d)


@bp.post("/debtors/<path:ref>/pauses/<int:pause_id>/resume")
@login_required
def resume_dunning(ref, pause_id):
    d = ledger.get_debtor(g.creditor.id, ref)
    try:
        pauses.resume(g.creditor.id, d, pause_id, today=today_for(g.creditor), user=current_user.email)
    except ServiceError as e:
        if e.status == 404:
            raise
        flash(_message(e), "error")
    else:
        flash(_("Dunning resumed: the next run goes on from the step the invoice stands on."))
    return _back(d)


@bp.post("/debtors/<path:ref>/payments")
@login_required
def record_payment_by_hand(ref):
    d = ledger.get_debtor(g.creditor.id, ref)
    typed = {k: request.form.get(k, "") for k in ("amount", "date", "method", "reference")}
    typed["invoices"] = request.form.getlist("invoices")
    try:
        hand_entries.record_payment(g.creditor, d, amount=typed["amount"], received=typed["date"],
                                    method=typed["method"], reference=typed["reference"],
                                    invoices=typed["invoices"], today=today_for(g.creditor), user=current_user.email)
    except ServiceError as e:
        if e.status == 404:
            raise
        return _refused(ref, "payment", e, typed)
    flash(_("Payment recorded: dunning stops for what it paid."))
    return _back(d)


@bp.post("/debtors/<path:ref>/credit-notes")
@login_required
def record_credit_note(ref):
    d = ledger.get_debtor(g.creditor.id, ref)
    typed = {k: request.form.get(k, "") for k in ("amount", "number")}
    typed["invoices"] = request.form.getlist("invoices")
    try:
        hand_entries.record_credit_note(g.creditor, d, amount=typed["amount"], number=typed["number"],
                                        invoices=typed["invoices"], today=today_for(g.creditor),
                                        user=current_user.email)
    except ServiceError as e:
        if e.status == 404:
            raise
        return _refused(ref, "credit_note", e, typed)
    flash(_("Credit note %(number)s recorded.", number=typed["number"].strip()))
    return _back(d)


@bp.post("/debtors/<path:ref>/send-now")
@login_required
def send_next_step_now(ref):
    d = ledger.get_debtor(g.creditor.id, ref)
    r = send_now.send_next_step(g.creditor, d, user=current_user.email)
    if r.held:
        flash(_("The next step is planned, but your dunning days are held: it goes once you release the day."),
              "error")
    elif r.composed:
        flash(_("The next step is on its way: it leaves with the outbox's next pass, within a few minutes."))
    elif r.awaiting_approval:
        flash(_("The next step is a formal notice: it waits for your approval in the approval list."))
    elif r.waiting:
        flash(_("This debtor already received an e-mail today: the next step goes with tomorrow's."), "error")
    else:
        flash(_why_not(r.outlook), "error")
    return _back(d)


def _why_not(outlook) -> str:
    """Why nothing could go today, for the first invoice that says it best."""
    if any(o.state in ("planned", "awaiting_approval") for o in outlook):
        return _("Nothing more can go today: the next step is planned already (see below).")
    dated = [o for o in outlook if o.on is not None and o.state == "later"]
    if dated:
        o = min(dated, key=lambda o: o.on)
        if o.last_on is not None:
            return _("Nothing can go today: the last reminder went on %(last)s; the next may go from %(next)s.",
                     last=format_date(o.last_on, "long"), next=format_date(o.on, "long"))
        return _("Nothing can go today: the next step may go from %(next)s.", next=format_date(o.on, "long"))
    if any(o.hold for o in outlook):
        return _("Nothing can go today: this debtor's invoices are on hold (dispute, promise, payment on its way "
                 "or pause).")
    return _("Nothing can go today: no open invoice has a step left to send.")
