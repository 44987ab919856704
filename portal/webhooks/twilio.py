"""POST /webhooks/twilio (CONTRACT §9): status callbacks of the SMS we sent and the messages
debtors text to our sender, both form posts signed with X-Twilio-Signature.

The signature covers the URL Twilio requested, which is our public one (PORTAL_BASE_URL: behind
a proxy request.url would be the internal one), and every POSTed parameter. Forged or missing:
403 and nothing recorded. Twilio reads our answer as TwiML: an empty <Response/> sends nothing back
(Twilio itself answers STOP and START with its own confirmation).
"""
from __future__ import annotations

from flask import current_app, request

from .. import gateways
from ..extensions import limiter
from ..services import sms_inbox
from ..services.checks import has_unstorable
from .blueprint import bp
from .views import LIMIT

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'


def _twiml(status: int = 200):
    return current_app.response_class(EMPTY_TWIML if status == 200 else "", status=status, mimetype="text/xml")


def public_url() -> str:
    """The URL as Twilio requested it: our public base, this path and its query, if any."""
    query = request.query_string.decode("latin-1")
    return current_app.config["PORTAL_BASE_URL"] + request.path + (f"?{query}" if query else "")


@bp.post("/twilio")
@limiter.limit(LIMIT)
def twilio():
    gateway = gateways.sms()
    if gateway is None:
        return {"error": {"code": "not_configured", "message": "SMS is not configured"}}, 404
    form = request.form
    if not gateway.verify_signature(public_url(), form, request.headers.get("X-Twilio-Signature")):
        current_app.logger.info("twilio webhook refused: signature missing or wrong")
        return {"error": {"code": "bad_signature", "message": "signature missing or wrong"}}, 403
    params = {k: form.get(k) for k in form}  # Twilio sends each parameter once
    if has_unstorable(params):  # NUL or a lone surrogate: no column would take it
        return {"error": {"code": "malformed", "message": "not a Twilio callback"}}, 400
    if params.get("MessageStatus") and params.get("MessageStatus") != "received":
        outcome = sms_inbox.apply_status(params)
    else:
        outcome = sms_inbox.apply_inbound(params)
    current_app.logger.info("twilio webhook %s: %s", params.get("MessageSid"), outcome)
    return _twiml()
