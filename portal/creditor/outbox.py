"""The outbox: messages by status, one message, its HTML as sent, its attachment; and the print
queue, where a letter's postal address and PDF are shown and the letter is marked posted."""
from __future__ import annotations

import io
from datetime import date

from flask import abort, flash, g, make_response, redirect, render_template, request, send_file, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import DateField, RadioField, StringField
from wtforms.validators import InputRequired, Length

from ..domain.calendar import today_for
from ..services import Conflict, Invalid, NotFound, letters, outbox_view
from .blueprint import bp

#: the e-mail as sent: its own inline styles, nothing else (no script, no request, no form)
MESSAGE_HTML_CSP = "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:"


class PostedForm(FlaskForm):
    """Mark one letter posted; prefixed by the letter's id, so that each card's fields have ids of
    their own. Checked by letters.mark_posted (registered needs a number, the day's range)."""
    postage = RadioField("Postage", choices=list(letters.POSTAGES), validators=[InputRequired()])
    tracking_number = StringField("Tracking number", validators=[Length(max=60)])
    posted_on = DateField("Posted on", validators=[InputRequired()])


def _form(message, today: date, formdata=None) -> PostedForm:
    return PostedForm(formdata=formdata, prefix=f"letter-{message.id}",
                      postage="registered" if message.delivery == "registered" else "ordinary", posted_on=today)


def _errors(e: Invalid) -> dict:
    """The service's refusal in words, on its field."""
    return {e.field: {
        "tracking_required": _("A registered letter needs its tracking number."),
        "tracking_number": _("A tracking number is 8 to 20 letters and digits, as on the La Poste receipt."),
        "future": _("The posting day cannot be in the future."),
        "before_letter": _("The letter was written after that day."),
        "no_address": _("No postal address: add one before posting."),
    }.get(e.code, _("Choose ordinary or registered postage.") if e.field == "postage" else _("Check this field."))}


def _queue_page(status=200, *, failed=None, form=None, errors=None):
    """The letters to post (each with its own form; the one just refused keeps what was typed)
    and the letters posted."""
    today = today_for(g.creditor)
    waiting = [(m, d, form if failed == m.id else _form(m, today), letters.recipient_lines(d) if d.address else None,
                letters.written_day(m, g.creditor)) for m, d in letters.to_post(g.creditor.id)]
    done = [(m, d, letters.posted_day(m, g.creditor)) for m, d in letters.posted(g.creditor.id)]
    return render_template("creditor/outbox.html", view="letters", waiting=waiting, posted=done, today=today,
                           failed=failed, errors=errors or {}), status


@bp.get("/outbox")
@login_required
def outbox():
    status = request.args.get("status") or None
    if status not in outbox_view.STATUSES:
        status = None
    return render_template("creditor/outbox.html", view="messages",
                           rows=outbox_view.latest(g.creditor.id, status=status), status=status,
                           statuses=outbox_view.STATUSES, to_post=letters.to_post_count(g.creditor.id))


@bp.get("/outbox/letters")
@login_required
def print_queue():
    return _queue_page()


@bp.post("/outbox/<int:message_id>/posted")
@login_required
def mark_posted(message_id):
    """Mark a letter posted (CSRF: the form's token). Refused: the page again, the field named."""
    form = PostedForm(prefix=f"letter-{message_id}")
    if not form.validate_on_submit():
        field = next(iter(form.errors), "posted_on")
        field = "posted_on" if field == "csrf_token" else field
        return _queue_page(422, failed=message_id, form=form, errors={field: {
            "postage": _("Choose ordinary or registered postage."), "posted_on": _("Enter the day it was posted."),
            "tracking_number": _("A tracking number is 8 to 20 letters and digits, as on the La Poste receipt."),
        }[field]})
    try:
        message = letters.mark_posted(g.creditor, message_id, form.postage.data, form.tracking_number.data,
                                      form.posted_on.data, user=current_user.email)
    except NotFound:
        abort(404)
    except Conflict:
        flash(_("This letter was already marked posted: nothing changed."), "error")
        return _queue_page(409)
    except Invalid as e:
        return _queue_page(422, failed=message_id, form=form, errors=_errors(e))
    flash(_("Letter marked posted: it is on the debtor's timeline.") if message.postage == "ordinary" else
          _("Registered letter marked posted (no. %(number)s): it is on the debtor's timeline.",
            number=message.tracking_number))
    return redirect(url_for("creditor.print_queue") + "#posted", code=303)


@bp.get("/outbox/<int:message_id>")
@login_required
def outbox_message(message_id):
    message, debtor = outbox_view.get(g.creditor.id, message_id)
    return render_template("creditor/outbox_message.html", message=message, debtor=debtor,
                           posted_on=letters.posted_day(message, g.creditor))


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
