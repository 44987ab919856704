"""SMS plan steps (CONTRACT §9), end to end through the real dunning day and the real outbox, the
real `twilio` SDK talking to the fake Twilio server over HTTP (both engines): quiet hours (a
Sunday, 1 May, 14 July, 20:05: the SMS waits and goes at the next allowed instant), one SMS a day
per debtor, the fall-backs to e-mail (landline, opted out, not configured), the text and its
short link, a refused number."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from urllib.parse import urlparse
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from dunning_jobs import day as dunning_day
from dunning_jobs import outbox
from portal.domain import sms
from portal.extensions import db
from portal.models import Creditor, DunningPlan, DunningStep, Event, OutboxHandover, OutboxMessage, Reminder
from portal.models.base import replaying
from portal.services import ledger, plans
from support import back_office_login, response_text

PARIS = ZoneInfo("Europe/Paris")
MOBILE, LANDLINE = "06 12 34 56 78", "01 42 68 53 00"


def twilio_config(fake) -> dict:
    return {"TWILIO_ACCOUNT_SID": fake.account_sid, "TWILIO_AUTH_TOKEN": fake.auth_token,
            "TWILIO_FROM": fake.sender, "TWILIO_API_BASE": fake.url}


@pytest.fixture
def app_config(fake_twilio):
    return twilio_config(fake_twilio)


def sms_plan(creditor_id: int) -> None:
    """The creditor's first reminder (1 day after the due date) goes by SMS."""
    plans.ensure_default_plans(creditor_id)
    for step in db.session.scalars(select(DunningStep).join(DunningStep.plan)
                                   .where(DunningPlan.creditor_id == creditor_id, DunningStep.code == "reminder_1")):
        step.channel = "sms"
    db.session.commit()


def seed(creditor_id: int, ref: str, day: date, phone: str | None = MOBILE, *, opted_out: bool = False,
         language: str = "fr", invoices: int = 1) -> int:
    creditor = db.session.get(Creditor, creditor_id)
    debtor, _ = ledger.upsert_debtor(creditor, ref, {"name": f"Client {ref}", "email": f"{ref.lower()}@example.com",
                                                  "language": language})
    # Stored as typed: the API now keeps E.164 only, a number stored before it checked may be anything.
    debtor.phone = phone
    debtor.sms_opt_out = opted_out
    for k in range(invoices):
        ledger.upsert_invoice(creditor, f"{ref}-{k}", {"debtor_ref": ref, "issue_date": "2026-01-01",
                                                      "due_date": (day - timedelta(days=1)).isoformat(),
                                                      "amount": "1234.50", "currency": "EUR"})
    db.session.commit()
    sms_plan(creditor_id)
    return debtor.id


def run_day(creditor_id: int, day: date, at: datetime) -> None:
    """The day planned and composed at `at` (the clock the quiet hours read)."""
    with replaying(at):
        dunning_day.plan_creditor(db.session.get(Creditor, creditor_id), day, dunning_day.DayResult(date=str(day)))
    db.session.commit()


def send_at(at: datetime) -> outbox.Sent:
    with replaying(at):
        sent = outbox.send_pending()
    db.session.commit()
    return sent


def paris(*args) -> datetime:
    return datetime(*args, tzinfo=PARIS)


def messages(debtor_id: int) -> list[OutboxMessage]:
    db.session.expire_all()
    return db.session.scalars(select(OutboxMessage).where(OutboxMessage.debtor_id == debtor_id)
                              .order_by(OutboxMessage.id)).all()


