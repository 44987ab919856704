"""POST /webhooks/stripe and /webhooks/gocardless (CONTRACT §6).

Unsigned, wrongly signed, stale or malformed: 400 and nothing recorded. A provider we cannot
reach while re-fetching an object: 503, nothing recorded, the provider retries. Never a 500
on garbage: parsing happens before anything else.
"""
from __future__ import annotations

from flask import current_app, request

from .. import gateways
from ..extensions import limiter
from ..gateways import BadSignature, GatewayError
from ..services import webhooks
from ..services.checks import has_unstorable
from .blueprint import bp

# A flood guard, not a quota: providers send bursts (a payout can bring hundreds of events).
LIMIT = "100000 per hour"


def _receive(gateway):
    if gateway is None:
        return {"error": {"code": "not_configured", "message": "this provider is not configured"}}, 404
    body = request.get_data(cache=False)
    try:
        notifications = gateway.parse(body, request.headers)
    except BadSignature as e:
        current_app.logger.info("%s webhook refused: %s", gateway.provider, e)
        return {"error": {"code": "bad_signature", "message": "signature missing, wrong or too old"}}, 400
    except (ValueError, RecursionError):  # RecursionError: JSON nested too deep for the parser
        return {"error": {"code": "malformed", "message": "not an event of this provider"}}, 400
    if any(has_unstorable(n.raw) for n in notifications):  # NUL, a control character, a lone surrogate
        return {"error": {"code": "malformed", "message": "not an event of this provider"}}, 400
    try:
        counts = webhooks.receive(gateway, notifications)
    except GatewayError as e:
        current_app.logger.warning("%s webhook postponed: %s", gateway.provider, e)
        return {"error": {"code": "provider_unavailable", "message": "try again later"}}, 503
    return {"received": len(notifications), **counts}


@bp.post("/stripe")
@limiter.limit(LIMIT)
def stripe():
    return _receive(gateways.card())


@bp.post("/gocardless")
@limiter.limit(LIMIT)
def gocardless():
    return _receive(gateways.direct_debit())
