"""One creditor never stops another: a creditor whose step text cannot be rendered fails its
own day (recorded: event, the run's `failed` count, its dashboard) while the next creditor's
reminders still go out, through the in-process run and the real `dunning run` command; and a
message whose e-mail cannot be built fails alone at sending."""
from __future__ import annotations

from datetime import date, datetime, timezone

import pytest
from sqlalchemy import select, update

from dunning_jobs import day as dunning_day
from dunning_jobs import scheduler
from fakes.cli_process import app_env, flask, json_line
from portal.extensions import db
from portal.models import Debtor, DunningPlan, DunningStep, Event, OutboxMessage, Reminder, utcnow
from portal.services import plans
from support import Api, back_office_login, response_text

DAY = date(2026, 10, 2)
BROKEN_TEXT = "Bonjour {{ 1 / 0 }}"  # stored directly: the plan editor would refuse it


@pytest.fixture
def app_config(smtp_server):
    return {"SMTP_URL": smtp_server.url}


@pytest.fixture
def two_creditors(client, new_creditor):
    """"Cassé" (created first: the run meets it first) has step texts that fail to render;
    "Sain" is healthy. Each has one debtor with one invoice due the day before DAY."""
    broken, healthy = new_creditor("Cassé SARL"), new_creditor("Sain SAS")
    for who, ref, email in [(broken, "K1", "k1@example.com"), (healthy, "S1", "s1@example.com")]:
        api = Api(client, who)
        assert api.put(f"/debtors/{ref}", json={"name": f"Client {ref}", "email": email,
                                                "language": "fr"}).status_code == 201
        assert api.put(f"/invoices/{ref}-1", json={"debtor_ref": ref, "issue_date": "2026-09-01",
                                                   "due_date": "2026-10-01", "amount": "100.00",
                                                   "currency": "EUR"}).status_code == 201
    plans.ensure_default_plans(broken.id)
    set_texts(broken.id, BROKEN_TEXT)
    return broken, healthy


def set_texts(creditor_id, body):
    plan_ids = select(DunningPlan.id).where(DunningPlan.creditor_id == creditor_id)
    db.session.execute(update(DunningStep).where(DunningStep.plan_id.in_(plan_ids)).values(body_fr=body))
    db.session.commit()


def failures(creditor_id):
    db.session.rollback()
    return [e.data for e in db.session.scalars(select(Event).where(Event.creditor_id == creditor_id,
                                                                   Event.type == "dunning.failed"))]


def planned(creditor_id):
    db.session.rollback()
    return db.session.scalars(select(Reminder.status).where(Reminder.creditor_id == creditor_id)).all()


def test_a_creditor_whose_texts_fail_stops_no_other(app, make_app, two_creditors, smtp_server):
    broken, healthy = two_creditors
    result = dunning_day.run(DAY)
    assert (result.planned, result.sent, result.failed, result.held) == (2, 1, 1, 0)
    assert [m.rcpt_tos for m in smtp_server.handler.take()] == [["s1@example.com"]]
    [failure] = failures(broken.id)
    assert failure["stage"] == "composing" and failure["error_type"] == "ZeroDivisionError"
    assert failure["date"] == "2026-10-02"
    assert failures(healthy.id) == []
    assert planned(broken.id) == ["planned"]  # planned, waiting for a text that renders
    assert planned(healthy.id) == ["sent"]

    # The failing creditor sees it on its dashboard; the healthy one does not.
    page = response_text(back_office_login(make_app().test_client(), broken).get("/app/dashboard"))
    assert "Une relance automatique a échoué" in page and "la rédaction des messages" in page
    assert "ZeroDivisionError: division by zero" in page
    other = response_text(back_office_login(make_app().test_client(), healthy).get("/app/dashboard"))
    assert "Une relance automatique a échoué" not in other

    # Text corrected: the next run composes and sends what waited.
    set_texts(broken.id, "Bonjour {{ debtor_name }}")
    again = dunning_day.run(DAY)
    assert (again.planned, again.sent, again.failed) == (0, 1, 0)
    assert [m.rcpt_tos for m in smtp_server.handler.take()] == [["k1@example.com"]]


def test_the_dunning_run_command_goes_on_past_a_failing_creditor(app, database_url, two_creditors, smtp_server):
    broken, _healthy = two_creditors
    db.session.remove()
    out = json_line(flask("dunning", "run", "--date", DAY.isoformat(), env=app_env(database_url, smtp_server.url)))
    assert out == {"date": "2026-10-02", "planned": 2, "sent": 1, "awaiting_approval": 0, "failed": 1, "held": 0}
    assert [m.rcpt_tos for m in smtp_server.handler.take()] == [["s1@example.com"]]
    assert [f["error_type"] for f in failures(broken.id)] == ["ZeroDivisionError"]


def test_a_message_that_cannot_be_built_fails_alone(app, two_creditors, smtp_server):
    broken, healthy = two_creditors
    set_texts(broken.id, "Bonjour {{ debtor_name }}")
    # A message composed without its bytes, whose recipient cannot be put in a header: building
    # its e-mail at send time raises. It is claimed first.
    debtor_id = db.session.scalar(select(Debtor.id).where(Debtor.creditor_id == broken.id))
    db.session.add(OutboxMessage(creditor_id=broken.id, debtor_id=debtor_id, kind="creditor_alert", channel="email",
                                 to_addr="k1@example.com\nBcc: everyone@example.com", subject="Alerte",
                                 text_body="x", html_body="<p>x</p>", message_id_header="<broken@relance.test>",
                                 status="pending", next_attempt_at=utcnow().replace(year=2020)))
    db.session.commit()
    result = dunning_day.run(DAY)
    assert (result.sent, result.failed) == (2, 1)
    assert sorted(m.rcpt_tos[0] for m in smtp_server.handler.take()) == ["k1@example.com", "s1@example.com"]
    db.session.rollback()
    bad = db.session.scalar(select(OutboxMessage).where(OutboxMessage.message_id_header == "<broken@relance.test>"))
    assert bad.status == "failed" and bad.last_error.startswith("cannot be built: ValueError")
    [failure] = failures(broken.id)
    assert failure["stage"] == "sending" and failure["error_type"] == "ValueError"


def test_the_scheduler_goes_on_past_a_failing_creditor(app, two_creditors, smtp_server):
    broken, healthy = two_creditors
    # 09:00 in Paris on DAY: both creditors' days are due; each runs as its own day.
    results = scheduler.tick(app, datetime(2026, 10, 2, 7, 0, tzinfo=timezone.utc))
    assert sorted((r.failed, r.sent) for r in results) == [(0, 1), (1, 0)]
    assert [m.rcpt_tos for m in smtp_server.handler.take()] == [["s1@example.com"]]
    assert [f["stage"] for f in failures(broken.id)] == ["composing"]
    assert failures(healthy.id) == []
