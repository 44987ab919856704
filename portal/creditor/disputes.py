"""Back-office routes for disputes: the queue, one dispute with its thread, replying (with an
optional attachment), resolving, and downloading attachments. Every query goes through the
service with g.creditor.id, so another creditor's dispute reads as not found."""
from __future__ import annotations

from flask import current_app, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from .. import uploads
from ..models import DISPUTE_RESOLUTIONS
from ..services import ServiceError, dispute_files, dispute_mail, disputes
from ..domain.calendar import today_for
from .auth import session_creditor
from .blueprint import TOO_LARGE, bp


def _error_text(e: ServiceError) -> str:
    return {"body_required": _("Write a message."),
            "body_too_long": _("The message is too long (5000 characters at most)."),
            "body_invalid": _("The message contains characters that cannot be stored."),
            "file_too_large": _("The file is too large: 5 MB at most."),
            "file_type": _("Only PDF, PNG or JPEG files can be attached."),
            "file_name": _("The file name cannot be used: rename the file and choose it again."),
            "resolved": _("This dispute is resolved already."),
            "resolution": _("Choose how the dispute is resolved."),
            "amount_required": _("Enter the amount."),
            "amount_unexpected": _("A rejection takes no amount: leave the amount empty."),
            "amount_over_balance": _("A credit note cannot be more than the invoice's balance."),
            "amount_below_paid": _("The corrected amount cannot be less than what was already paid."),
            "amount_same": _("This is the invoice's amount already."),
            }.get(e.code, _("Enter an amount like 120.50.") if e.field == "amount" else e.message)


def reply_too_large(e):
    """Over the server's limit, refused while the form is read (before the view): on the reply
    form, say why on the dispute's page."""
    if current_user.is_authenticated:  # raised before the blueprint's own locale was set
        g.locale = session_creditor().language
    flash(_("The file is too large: 5 MB at most."), "error")
    return redirect(url_for("creditor.dispute_detail", dispute_id=(request.view_args or {})["dispute_id"]), code=303)


TOO_LARGE["creditor.dispute_reply"] = reply_too_large


@bp.get("/disputes")
@login_required
def dispute_queue():
    status = request.args.get("status")
    status = status if status in ("open", "resolved") else None
    return render_template("creditor/disputes.html", rows=disputes.queue(g.creditor.id, status), status=status,
                           reasons=dispute_mail.REASON_LABELS, resolutions=dispute_mail.RESOLUTION_LABELS)


def _detail_page(dispute_id, status=200, *, reply_errors=None, resolve_errors=None, values=None):
    detail = disputes.creditor_detail(g.creditor.id, dispute_id)
    return render_template("creditor/dispute.html", detail=detail, d=detail.dispute, inv=detail.invoice,
                           debtor=detail.debtor, events=detail.events, today=today_for(g.creditor),
                           reasons=dispute_mail.REASON_LABELS, resolutions=dispute_mail.RESOLUTION_LABELS,
                           resolution_codes=DISPUTE_RESOLUTIONS, reply_errors=reply_errors or {},
                           resolve_errors=resolve_errors or {}, values=values or {},
                           max_mb=dispute_files.MAX_ATTACHMENT_BYTES // (1024 * 1024)), status


@bp.get("/disputes/<int:dispute_id>")
@login_required
def dispute_detail(dispute_id):
    return _detail_page(dispute_id)


@bp.post("/disputes/<int:dispute_id>/reply")
@login_required
def dispute_reply(dispute_id):
    upload, too_large = uploads.attachment()
    try:
        if too_large:
            raise too_large
        disputes.creditor_reply(g.creditor.id, dispute_id, user=current_user.email, body=request.form.get("body"),
                                upload=upload)
    except ServiceError as e:
        if e.code == "not_found":
            raise
        field = "body" if e.field == "message" else ("attachment" if e.field == "attachment" else "form")
        return _detail_page(dispute_id, 422, reply_errors={field: _error_text(e)},
                            values={"body": request.form.get("body") or ""})
    flash(_("Reply sent."))
    return redirect(url_for("creditor.dispute_detail", dispute_id=dispute_id), code=303)


@bp.post("/disputes/<int:dispute_id>/resolve")
@login_required
def dispute_resolve(dispute_id):
    # A French creditor types "12,50": the amount parser reads a dot.
    amount = (request.form.get("amount") or "").strip().replace(",", ".") or None
    try:
        d = disputes.resolve(g.creditor.id, dispute_id, user=current_user.email,
                             resolution=request.form.get("resolution"), amount=amount, note=request.form.get("note"))
    except ServiceError as e:
        if e.code == "not_found":
            raise
        field = e.field if e.field in ("resolution", "amount", "note") else "form"
        return _detail_page(dispute_id, 422, resolve_errors={field: _error_text(e)},
                            values={"resolution": request.form.get("resolution"),
                                    "amount": request.form.get("amount") or "", "note": request.form.get("note") or ""})
    flash(_("Dispute resolved: %(resolution)s.", resolution=dispute_mail.RESOLUTION_LABELS[d.resolution]))
    return redirect(url_for("creditor.dispute_detail", dispute_id=dispute_id), code=303)


@bp.get("/disputes/<int:dispute_id>/attachments/<int:attachment_id>")
@login_required
def dispute_attachment(dispute_id, attachment_id):
    row = disputes.creditor_attachment(g.creditor.id, dispute_id, attachment_id)
    # Typed by what the bytes are (sniffed at upload), always a download, never rendered here.
    response = current_app.response_class(row.content, mimetype=row.content_type)
    response.headers["Content-Disposition"] = f'attachment; filename="{row.filename}"'
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, no-store"
    return response
