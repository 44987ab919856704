"""The outbox's SMS side: messages of channel 'sms' handed to Twilio, never twice (CONTRACT §9).

Twilio has no idempotency key, so the e-mail's trick (the handover committed before the final
dot) becomes: the handover committed before the request. Then
- Twilio answers with a SID: recorded sent with it, in the batch's record (outbox.py);
- Twilio refuses (4xx): nothing was created, the handover is taken back; an unreachable number
  (invalid, landline, unsubscribed) or any other refusal fails the message, 429 retries later;
- no clear answer (timeout, hang-up, 5xx: SmsUncertain), or the sender dies after its handover:
  the handover stays and the message waits (backoff). Before anything retries it, `recover`
  looks it up in Twilio's message list (find_sent, since the handover's time): found, it is
  recorded sent with that SID; not found, the handover goes and the message is sent again.
A handover is looked up only once its message is due and it is older than IN_FLIGHT (longer than
a request may take): on SQLite, which has no row locks, a live sender's request may be under way.
"""
from __future__ import annotations

from datetime import timedelta

from flask import current_app
from sqlalchemy import bindparam, delete, select, update

from portal.gateways import GatewayError
from portal.gateways.twilio import SmsRefused, SmsUncertain
from portal.models import utcnow

from .outbox_records import HANDOVER, OUTBOX, Taken, backoff, record_sent, take_back

#: longer than a Twilio request may take (the gateway's timeout is 20 s)
IN_FLIGHT = timedelta(seconds=60)
#: SMTP-like codes for settle_failure: >= 500 fails the message, below retries with backoff
FAILS, RETRIES = 550, 451


class Texter:
    """The run's SMS side, next to outbox._Mailer: the same guarded handover, then Twilio."""

    def __init__(self, gateway, hand_over, handovers):
        self.gateway, self.hand_over, self.handovers = gateway, hand_over, handovers
        self.callback = current_app.config["PORTAL_BASE_URL"] + "/webhooks/twilio"

    def send(self, message, outcomes) -> bool:
        if self.gateway is None:  # configured when composed, not now: it waits for the settings
            outcomes.refused(message, "SMS not configured (TWILIO_*)", RETRIES)
            return True
        body = message.sms_body  # claimed with it (outbox_records.CLAIMED)
        try:
            self.hand_over(message.id)
        except Taken:  # another sender's, live or killed: looked up once IN_FLIGHT has passed
            outcomes.uncertain.append((message, None))
            return True
        try:
            sent = self.gateway.send_sms(message.to_addr, body, status_callback=self.callback)
        except SmsUncertain as e:
            current_app.logger.warning("SMS %s: uncertain hand-over, looked up before any retry: %s", message.id, e)
            outcomes.uncertain.append((message, str(e)))
            outcomes.totals.deferred += 1
            return True
        except SmsRefused as e:
            take_back(self.handovers, message.id)
            why = "unreachable: " if e.unreachable else ""
            outcomes.refused(message, f"{why}{e}", RETRIES if e.retry_later else FAILS)
            return True
        outcomes.sent(message.id)
        outcomes.sids[message.id] = sent.sid
        return True


SET_SID = (update(OUTBOX).where(OUTBOX.c.id == bindparam("b_id"))
           .values(provider_message_id=bindparam("b_sid"), delivery_status=bindparam("b_status")))


def record(connection, sids: dict[int, str], uncertain: list) -> None:
    """In the batch's transaction, after record_sent: the SIDs of the SMS sent; the messages
    whose outcome is uncertain wait (backoff), their handover kept for `recover`; those another
    sender had handed over (error None) wait IN_FLIGHT, or this run would claim them again."""
    if sids:
        connection.execute(SET_SID, [{"b_id": i, "b_sid": sid, "b_status": "queued"} for i, sid in sids.items()])
    for message, error in uncertain:
        if error is None:  # handed over by another sender: not claimed again until it can be looked up
            connection.execute(update(OUTBOX).where(OUTBOX.c.id == message.id, OUTBOX.c.status == "pending")
                               .values(next_attempt_at=utcnow() + IN_FLIGHT))
            continue
        attempts = message.attempts + 1
        connection.execute(update(OUTBOX).where(OUTBOX.c.id == message.id).values(
            attempts=attempts, last_error=error[:2000], next_attempt_at=utcnow() + backoff(attempts)))


def recover(connection, gateway) -> None:
    """SMS handovers left by an uncertain answer or a killed sender, looked up at Twilio before
    anything retries them: found, recorded sent with its SID; not found, the handover removed
    (the message, pending, goes again). Twilio's list unavailable: left for the next run."""
    if gateway is None:
        return
    now = utcnow()
    rows = connection.execute(
        select(HANDOVER.c.message_id, HANDOVER.c.handed_at, OUTBOX.c.to_addr, OUTBOX.c.text_body)
        .join(OUTBOX, OUTBOX.c.id == HANDOVER.c.message_id)
        .where(OUTBOX.c.channel == "sms", OUTBOX.c.status == "pending", OUTBOX.c.next_attempt_at <= now,
               HANDOVER.c.handed_at <= now - IN_FLIGHT)
        .with_for_update(skip_locked=True, of=OUTBOX)).all()
    # PostgreSQL keeps them locked until all are settled; SQLite (no row locks) must not hold a
    # read snapshot over Twilio calls: a write after another sender's commit would be refused.
    short = connection.dialect.name != "postgresql"
    if short:
        connection.commit()
    for row in rows:
        try:
            sid = gateway.find_sent(row.to_addr, row.text_body, row.handed_at)
        except GatewayError as e:
            current_app.logger.warning("SMS %s: Twilio's list unavailable, looked up next run: %s", row.message_id, e)
            continue
        if sid is None:  # this handover only (on SQLite another sender may have made a new one)
            connection.execute(delete(HANDOVER).where(HANDOVER.c.message_id == row.message_id,
                                                      HANDOVER.c.handed_at == row.handed_at))
        else:
            record_sent(connection, [row.message_id])
            record(connection, {row.message_id: sid}, [])
        if short:
            connection.commit()
    connection.commit()
