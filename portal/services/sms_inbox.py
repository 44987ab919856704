"""What Twilio tells us about SMS (CONTRACT §9): delivery statuses of the messages the outbox
sent, and the debtors' replies: STOP and its kin opt a number out (for every creditor: the
deployment has one sender), START opts it back in, anything else reaches the creditor who
texted that number last. The portal's own opt-out is here too.

Each callback is claimed in the webhook ledger (unique provider + event id) in the transaction
that applies it, as the payment webhooks are: a redelivery is a no-op.
"""
from __future__ import annotations

import re
import unicodedata

from sqlalchemy import func, select, update

from ..domain import phones
from ..extensions import db
from ..models import Debtor, OutboxMessage
from . import NotFound, events, webhooks

PROVIDER = "twilio"
# Twilio's default opt-out keywords, and the French one its Advanced Opt-Out adds (ARRET, which
# people also write ARRÊT): compared accent-, case- and space-insensitively on the whole body.
OPT_OUT_WORDS = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "ARRET"}
OPT_IN_WORDS = {"START", "UNSTOP"}
# How far a delivery status has gone: a late callback never moves a message back (a "sent"
# arriving after "delivered"); the three last are final and never replaced by one another.
STATUS_RANK = {"accepted": 0, "scheduled": 0, "queued": 1, "sending": 2, "sent": 3,
               "delivered": 4, "undelivered": 4, "failed": 4, "read": 5}
FAILED = ("undelivered", "failed")
REPLY_LIMIT = 1600  # Twilio's own limit on a message body


def keyword(body: str) -> str:
    """The body as one keyword: no accents, upper case, no spaces ("  Arrêt " -> "ARRET")."""
    plain = "".join(c for c in unicodedata.normalize("NFD", body or "") if not unicodedata.combining(c))
    return re.sub(r"\s+", "", plain).upper()


def _claim(event_id: str, type: str, params: dict) -> int | None:
    return webhooks.claim(PROVIDER, event_id, type, params)


def _outcome(claimed: int, outcome: str) -> str:
    if outcome != "applied":
        webhooks.set_outcome(claimed, outcome)
    db.session.commit()
    return outcome


# --- delivery statuses ---------------------------------------------------------------------------

def apply_status(params: dict) -> str:
    """A status callback: the message's delivery_status moves forward only; undelivered or
    failed puts an event on the debtor. Returns applied, ignored or duplicate."""
    sid, status = params.get("MessageSid") or params.get("SmsSid"), (params.get("MessageStatus") or "").lower()
    if not sid or status not in STATUS_RANK:
        return "ignored"
    message = db.session.scalar(select(OutboxMessage).where(OutboxMessage.provider_message_id == sid))
    if message is None:
        # Not (yet) ours: the outbox may not have committed the SID when an early callback comes.
        # Nothing is claimed, so nothing blocks the outbox's own look-up (gateway.status_of).
        return "ignored"
    claimed = _claim(f"{sid}:{status}", f"status.{status}", params)
    if claimed is None:
        db.session.rollback()
        return "duplicate"
    behind = [s for s, rank in STATUS_RANK.items() if rank < STATUS_RANK[status]]
    # One statement that compares and sets: two callbacks racing cannot both win.
    moved = db.session.execute(
        update(OutboxMessage).where(OutboxMessage.id == message.id,
                                    (OutboxMessage.delivery_status.is_(None)) | OutboxMessage.delivery_status.in_(behind))
        .values(delivery_status=status).execution_options(synchronize_session=False)).rowcount
    if not moved:
        return _outcome(claimed, "ignored")
    if status in FAILED:
        code = params.get("ErrorCode")
        events.record("sms.undelivered", creditor_id=message.creditor_id, debtor_id=message.debtor_id,
                      actor="system", message_id=message.id, status=status, to=message.to_addr,
                      error_code=int(code) if code and code.isdigit() else code)
    return _outcome(claimed, "applied")