@pytest.mark.parametrize("composed_at, opens_at", [
    (paris(2026, 5, 10, 14, 0), paris(2026, 5, 11, 8, 0)),   # a Sunday: Monday 08:00
    (paris(2026, 5, 1, 10, 0), paris(2026, 5, 2, 8, 0)),     # 1 May (a Friday): Saturday 08:00
    (paris(2026, 7, 14, 9, 30), paris(2026, 7, 15, 8, 0)),   # 14 July (a Tuesday): Wednesday 08:00
    (paris(2026, 5, 6, 20, 5), paris(2026, 5, 7, 8, 0)),     # 20:05 on a Wednesday: Thursday 08:00
], ids=["sunday", "1-may", "14-july", "20h05"])
def test_sms_waits_for_the_next_allowed_time_then_goes_once(app, creditor, fake_twilio, composed_at, opens_at):
    day = composed_at.date()
    debtor_id = seed(creditor.id, "Q1", day)
    run_day(creditor.id, day, composed_at)

    [message] = messages(debtor_id)
    assert (message.channel, message.status, message.to_addr) == ("sms", "pending", "+33612345678")
    assert message.next_attempt_at == opens_at.astimezone(timezone.utc)  # waits, not dropped
    assert message.daily_key == f"S:{debtor_id}:{day.isoformat()}"

    assert send_at(composed_at).sent == 0
    assert send_at(opens_at - timedelta(minutes=1)).sent == 0
    assert fake_twilio.created == []
    assert send_at(opens_at).sent == 1
    assert send_at(opens_at + timedelta(hours=1)).sent == 0

    [created] = fake_twilio.created
    assert created["To"] == "+33612345678" and created["From"] == fake_twilio.sender
    assert created["StatusCallback"] == "http://portal.test/webhooks/twilio"
    [message] = messages(debtor_id)
    assert (message.status, message.provider_message_id) == ("sent", created["sid"])
    assert message.sent_at == opens_at.astimezone(timezone.utc) and message.delivery_status == "queued"
    reminders = db.session.scalars(select(Reminder).where(Reminder.debtor_id == debtor_id)).all()
    assert [r.status for r in reminders] == ["sent"]
    sent_events = db.session.scalars(select(Event).where(Event.type == "reminder.sent",
                                                         Event.debtor_id == debtor_id)).all()
    assert [e.data["channel"] for e in sent_events] == ["sms"]


@pytest.fixture
def app_with_portal(app):
    app.config["PORTAL_BASE_URL"] = "http://portal.test"
    return app


def test_sms_text_fits_two_segments_in_french_and_its_short_link_opens_the_portal(
        app, creditor, fake_twilio, client):
    at = paris(2026, 5, 11, 10, 0)  # a Monday morning: sent at once
    db.session.get(Creditor, creditor.id).name = "Maçonnerie Générale de l'Île-de-France"
    debtor_id = seed(creditor.id, "T1", at.date())
    run_day(creditor.id, at.date(), at)
    assert send_at(at).sent == 1

    [created] = fake_twilio.created
    body = created["Body"]
    count = sms.count(body)
    # Twilio's count: at most two segments; "ç" and "Î" do not fit them in UCS-2, so the name
    # loses them (GSM-7 keeps "é"), never the amount, the due date or the link.
    assert count.segments <= 2 and len(body) <= 320 and sms.fits(body)
    assert body.startswith("Maconnerie Générale de l'Ile-de-France : votre facture T1-0 de 1 234,50 € est échue")
    assert "10 mai 2026" in body
    assert "STOP" in body  # the sender is a number: it can receive the opt-out
    link = body.split()[-1] if body.split()[-1].startswith("http") else next(
        w for w in body.split() if w.startswith("http"))
    path = urlparse(link).path
    assert path.startswith("/l/") and len(path) == len("/l/") + 10
    with replaying(at + timedelta(hours=2)):  # read that morning (links expire)
        opened = client.get(path)
        assert opened.status_code == 303
        home = client.get(opened.headers["Location"])
    assert home.status_code == 200 and "Client T1" in home.get_data(as_text=True)
    [message] = messages(debtor_id)
    assert message.text_body == body


def test_one_sms_a_day_per_debtor_the_rest_waits(app, creditor, fake_twilio):
    at = paris(2026, 5, 11, 10, 0)
    debtor_id = seed(creditor.id, "D1", at.date(), invoices=2)
    # An SMS already went to this debtor today (an earlier run, another worker).
    db.session.add(OutboxMessage(creditor_id=creditor.id, debtor_id=debtor_id, kind="reminder", channel="sms",
                                 daily_key=f"S:{debtor_id}:{at.date().isoformat()}", to_addr="+33612345678",
                                 message_id_header="<earlier-sms@test>", subject="earlier", text_body="earlier",
                                 html_body="", status="sent"))
    db.session.commit()
    run_day(creditor.id, at.date(), at)
    assert [m.subject for m in messages(debtor_id)] == ["earlier"]
    waiting = db.session.scalars(select(Reminder).where(Reminder.debtor_id == debtor_id)).all()
    assert len(waiting) == 2 and all(r.status == "planned" and r.message_id is None for r in waiting)
    assert send_at(at).sent == 0 and fake_twilio.created == []


