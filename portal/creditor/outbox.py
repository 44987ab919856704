"""The outbox, read-only: messages by status, one message, its HTML as sent, its attachment."""
from __future__ import annotations

import io

from flask import abort, g, make_response, render_template, request, send_file
from flask_login import login_required

from ..services import letters, outbox_view
from .blueprint import bp

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
    pdf = letters.pdf_of(message)
    if not pdf:
        abort(404)
    return send_file(io.BytesIO(pdf), mimetype="application/pdf", as_attachment=True,
                     download_name=message.attachment_name or f"message-{message.id}.pdf")
