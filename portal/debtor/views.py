"""Portal routes. The session holds a debtor id and the link that granted it; every
service call passes that id, so no query can reach another debtor's rows."""
from __future__ import annotations

import time

from flask import current_app, g, redirect, render_template, request, session, url_for

from babel.numbers import format_decimal
from flask_wtf.csrf import generate_csrf

from .. import gateways
from ..domain import phones
from ..extensions import limiter
from ..services import NotFound, account, documents, link_renewal, links, message_banner, statements
from .blueprint import bp
from . import compression
from .page_cache import PageCache
from .session import SESSION_KEY, portal_required

@bp.get("/l/<path:token>")
@limiter.limit("30 per minute")
def open_link(token):
    try:
        opened = links.open_token(token, ip=request.remote_addr)
    except links.LinkRefused as refused:
        session.pop(SESSION_KEY, None)
        # A genuine link, only dead, offers to e-mail a fresh one; a tampered one names nobody.
        return render_template("debtor/error.html", reason="link", token=token if refused.renewable else None), 404
    link = opened.link
    # A fresh session: nothing from a previous debtor or creditor survives the switch.
    session.clear()
    session.permanent = True
    session[SESSION_KEY] = {"debtor": link.debtor_id, "link": link.id, "s": opened.session_id, "t": int(time.time()),
                            "lang": link.debtor.language, "select": link.invoice_numbers or [],
                            "message": link.message_id}
    generate_csrf()  # the session's CSRF secret is set now, so the session cookie stays stable
    # The token leaves the address bar (and the browser history) here. A link sent about a
    # dispute lands on its thread (that view shows it to its own debtor only).
    target = (url_for("debtor.dispute", dispute_id=opened.dispute_id) if opened.dispute_id is not None
              else url_for("debtor.home"))
    return redirect(target, code=303)


@bp.post("/l/<path:token>")
@limiter.limit("10 per minute")
def renew_link(token):
    """"Send me a new link": the page says the same whatever happened (CONTRACT §10)."""
    link_renewal.renew(token)
    return render_template("debtor/error.html", reason="renewal")


pages = PageCache()
bp.record_once(lambda state: compression.install(state.app))


@bp.get("/portal/")
@portal_required
def home():
    selected = session[SESSION_KEY].get("select") or []
    ticked = session[SESSION_KEY].get("ticked")  # the debtor's own ticks, posted by "Recalculate"
    message_id = session[SESSION_KEY].get("message")  # the message whose link opened this session
    generate_csrf()  # the page's forms need it; its secret is part of the cache key
    version, today = g.account_version  # read with the session's check (session.portal_required)
    key = (g.debtor_id, version, today, g.locale, tuple(selected), repr(ticked), message_id, session.get("csrf_token"))
    page = None if session.get("_flashes") else pages.get(key)
    if page is None:
        acc = account.load(g.debtor_id)
        # Ticked: what the debtor ticked last, else what the message asked for, else all they can pay.
        ticks = _ticks(acc, ticked) if isinstance(ticked, dict) else set(selected or acc.default_ticks())
        html = render_template("debtor/home.html", acc=acc, selected=set(selected), ticked=ticks,
                               banner=message_banner.for_session(g.debtor_id, message_id, selected, g.locale),
                               card_enabled=gateways.card() is not None,
                               dd_enabled=gateways.direct_debit() is not None,
                               sms_enabled=gateways.sms() is not None, sms_number=_phone(acc.debtor.phone),
                               percent=_percent)
        page = compression.Page(html)
        pages.put(key, page)
    return compression.respond(page)


def _ticks(acc, ticked: dict) -> set[str]:
    """What "Recalculate" kept (debtor/payments._ticks): the ticked numbers, or all but some."""
    if "all_but" in ticked:
        return {line.invoice.number for line in acc.payable} - set(ticked["all_but"])
    return set(ticked.get("only") or ())


def _phone(number: str | None) -> str | None:
    """The debtor's number as people write it, for the SMS choice; as typed if it is no number."""
    if not number:
        return None
    try:
        return phones.display(number).replace(" ", "\u00a0")  # a number is never cut across lines
    except phones.InvalidPhone:
        return number


def _percent(value) -> str:
    """An early-payment discount's rate as its reader writes it: "2 %" (French), "2%" (English)."""
    number = format_decimal(value, "0.##", locale=g.locale)
    return number + ("\u00a0%" if g.locale == "fr" else "%")


@bp.get("/portal/invoices/<path:number>.pdf")
@portal_required
def invoice_pdf(number):
    invoice = account.invoice_for(g.debtor_id, number)
    doc = documents.pdf_for(invoice, actor="debtor")
    response = current_app.response_class(doc.content, mimetype="application/pdf")
    response.headers["Content-Disposition"] = f'inline; filename="{doc.filename}"'
    return response


@bp.get("/portal/statement")
@portal_required
def statement():
    soa = statements.for_debtor(g.debtor_id, request.args.get("from"), request.args.get("to"))
    return render_template("debtor/statement.html", acc=soa, soa=soa), 422 if soa.error else 200


@bp.get("/portal/statement.pdf")
@portal_required
def statement_pdf():
    soa = statements.pdf(g.debtor_id, request.args.get("from"), request.args.get("to"), actor="debtor")
    if soa.error:
        return render_template("debtor/statement.html", acc=soa, soa=soa), 422
    response = current_app.response_class(soa.content, mimetype="application/pdf")
    response.headers["Content-Disposition"] = f'attachment; filename="{soa.filename}"'
    return response


@bp.post("/portal/logout")
@portal_required
def logout():
    links.end_session(session.pop(SESSION_KEY)["s"])  # over on the server too: a copied cookie is refused
    return render_template("debtor/error.html", reason="logged_out")


@bp.errorhandler(404)
@bp.errorhandler(NotFound)
def not_found(_e):
    return render_template("debtor/error.html", reason="not_found"), 404