def test_two_invoices_at_an_sms_step_make_one_sms(app, creditor, fake_twilio):
    at = paris(2026, 5, 11, 10, 0)
    debtor_id = seed(creditor.id, "D2", at.date(), invoices=2)
    run_day(creditor.id, at.date(), at)
    [message] = messages(debtor_id)
    assert message.channel == "sms" and message.amount == 246900
    assert send_at(at).sent == 1 and len(fake_twilio.created) == 1


@pytest.mark.parametrize("phone, opted_out, reason", [
    (LANDLINE, False, "no_mobile"), (None, False, "no_mobile"), ("06 12", False, "no_mobile"),
    (MOBILE, True, "opted_out"),
])
def test_step_falls_back_to_email_and_says_why(app, creditor, fake_twilio, phone, opted_out, reason):
    at = paris(2026, 5, 11, 10, 0)
    debtor_id = seed(creditor.id, "F1", at.date(), phone, opted_out=opted_out)
    run_day(creditor.id, at.date(), at)
    [message] = messages(debtor_id)
    assert (message.channel, message.to_addr) == ("email", "f1@example.com")
    [event] = db.session.scalars(select(Event).where(Event.type == "sms.fell_back")).all()
    assert event.debtor_id == debtor_id and event.data["reason"] == reason and event.data["to"] == "email"
    send_at(at)
    assert fake_twilio.created == []


def test_not_configured_falls_back_to_email(make_app, creditor):
    bare = make_app()  # no TWILIO_*
    with bare.app_context():
        at = paris(2026, 5, 11, 10, 0)
        debtor_id = seed(creditor.id, "N1", at.date())
        run_day(creditor.id, at.date(), at)
        [message] = messages(debtor_id)
        assert message.channel == "email"
        [event] = db.session.scalars(select(Event).where(Event.type == "sms.fell_back")).all()
        assert event.data["reason"] == "not_configured"
        db.session.remove()


def test_a_number_twilio_refuses_fails_the_message(app, creditor, fake_twilio):
    at = paris(2026, 5, 11, 10, 0)
    debtor_id = seed(creditor.id, "R1", at.date())
    fake_twilio.opted_out.add("+33612345678")  # texted STOP to the account: error 21610
    run_day(creditor.id, at.date(), at)
    sent = send_at(at)
    assert (sent.sent, sent.failed) == (0, 1)
    [message] = messages(debtor_id)
    assert message.status == "failed" and "unreachable" in message.last_error and "21610" in message.last_error
    assert db.session.scalars(select(Reminder.status).where(Reminder.debtor_id == debtor_id)).all() == ["failed"]
    assert db.session.scalar(select(Event).where(Event.type == "message.failed")).debtor_id == debtor_id
    assert db.session.scalars(select(OutboxHandover)).all() == []
    assert fake_twilio.created == []


def test_back_office_shows_the_sms_and_why_a_step_went_by_email(app, creditor, fake_twilio, client):
    at = paris(2026, 5, 11, 10, 0)
    texted = seed(creditor.id, "W1", at.date())
    seed(creditor.id, "W2", at.date(), LANDLINE)
    run_day(creditor.id, at.date(), at)
    send_at(at)
    [message] = messages(texted)
    back_office_login(client, creditor)
    page = response_text(client.get(f"/app/outbox/{message.id}"))
    assert "SMS" in page and "+33612345678" in page and message.provider_message_id in page
    assert "Texte du SMS" in page and f"/app/outbox/{message.id}/html" not in page
    assert message.text_body.split(" :")[0] in page
    timeline = response_text(client.get("/app/debtors/W2"))
    assert "Pas de SMS (aucun numéro de mobile connu)\u00a0: relance envoyée par e-mail" in timeline
