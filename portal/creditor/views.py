"""Back office: one route per action; pages render, services decide."""
from __future__ import annotations

import io
from datetime import timedelta
from urllib.parse import urlsplit

from flask import abort, flash, g, make_response, redirect, render_template, request, send_file, url_for
from flask_babel import format_date, lazy_gettext
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy import select

from .. import gateways
from ..extensions import db, limiter, login_manager
from ..models import CreditorUser, Invoice, PaymentAllocation, Payment
from ..services import (Conflict, Invalid, NotFound, events, ledger, links, mandates, outbox_view, payments, plans,
                        rates, reminders, reports, step_preview, tenants)
from ..domain.calendar import today_for
from . import bp
from .forms import ActionForm, ApiKeyForm, LoginForm, PostponeForm


@login_manager.user_loader
def load_user(user_id: str):
    return db.session.get(CreditorUser, int(user_id)) if user_id.isdigit() else None


login_manager.login_view = "creditor.login"
login_manager.session_protection = "strong"


@bp.errorhandler(NotFound)
def not_found(_e):
    # Another creditor's reference reads exactly like one that does not exist.
    db.session.rollback()
    return render_template("debtor/error.html", reason="not_found"), 404


@bp.before_request
def creditor_locale():
    if current_user.is_authenticated:
        g.creditor = current_user.creditor
        g.locale = g.creditor.language


def _safe_next(target: str | None) -> str:
    # Only same-site paths: never an open redirect to another host.
    if target and target.startswith("/") and not target.startswith("//") and not urlsplit(target).netloc:
        return target
    return url_for("creditor.debtors")


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit("10 per minute", methods=["POST"])
def login():
    form = LoginForm()
    if form.validate_on_submit():
        user = tenants.authenticate(form.email.data, form.password.data)
        if user is not None:
            login_user(user)
            events.record("user.logged_in", creditor_id=user.creditor_id, actor="creditor", user=user.email)
            db.session.commit()
            return redirect(_safe_next(request.args.get("next")))
        flash(_("Wrong e-mail or password."), "error")
    return render_template("creditor/login.html", form=form), 200 if request.method == "GET" else 401


@bp.post("/logout")
@login_required
def logout():
    logout_user()
    return redirect(url_for("creditor.login"))


@bp.get("/")
@login_required
def debtors():
    q = (request.args.get("q") or "").strip()[:100]
    rows = reports.debtor_balances(g.creditor, today_for(g.creditor), q or None)
    return render_template("creditor/debtors.html", rows=rows, q=q)


@bp.get("/debtors/<path:ref>")
@login_required
def debtor(ref):
    d = ledger.get_debtor(g.creditor.id, ref)
    invoices = db.session.scalars(select(Invoice).where(Invoice.debtor_id == d.id)
                                  .order_by(Invoice.due_date.desc(), Invoice.id.desc())).all()
    return render_template("creditor/debtor.html", debtor=d, invoices=invoices, today=today_for(g.creditor),
                           events=events.latest(g.creditor.id, debtor_id=d.id),
                           links=links.for_debtor(g.creditor.id, d.id), form=ActionForm(),
                           new_link=request.args.get("new_link"), credit=ledger.debtor_credit(d.id),
                           mandate=mandates.current(d.id), attempts=payments.recent_attempts(g.creditor.id, d.id, 20),
                           dd_enabled=gateways.direct_debit() is not None)


@bp.post("/debtors/<path:ref>/auto-collect")
@login_required
def set_auto_collect(ref):
    d = ledger.get_debtor(g.creditor.id, ref)
    enabled = request.form.get("enabled") == "1"
    mandates.set_auto_collect(d, enabled, actor="creditor")
    flash(_("Automatic collection on due dates is on.") if enabled else _("Automatic collection is off."))
    return redirect(url_for("creditor.debtor", ref=d.ref))


@bp.get("/payments")
@login_required
def payments_page():
    return render_template("creditor/payments.html", attempts=payments.recent_attempts(g.creditor.id),
                           card_enabled=gateways.card() is not None, dd_enabled=gateways.direct_debit() is not None,
                           errors={})


