"""The debtors list (`/app/debtors`: the home is Today) and one debtor's page, the collector's
workplace: its invoices (status in words, PDF, promise, dispute), the messages sent to it,
events, portal links, mandate and payment attempts; editing its contacts, postal address and
kind, its owner, notes to colleagues; switching automatic collection, issuing and revoking portal
links."""
from __future__ import annotations

from babel.numbers import format_decimal
from flask import abort, current_app, flash, g, redirect, render_template, request, url_for
from flask_babel import get_locale, gettext as _, ngettext
from flask_login import current_user, login_required

from .. import gateways
from ..services import (Invalid, NotFound, contacts, creditor_users, debtor_view, documents, events, ladder, ledger,
                        links, mandates, notes, owners, payer, receivables, reversals)
from ..domain import phones
from ..domain.calendar import today_for
from ..services.debtors import AP_CONTACT_MAX
from .blueprint import bp
from .forms import ActionForm
from .messages import message


@bp.app_template_filter("debtor_phone")
def phone(value) -> str:
    """A stored number as people write it ("06 12 34 56 78"); one stored before numbers were
    checked is shown as it was typed."""
    try:
        return phones.display(value) if value else ""
    except phones.InvalidPhone:
        return value


@bp.get("/debtors")
@login_required
def debtors():
    q = (request.args.get("q") or "").strip()[:100]
    sort = request.args.get("sort") if request.args.get("sort") in payer.SORTS else "balance"
    direction = request.args.get("dir") if request.args.get("dir") in ("asc", "desc") else payer.SORTS[sort]
    mine = request.args.get("mine") == "1"
    rows = payer.debtor_list(g.creditor, today_for(g.creditor), q or None, sort, direction,
                             owner_id=current_user.id if mine else None)
    owners_by_id = {u.id: u.email for u in creditor_users.of_creditor(g.creditor.id)}
    return render_template("creditor/debtors.html", rows=rows, q=q, sort=sort, direction=direction,
                           sorts=payer.SORTS, mine=mine, owners=owners_by_id)


@bp.get("/debtors/<path:ref>")
@login_required
def debtor(ref):
    return _debtor_page(ledger.get_debtor(g.creditor.id, ref))


def _debtor_page(d, status=200, errors=None, typed=None, contact_typed=None, note_typed=None):
    """The debtor's page; `errors` and the `*typed` refill the form refused."""
    cid = g.creditor.id
    return render_template("creditor/debtor.html", debtor=d, invoices=receivables.debtor_invoices(d.id),
                           today=today_for(g.creditor), events=events.latest(cid, debtor_id=d.id),
                           links=links.for_debtor(cid, d.id), form=ActionForm(),
                           new_link=request.args.get("new_link"), credit=ledger.debtor_credit(d.id),
                           mandate=mandates.current(d.id), attempts=reversals.recent_attempts(cid, d.id, 20),
                           dd_enabled=gateways.direct_debit() is not None, failed=ladder.failed_steps(d.id), kinds=ledger.KINDS,
                           errors=errors or {}, typed=typed, contact_typed=contact_typed, note_typed=note_typed,
                           behaviour=payer.behaviour(d, today_for(g.creditor)),
                           users=creditor_users.of_creditor(cid), notes=notes.for_debtor(cid, d.id),
                           promises=debtor_view.live_promises(cid, d.id), disputes=debtor_view.open_disputes(cid, d.id),
                           sent=debtor_view.messages_sent(cid, d.id), note_max=notes.MAX_CHARS), status


@bp.post("/debtors/<path:ref>/details")
@login_required
def update_debtor_details(ref):
    """The postal address letters go to, and the kind of debtor (the legal basis follows it): the
    API's checks and its debtor.updated event; name, e-mail and language stay as they are."""
    d = ledger.get_debtor(g.creditor.id, ref)
    typed = {"address": request.form.get("address", ""), "kind": request.form.get("kind", "")}
    try:
        ledger.upsert_debtor(g.creditor, d.ref, {"name": d.name, "language": d.language, **typed}, actor="creditor")
    except Invalid as e:  # refused before anything was written
        return _debtor_page(d, 422, {e.field: message(e)}, typed)
    flash(_("Postal address and kind of debtor saved."))
    return redirect(url_for("creditor.debtor", ref=d.ref))  # the top: the flash and the form in view


