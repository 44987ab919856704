"""Portal routes for disputes: raise one on an open invoice, follow its thread, reply, and
download its attachments. Every form works without JavaScript; a refused form is shown again
with its errors (422), a success redirects (303) with a flash message."""
from __future__ import annotations

from flask import current_app, flash, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from werkzeug.exceptions import RequestEntityTooLarge

from .. import uploads
from ..models import DISPUTE_REASONS
from ..services import ServiceError, dispute_files, dispute_mail, disputes
from .blueprint import bp
from .session import SESSION_KEY, portal_required


def _error_text(e: ServiceError) -> str:
    """The service speaks English; the debtor reads their own language."""
    return {"reason": _("Choose a reason."),
            "body_required": _("Write a few words to explain."),
            "body_too_long": _("Your message is too long (5000 characters at most)."),
            "body_invalid": _("Your message contains characters that cannot be stored."),
            "file_too_large": _("The file is too large: 5 MB at most."),
            "file_type": _("Only PDF, PNG or JPEG files can be attached."),
            "file_name": _("The file name cannot be used: rename the file and choose it again."),
            "already_open": _("This invoice already has an open dispute."),
            "not_open": _("Only an open invoice can be disputed."),
            "resolved": _("This dispute is resolved: you can no longer reply to it.")}.get(e.code, e.message)


@bp.errorhandler(RequestEntityTooLarge)
def too_large(e):
    """A request over the server's limit (MAX_CONTENT_LENGTH) is refused while the form is read,
    before the view (CSRF reads it first): on a dispute form, say why where it was sent from."""
    args = request.view_args or {}
    if request.endpoint == "debtor.dispute_create":
        target = url_for("debtor.dispute_form", number=args["number"])
    elif request.endpoint == "debtor.dispute_reply":
        target = url_for("debtor.dispute", dispute_id=args["dispute_id"])
    else:
        return e
    # Raised before the view (and portal_required) ran: the message in the session's language.
    g.locale = (session.get(SESSION_KEY) or {}).get("lang", "fr")
    flash(_("The file is too large: 5 MB at most."), "error")
    return redirect(target, code=303)


@bp.get("/portal/invoices/<path:number>/dispute")
@portal_required
def dispute_form(number):
    page = disputes.new_dispute_page(g.debtor_id, number)
    if page.dispute is not None:  # one open dispute per invoice: show it
        return redirect(url_for("debtor.dispute", dispute_id=page.dispute.id), code=303)
    return render_template("debtor/dispute_form.html", acc=page, inv=page.invoice, reasons=DISPUTE_REASONS,
                           labels=dispute_mail.REASON_LABELS, values={}, errors={},
                           max_mb=dispute_files.MAX_ATTACHMENT_BYTES // (1024 * 1024))


@bp.post("/portal/invoices/<path:number>/dispute")
@portal_required
def dispute_create(number):
    upload, too_large = uploads.attachment()
    try:
        if too_large:
            raise too_large
        dispute = disputes.open_dispute(g.debtor_id, number, reason=request.form.get("reason"),
                                        comment=request.form.get("comment"), upload=upload)
    except ServiceError as e:
        if e.code == "not_found":
            raise
        if e.code == "already_open":
            existing = disputes.open_dispute_for(g.debtor_id, number)
            if existing is not None:
                flash(_error_text(e), "error")
                return redirect(url_for("debtor.dispute", dispute_id=existing.id), code=303)
        page = disputes.new_dispute_page(g.debtor_id, number)
        field = e.field if e.field in ("reason", "comment", "attachment") else "form"
        return render_template("debtor/dispute_form.html", acc=page, inv=page.invoice, reasons=DISPUTE_REASONS,
                               labels=dispute_mail.REASON_LABELS, errors={field: _error_text(e)},
                               values={"reason": request.form.get("reason"),
                                       "comment": request.form.get("comment") or ""},
                               max_mb=dispute_files.MAX_ATTACHMENT_BYTES // (1024 * 1024)), 422
    flash(_("Your dispute is recorded. Reminders for this invoice are paused until it is resolved."), "info")
    return redirect(url_for("debtor.dispute", dispute_id=dispute.id), code=303)


def _thread_page(dispute_id, status=200, errors=None, body=""):
    thread = disputes.debtor_thread(g.debtor_id, dispute_id)
    return render_template("debtor/dispute.html", acc=thread, thread=thread, d=thread.dispute, inv=thread.invoice,
                           reasons=dispute_mail.REASON_LABELS, resolutions=dispute_mail.RESOLUTION_LABELS,
                           errors=errors or {}, body=body,
                           max_mb=dispute_files.MAX_ATTACHMENT_BYTES // (1024 * 1024)), status


@bp.get("/portal/disputes/<int:dispute_id>")
@portal_required
def dispute(dispute_id):
    return _thread_page(dispute_id)


@bp.post("/portal/disputes/<int:dispute_id>/messages")
@portal_required
def dispute_reply(dispute_id):
    upload, too_large = uploads.attachment()
    try:
        if too_large:
            raise too_large
        disputes.debtor_reply(g.debtor_id, dispute_id, body=request.form.get("body"), upload=upload)
    except ServiceError as e:
        if e.code == "not_found":
            raise
        field = "body" if e.field == "message" else ("attachment" if e.field == "attachment" else "form")
        return _thread_page(dispute_id, 422, {field: _error_text(e)}, request.form.get("body") or "")
    flash(_("Your message is sent."), "info")
    return redirect(url_for("debtor.dispute", dispute_id=dispute_id), code=303)


@bp.get("/portal/disputes/<int:dispute_id>/attachments/<int:attachment_id>")
@portal_required
def dispute_attachment(dispute_id, attachment_id):
    row = disputes.debtor_attachment(g.debtor_id, dispute_id, attachment_id)
    return attachment_response(row)


def attachment_response(row):
    """The stored bytes as a download, typed by what they are (sniffed), never rendered inline."""
    response = current_app.response_class(row.content, mimetype=row.content_type)
    response.headers["Content-Disposition"] = f'attachment; filename="{row.filename}"'
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, no-store"
    return response