@bp.post("/payments/settings")
@login_required
def payment_settings():
    try:
        payments.set_partial_minimum(g.creditor, request.form.get("partial_payment_min"), user=current_user.email)
    except Invalid as e:
        db.session.rollback()
        return render_template("creditor/payments.html", attempts=payments.recent_attempts(g.creditor.id),
                               card_enabled=gateways.card() is not None,
                               dd_enabled=gateways.direct_debit() is not None,
                               errors={"partial_payment_min": _message(e)}), 422
    flash(_("Payment settings saved."))
    return redirect(url_for("creditor.payments_page"))


@bp.post("/payments/promises")
@login_required
def promise_settings():
    from ..services import promises  # imported here: one self-contained addition to this module
    try:
        promises.set_max_days(g.creditor, request.form.get("promise_max_days"), user=current_user.email)
    except Invalid:
        db.session.rollback()
        return render_template("creditor/payments.html", attempts=payments.recent_attempts(g.creditor.id),
                               card_enabled=gateways.card() is not None,
                               dd_enabled=gateways.direct_debit() is not None,
                               errors={"promise_max_days": _("Enter a whole number of days between 1 and 180.")}), 422
    flash(_("Promise settings saved."))
    return redirect(url_for("creditor.payments_page"))


@bp.post("/debtors/<path:ref>/links")
@login_required
def create_link(ref):
    d = ledger.get_debtor(g.creditor.id, ref)
    issued = links.issue(d, issued_by="creditor")
    flash(_("New portal link (copy it now): %(url)s", url=issued.url), "link")
    return redirect(url_for("creditor.debtor", ref=d.ref))


@bp.post("/links/<int:link_id>/revoke")
@login_required
def revoke_link(link_id):
    link = links.revoke(g.creditor.id, link_id)
    flash(_("Link revoked."))
    return redirect(url_for("creditor.debtor", ref=link.debtor.ref))


@bp.get("/invoices/<path:number>")
@login_required
def invoice(number):
    inv = ledger.get_invoice(g.creditor.id, number)
    allocations = db.session.execute(
        select(PaymentAllocation, Payment).join(Payment, Payment.id == PaymentAllocation.payment_id)
        .where(PaymentAllocation.invoice_id == inv.id).order_by(Payment.received_on)).all()
    return render_template("creditor/invoice.html", inv=inv, allocations=allocations,
                           events=events.latest(g.creditor.id, limit=200, invoice_id=inv.id),
                           today=today_for(g.creditor))


@bp.route("/api-keys", methods=["GET", "POST"])
@login_required
def api_keys():
    form = ApiKeyForm()
    new_key = None
    if form.validate_on_submit():
        new_key = tenants.create_api_key(g.creditor.id, form.label.data, actor="creditor")
    return render_template("creditor/api_keys.html", keys=tenants.api_keys(g.creditor.id), form=form,
                           new_key=new_key, action=ActionForm())


@bp.post("/api-keys/<int:key_id>/revoke")
@login_required
def revoke_api_key(key_id):
    if not tenants.revoke_api_key(g.creditor.id, key_id):
        abort(404)
    flash(_("API key revoked."))
    return redirect(url_for("creditor.api_keys"))


@bp.get("/activity")
@login_required
def activity():
    return render_template("creditor/activity.html", events=events.latest(g.creditor.id, limit=100))


# --- dunning plans ----------------------------------------------------------------------------

STEP_FIELDS = ("offset_days", "channel", *step_preview.TEXT_FIELDS)

# plans.update_step speaks English to API clients; the back office says the same in the
# creditor's language.
SERVICE_MESSAGES = {
    "offset_days must be a whole number of days": lazy_gettext("Enter a whole number of days."),
    "offset_days must be between -90 and 365": lazy_gettext("Enter a number of days between -90 and 365."),
    "steps must stay in order: each later than the one before": lazy_gettext(
        "Steps must stay in order: each one later than the one before and earlier than the one after."),
    "channel must be email or letter": lazy_gettext("Choose e-mail or letter."),
    "subject is required (200 characters at most)": lazy_gettext(
        "A subject is required (200 characters at most)."),
    "text is required (5000 characters at most)": lazy_gettext("A text is required (5000 characters at most)."),
    "a rate in percent is required, like 2.15": lazy_gettext("Enter a rate in percent, like 2.15."),
    "a rate in percent between 0 and 100, two decimals at most": lazy_gettext(
        "Enter a rate in percent between 0 and 100, with two decimals at most."),
    "the rate in force on 1 January or 1 July applies to a half-year": lazy_gettext(
        "Enter 1 January or 1 July: the rate in force on that day applies to the half-year."),
    "that half-year already has its rate": lazy_gettext("That half-year already has its rate."),
    "a whole number of days is required": lazy_gettext("Enter a whole number of days."),
    "between 1 and 90 days": lazy_gettext("Enter between 1 and 90 days."),
    "effective_from must be an ISO date (YYYY-MM-DD)": lazy_gettext("Enter a date."),
}