# --- replies -------------------------------------------------------------------------------------

def debtors_with_number(number: str) -> list[Debtor]:
    """Every debtor, of every creditor, whose phone is `number` (E.164) however it was typed."""
    digits = re.sub(r"\D", "", number)
    if len(digits) < 6:
        return []
    stripped = Debtor.phone
    for c in " .-()/":  # what people put between digits; the exact match is checked below
        stripped = func.replace(stripped, c, "")
    candidates = db.session.scalars(select(Debtor).where(Debtor.phone.is_not(None),
                                                         stripped.like(f"%{digits[-8:]}")).order_by(Debtor.id))
    found = []
    for debtor in candidates:
        try:
            if phones.to_e164(debtor.phone) == number:
                found.append(debtor)
        except phones.InvalidPhone:
            continue
    return found


def apply_inbound(params: dict) -> str:
    """A message a debtor texted to our sender. Returns applied, ignored or duplicate."""
    sid, sender, body = params.get("MessageSid") or params.get("SmsSid"), params.get("From") or "", params.get("Body") or ""
    if not sid or not sender:
        return "ignored"
    word = keyword(body)
    kind = "opt_out" if word in OPT_OUT_WORDS else "opt_in" if word in OPT_IN_WORDS else "reply"
    claimed = _claim(sid, f"inbound.{kind}", params)
    if claimed is None:
        db.session.rollback()
        return "duplicate"
    if kind == "reply":
        return _outcome(claimed, _route_reply(sender, body, sid))
    changed = 0
    for debtor in debtors_with_number(sender):
        changed += _set_opt_out(debtor, kind == "opt_out", via="sms", keyword=word, sid=sid)
    return _outcome(claimed, "applied" if changed else "ignored")


def _route_reply(sender: str, body: str, sid: str) -> str:
    """To the creditor and debtor of the last SMS sent to that number; with none sent, to the
    one debtor with that number (several: nobody can tell whose it is)."""
    last = db.session.execute(
        select(OutboxMessage.id, OutboxMessage.creditor_id, OutboxMessage.debtor_id)
        .where(OutboxMessage.channel == "sms", OutboxMessage.to_addr == sender, OutboxMessage.sent_at.is_not(None))
        .order_by(OutboxMessage.sent_at.desc(), OutboxMessage.id.desc()).limit(1)).first()
    if last is not None:
        message_id, creditor_id, debtor_id = last
    else:
        found = debtors_with_number(sender)
        if len(found) != 1:
            return "ignored"
        message_id, creditor_id, debtor_id = None, found[0].creditor_id, found[0].id
    events.record("sms.replied", creditor_id=creditor_id, debtor_id=debtor_id, actor="debtor",
                  text=body[:REPLY_LIMIT], sender=sender, message_id=message_id, sid=sid)
    return "applied"


# --- opting out and back in ----------------------------------------------------------------------

def _set_opt_out(debtor: Debtor, opted_out: bool, **data) -> bool:
    """Set the debtor's choice and record it, unless it already stands; whether it changed."""
    moved = db.session.execute(
        update(Debtor).where(Debtor.id == debtor.id, Debtor.sms_opt_out == (not opted_out))
        .values(sms_opt_out=opted_out).execution_options(synchronize_session=False)).rowcount
    if moved:
        events.record("sms.opted_out" if opted_out else "sms.opted_in", creditor_id=debtor.creditor_id,
                      debtor_id=debtor.id, actor="debtor", number=debtor.phone, **data)
    return bool(moved)


def portal_choice(debtor_id: int, opted_out: bool) -> bool:
    """The debtor's choice in the portal ("Stop text messages" or "Receive them again"); whether
    it changed anything. Its event is what renews the portal's cached page (account.live_version)."""
    debtor = db.session.get(Debtor, debtor_id)
    if debtor is None or not debtor.phone:
        raise NotFound("no such debtor")
    changed = _set_opt_out(debtor, opted_out, via="portal")
    db.session.commit()
    return changed

