"""Back office: one route per action; pages render, services decide."""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy import select

from ..extensions import db, limiter, login_manager
from ..models import CreditorUser, Invoice, PaymentAllocation, Payment
from ..services import NotFound, events, ledger, links, reports, tenants
from ..services.account import today_for
from . import bp
from .forms import ActionForm, ApiKeyForm, LoginForm


@login_manager.user_loader
def load_user(user_id: str):
    return db.session.get(CreditorUser, int(user_id)) if user_id.isdigit() else None


login_manager.login_view = "creditor.login"
login_manager.session_protection = "strong"


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
    try:
        d = ledger.get_debtor(g.creditor.id, ref)
    except NotFound:
        abort(404)
    invoices = db.session.scalars(select(Invoice).where(Invoice.debtor_id == d.id)
                                  .order_by(Invoice.due_date.desc(), Invoice.id.desc())).all()
    return render_template("creditor/debtor.html", debtor=d, invoices=invoices, today=today_for(g.creditor),
                           events=events.latest(g.creditor.id, debtor_id=d.id),
                           links=links.for_debtor(g.creditor.id, d.id), form=ActionForm(),
                           new_link=request.args.get("new_link"))


@bp.post("/debtors/<path:ref>/links")
@login_required
def create_link(ref):
    try:
        d = ledger.get_debtor(g.creditor.id, ref)
    except NotFound:
        abort(404)
    issued = links.issue(d, issued_by="creditor")
    flash(_("New portal link (copy it now): %(url)s", url=issued.url), "link")
    return redirect(url_for("creditor.debtor", ref=d.ref))


@bp.post("/links/<int:link_id>/revoke")
@login_required
def revoke_link(link_id):
    try:
        link = links.revoke(g.creditor.id, link_id)
    except NotFound:
        abort(404)
    flash(_("Link revoked."))
    return redirect(url_for("creditor.debtor", ref=link.debtor.ref))


@bp.get("/invoices/<path:number>")
@login_required
def invoice(number):
    try:
        inv = ledger.get_invoice(g.creditor.id, number)
    except NotFound:
        abort(404)
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