def _message(e: Invalid | Conflict) -> str:
    if e.message in SERVICE_MESSAGES:
        return str(SERVICE_MESSAGES[e.message])
    if e.message.startswith("template error: "):
        return _("This text cannot be used: %(detail)s", detail=e.message.removeprefix("template error: "))
    return e.message


def _step_data(form) -> dict:
    """The step form as plans.update_step takes it: an unticked box is absent from the form,
    and text areas send CRLF line ends (the e-mail layout splits paragraphs on blank lines)."""
    data = {f: form[f] for f in STEP_FIELDS if f in form}
    for f in step_preview.TEXT_FIELDS:
        if f in data:
            data[f] = data[f].replace("\r\n", "\n")
    if "offset_days" in data:
        data["offset_days"] = data["offset_days"].strip()
    data["requires_approval"] = "requires_approval" in form
    data["adds_charges"] = "adds_charges" in form
    return data


def _plans_page(status=200, *, edits=None, errors=None, previews=None, open_step=None):
    plans.ensure_default_plans(g.creditor.id)
    return render_template("creditor/plans.html", plans=plans.plans_for(g.creditor.id), edits=edits or {},
                           errors=errors or {}, previews=previews or {}, open_step=open_step), status


@bp.get("/plans")
@login_required
def dunning_plans():
    return _plans_page()


@bp.post("/plans/steps/<int:step_id>")
@login_required
def edit_step(step_id):
    step = plans.get_step(g.creditor.id, step_id)
    data = _step_data(request.form)
    try:
        plans.update_step(g.creditor.id, step.id, data)  # checks every text renders before saving any
    except Invalid as e:
        db.session.rollback()
        return _plans_page(422, edits={step_id: data}, errors={step_id: {e.field: _message(e)}}, open_step=step_id)
    flash(_("Step saved."))
    return redirect(url_for("creditor.dunning_plans", _anchor=f"step-{step_id}"))


@bp.post("/plans/steps/<int:step_id>/preview")
@login_required
def preview_step(step_id):
    """The step's message to a sample debtor, from the texts as typed (nothing is saved):
    the preview fragment for htmx, the plans page with it for a plain form post."""
    step = plans.get_step(g.creditor.id, step_id)
    data = _step_data(request.form)
    errors = {}
    try:
        preview = {"samples": step_preview.sample_messages(g.creditor, step, data, today_for(g.creditor))}
    except Invalid as e:
        preview = {"error": _message(e), "field": e.field}
        errors = {step_id: {e.field: preview["error"]}}
    if request.headers.get("HX-Request") == "true":
        response = make_response(render_template("creditor/_step_preview.html", step=step, preview=preview))
    else:
        response = make_response(_plans_page(edits={step_id: data}, errors=errors, previews={step_id: preview},
                                             open_step=step_id))
    response.vary.add("HX-Request")
    return response


# --- approvals of formal notices --------------------------------------------------------------

def _approvals_page(status=200, *, errors=None, values=None):
    today = today_for(g.creditor)
    return render_template("creditor/approvals.html", waiting=reminders.awaiting(g.creditor.id, today),
                           approved=outbox_view.latest(g.creditor.id, kind="formal_notice", limit=20),
                           today=today, min_until=today + timedelta(days=1), default_until=today + timedelta(days=7),
                           errors=errors or {}, values=values or {}), status


@bp.get("/approvals")
@login_required
def approvals():
    return _approvals_page()