CONTACT_FIELDS = ("email", "phone", "language", "ap_contact")


def _contact_error(e: Invalid) -> str:
    """The refusal in the reader's language, on its field."""
    if e.field == "email":
        return _("Enter a valid e-mail address, like compta@client.fr, or leave it empty.")
    if e.field == "language":
        return _("Choose French or English.")
    if e.field == "phone":
        return {"country_code": _("Unknown country code: write the number as +33 6 12 34 56 78."),
                "too_short": _("This number is too short."), "too_long": _("This number is too long."),
                "invalid": _("No phone line has this number: check it.")}.get(
                    e.code, _("This is not a phone number: write it as 06 12 34 56 78 or +33 6 12 34 56 78."))
    if "control characters" in e.message:
        return _("This text contains characters that cannot be stored.")
    return _("The accounts-payable contact has %(num)s characters at most.", num=_count(AP_CONTACT_MAX))


def _count(n: int) -> str:
    return format_decimal(n, locale=str(get_locale() or "fr"))


@bp.post("/debtors/<path:ref>/contacts")
@login_required
def update_debtor_contacts(ref):
    """E-mail, phone (stored E.164), language and the accounts-payable contact: the API's checks
    and its debtor.updated event; a corrected e-mail sends failed reminders again."""
    d = ledger.get_debtor(g.creditor.id, ref)
    typed = {k: request.form.get(k, "") for k in CONTACT_FIELDS}
    try:
        contacts.save(g.creditor, d, typed)
    except Invalid as e:
        return _debtor_page(d, 422, {e.field: _contact_error(e)}, contact_typed=typed)
    flash(_("Contacts saved."))
    return redirect(url_for("creditor.debtor", ref=d.ref) + "#contacts", code=303)


@bp.post("/debtors/<path:ref>/owner")
@login_required
def set_debtor_owner(ref):
    d = ledger.get_debtor(g.creditor.id, ref)
    raw = request.form.get("owner", "")
    try:
        owner = owners.assign(d, int(raw) if raw.isdigit() else None, user=current_user.email)
    except Invalid:  # someone else's user: nobody here by that id
        return _debtor_page(d, 422, {"owner": _("Choose one of your colleagues.")})
    flash(_("%(email)s is now in charge of this debtor.", email=owner.email) if owner else
          _("Nobody is in charge of this debtor now."))
    return redirect(url_for("creditor.debtor", ref=d.ref) + "#contacts", code=303)


@bp.post("/debtors/<path:ref>/notes")
@login_required
def add_debtor_note(ref):
    d = ledger.get_debtor(g.creditor.id, ref)
    body = request.form.get("body", "")
    try:
        note = notes.add(g.creditor, d, current_user, body)
    except Invalid as e:
        return _debtor_page(d, 422, {"body": {
            "empty": _("Write the note first."),
            "too_long": _("A note has %(num)s characters at most.", num=_count(notes.MAX_CHARS)),
        }.get(e.code, _("This text contains characters that cannot be stored."))}, note_typed=body)
    told = len([i for i in note.mentions if i != current_user.id])
    flash(_("Note added.") + (" " + ngettext("The colleague mentioned gets it by e-mail.",
                                             "The %(num)d colleagues mentioned get it by e-mail.", told) if told else ""))
    return redirect(url_for("creditor.debtor", ref=d.ref) + "#notes", code=303)


@bp.get("/invoice-pdf/<path:number>")  # not under /invoices/<path>: a number may hold "/" and "."
@login_required
def invoice_pdf(number):
    """The invoice's PDF as the debtor gets it: the uploaded document, or else its summary."""
    inv = ledger.get_invoice(g.creditor.id, number)  # another creditor's number: 404
    try:
        doc = documents.document_of(inv)
    except NotFound:
        abort(404)
    response = current_app.response_class(doc.content, mimetype="application/pdf")
    response.headers["Content-Disposition"] = f'inline; filename="{doc.filename}"'
    return response


@bp.post("/debtors/<path:ref>/auto-collect")
@login_required
def set_auto_collect(ref):
    d = ledger.get_debtor(g.creditor.id, ref)
    enabled = request.form.get("enabled") == "1"
    mandates.set_auto_collect(d, enabled, actor="creditor")
    flash(_("Automatic collection on due dates is on.") if enabled else _("Automatic collection is off."))
    return redirect(url_for("creditor.debtor", ref=d.ref))


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