@bp.post("/approvals/<int:debtor_id>/approve")
@login_required
def approve(debtor_id):
    try:
        message = reminders.approve(g.creditor, debtor_id, today_for(g.creditor), user=current_user.email)
    except NotFound:
        flash(_("Nothing awaits approval for this debtor."), "error")
        return redirect(url_for("creditor.approvals"))
    if message is None:
        flash(_("Nothing was sent: the invoices were paid, cancelled or disputed in the meantime."))
    else:
        _msg, debtor = outbox_view.get(g.creditor.id, message.id)
        if message.channel == "letter":
            flash(_("Formal notice approved: the letter to %(name)s is ready to print.", name=debtor.name))
        else:
            flash(_("Formal notice approved: the e-mail to %(name)s is in the outbox.", name=debtor.name))
    return redirect(url_for("creditor.approvals"))


@bp.post("/approvals/<int:debtor_id>/skip")
@login_required
def skip(debtor_id):
    if reminders.skip(g.creditor.id, debtor_id, user=current_user.email):
        flash(_("Formal notice skipped: it will not be sent."))
    else:
        flash(_("Nothing awaits approval for this debtor."), "error")
    return redirect(url_for("creditor.approvals"))


@bp.post("/approvals/<int:debtor_id>/postpone")
@login_required
def postpone(debtor_id):
    form = PostponeForm()
    today = today_for(g.creditor)
    until = form.until.data if form.validate_on_submit() else None
    if until is None or not today < until <= today + timedelta(days=365):
        return _approvals_page(422, errors={debtor_id: _("Choose a day after today, within a year.")},
                               values={debtor_id: request.form.get("until", "")})
    if reminders.postpone(g.creditor.id, debtor_id, until, user=current_user.email):
        flash(_("Formal notice postponed: it will be back in this list on %(date)s.",
                date=format_date(until, "medium")))
    else:
        flash(_("Nothing awaits approval for this debtor."), "error")
    return redirect(url_for("creditor.approvals"))


# --- outbox -----------------------------------------------------------------------------------

#: the e-mail as sent: its own inline styles, nothing else (no script, no request, no form)
MESSAGE_HTML_CSP = "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:"


@bp.get("/outbox")
@login_required
def outbox():
    status = request.args.get("status") or None
    if status not in outbox_view.STATUSES:
        status = None
    return render_template("creditor/outbox.html", rows=outbox_view.latest(g.creditor.id, status=status),
                           status=status, statuses=outbox_view.STATUSES)


@bp.get("/outbox/<int:message_id>")
@login_required
def outbox_message(message_id):
    message, debtor = outbox_view.get(g.creditor.id, message_id)
    return render_template("creditor/outbox_message.html", message=message, debtor=debtor)


@bp.get("/outbox/<int:message_id>/html")
@login_required
def outbox_html(message_id):
    message, _debtor = outbox_view.get(g.creditor.id, message_id)
    response = make_response(message.html_body)
    response.mimetype = "text/html"
    response.headers["Content-Security-Policy"] = MESSAGE_HTML_CSP
    return response


@bp.get("/outbox/<int:message_id>/attachment")
@login_required
def outbox_attachment(message_id):
    message, _debtor = outbox_view.get(g.creditor.id, message_id)
    if not message.attachment:
        abort(404)
    return send_file(io.BytesIO(message.attachment), mimetype="application/pdf", as_attachment=True,
                     download_name=message.attachment_name or f"message-{message.id}.pdf")


# --- late-payment rates ------------------------------------------------------------------------

def _rates_page(status=200, errors=None):
    return render_template("creditor/rates.html", table=rates.table(), errors=errors or {},
                           form=ActionForm()), status


@bp.get("/rates")
@login_required
def late_payment_rates():
    return _rates_page()


@bp.post("/rates/reference")
@login_required
def add_reference_rate():
    try:
        day = ledger.check_date(request.form.get("effective_from", ""), "effective_from")
        rates.add_reference_rate(g.creditor.id, day, request.form.get("rate", ""), user=current_user.email)
    except (Invalid, Conflict) as e:
        db.session.rollback()
        return _rates_page(422, {e.field: _message(e)})
    flash(_("Reference rate added."))
    return redirect(url_for("creditor.late_payment_rates"))


@bp.post("/rates/terms")
@login_required
def set_terms():
    try:
        rates.set_terms(g.creditor, request.form.get("contractual_rate"), request.form.get("formal_notice_days"),
                        user=current_user.email)
    except Invalid as e:
        db.session.rollback()
        return _rates_page(422, {e.field: _message(e)})
    flash(_("Terms saved."))
    return redirect(url_for("creditor.late_payment_rates"))
