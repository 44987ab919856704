"""CONTRACT §4 GET/PUT /plans: the plans read and replaced over the API with the plan editor's and
the ladder's checks, every channel of §9 accepted; a step reminders refer to is retired, never
deleted; another creditor's plans are out of reach."""
from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from dunning_jobs import day as dunning_day
from portal.extensions import db
from portal.models import DunningPlan, DunningStep, Event, Reminder
from support import Api, put_ledger

CALL_PLAN = [
    {"code": "courtesy", "offset_days": -7, "channel": "email", "tone": "courtesy", "needs_approval": False},
    {"code": "reminder_1", "offset_days": 1, "channel": "sms", "tone": "reminder", "needs_approval": False},
    {"code": "call_1", "offset_days": 8, "channel": "call", "tone": "reminder", "needs_approval": False},
    {"code": "firm", "offset_days": 15, "channel": "email", "tone": "firm", "needs_approval": False},
    {"code": "formal_notice", "offset_days": 30, "channel": "letter", "tone": "formal_notice",
     "needs_approval": True},
]


@pytest.fixture
def app_config(smtp_server):
    return {"SMTP_URL": smtp_server.url, "MAIL_FROM": "Atelier Test <relances@atelier.test>"}


def test_get_plans_lists_every_profile_with_contract_tone_names(api):
    r = api.get("/plans")
    assert r.status_code == 200, r.json
    plans = {p["profile"]: p["steps"] for p in r.json["plans"]}
    assert set(plans) == {"standard", "key_account", "risky", "public_sector"}
    assert [s["code"] for s in plans["standard"]] == ["courtesy", "reminder_1", "reminder_2", "firm", "formal_notice"]
    assert [s["offset_days"] for s in plans["standard"]] == [-7, 1, 8, 15, 30]
    assert plans["standard"][-1] == {"code": "formal_notice", "offset_days": 30, "channel": "letter",
                                     "tone": "formal_notice", "needs_approval": True}
    assert {s["tone"] for s in plans["risky"]} == {"courtesy", "reminder", "firm", "formal_notice"}


def test_put_plan_round_trip_with_sms_and_call(api):
    r = api.put("/plans/standard", json={"steps": CALL_PLAN})
    assert r.status_code == 200, r.json
    assert r.json == {"profile": "standard", "steps": CALL_PLAN}
    got = {p["profile"]: p["steps"] for p in api.get("/plans").json["plans"]}
    assert got["standard"] == CALL_PLAN
    db.session.rollback()
    step = db.session.scalar(select(DunningStep).join(DunningPlan).where(DunningPlan.profile == "standard",
                                                                         DunningStep.code == "call_1"))
    assert step.channel == "call" and step.tone == "reminder" and step.position == 3
    assert step.subject_fr and step.body_en  # a new step starts from its tone's default texts
    assert db.session.scalar(select(Event).where(Event.type == "plan.replaced")).data["plan"] == "standard"


@pytest.mark.parametrize("steps, field", [
    ("nope", "steps"),
    ([], "steps"),
    ([{**CALL_PLAN[1], "channel": "fax"}], "steps[0].channel"),
    ([CALL_PLAN[0], {**CALL_PLAN[1], "offset_days": "1"}], "steps[1].offset_days"),
    ([CALL_PLAN[0], {**CALL_PLAN[1], "offset_days": 400}], "steps[1].offset_days"),
    ([CALL_PLAN[0], CALL_PLAN[2], CALL_PLAN[1]], "steps[2].offset_days"),
    ([CALL_PLAN[1], {**CALL_PLAN[2], "code": "reminder_1"}], "steps[1].code"),
    ([CALL_PLAN[1], {**CALL_PLAN[2], "code": "Bad Code"}], "steps[1].code"),
    ([CALL_PLAN[3], {**CALL_PLAN[2], "offset_days": 20}], "steps[1].tone"),
    ([{**CALL_PLAN[0], "tone": "firm"}], "steps[0].tone"),
    ([CALL_PLAN[1], CALL_PLAN[4]], "steps[1].tone"),  # a formal notice after one reminder only
    ([*CALL_PLAN[1:4], {**CALL_PLAN[4], "channel": "call", "needs_approval": False}], "steps[3].channel"),
    ([CALL_PLAN[1], {**CALL_PLAN[2], "needs_approval": "yes"}], "steps[1].needs_approval"),
    ([CALL_PLAN[1], {**CALL_PLAN[2], "needs_approval": True}], "steps[1].needs_approval"),
    ([{**CALL_PLAN[1], "tone": "stern"}], "steps[0].tone"),
    (["x"], "steps[0]"),
])
def test_put_plan_refuses_bad_steps_naming_the_field_and_changes_nothing(api, steps, field):
    before = api.get("/plans").json
    r = api.put("/plans/standard", json={"steps": steps})
    assert r.status_code == 422, r.json
    assert r.json["error"]["field"] == field, r.json
    assert api.get("/plans").json == before


def test_unknown_profile_is_404_and_another_creditor_sees_its_own_plans(api, client, new_creditor):
    assert api.put("/plans/vip", json={"steps": CALL_PLAN}).status_code == 404
    assert api.put("/plans/standard", json={"steps": CALL_PLAN}).status_code == 200
    other = Api(client, new_creditor("Other Corp"))
    theirs = {p["profile"]: p["steps"] for p in other.get("/plans").json["plans"]}
    assert [s["code"] for s in theirs["standard"]] == ["courtesy", "reminder_1", "reminder_2", "firm",
                                                       "formal_notice"]
    assert other.put("/plans/standard", json={"steps": CALL_PLAN[:3]}).status_code == 200
    mine = {p["profile"]: p["steps"] for p in api.get("/plans").json["plans"]}
    assert mine["standard"] == CALL_PLAN


def test_a_step_reminders_refer_to_is_retired_not_deleted_and_comes_back_as_itself(api, creditor, today):
    """reminder_1 sent for an invoice; a plan without it keeps the row (the reminder still names
    it, the history stays), out of the plan; put back, it is the same row again. A step no
    reminder refers to is deleted."""
    put_ledger(api, [("F-1", "D1", today - timedelta(days=3), "100.00")])
    dunning_day.run(today - timedelta(days=1), [creditor.id])
    db.session.rollback()
    reminder = db.session.scalar(select(Reminder).where(Reminder.step_code == "reminder_1"))
    assert reminder.status == "sent"
    step_id = reminder.step_id

    without = [s for s in CALL_PLAN if s["code"] != "reminder_1"]
    without[1] = {**without[1], "offset_days": 2}
    assert api.put("/plans/standard", json={"steps": without}).status_code == 200
    db.session.rollback()
    assert [s["code"] for s in next(p for p in api.get("/plans").json["plans"]
                                    if p["profile"] == "standard")["steps"]] == [s["code"] for s in without]
    kept = db.session.get(DunningStep, step_id)
    assert kept is not None and kept.retired_at is not None and kept.code == "reminder_1"
    assert db.session.get(Reminder, reminder.id).step_id == step_id
    codes = set(db.session.scalars(select(DunningStep.code).join(DunningPlan).where(
        DunningPlan.profile == "standard", DunningPlan.creditor_id == creditor.id)))
    assert "reminder_2" not in codes  # no reminder named it: deleted
    event = db.session.scalar(select(Event).where(Event.type == "plan.replaced"))
    assert event.data["retired"] == ["reminder_1"] and "reminder_2" in event.data["deleted"]

    assert api.put("/plans/standard", json={"steps": CALL_PLAN}).status_code == 200
    db.session.rollback()
    back = db.session.scalar(select(DunningStep).join(DunningPlan).where(
        DunningPlan.profile == "standard", DunningPlan.creditor_id == creditor.id, DunningStep.code == "reminder_1"))
    assert back.id == step_id and back.retired_at is None and back.channel == "sms"


def test_an_sms_step_goes_by_email_until_sms_is_configured(api, creditor, today, smtp_server):
    api.put("/plans/standard", json={"steps": CALL_PLAN})
    put_ledger(api, [("F-1", "D1", today - timedelta(days=2), "100.00")])
    result = dunning_day.run(today, [creditor.id])
    assert result.sent == 1
    received = smtp_server.handler.take()
    assert [r.rcpt_tos for r in received] == [["alpha@example.com"]]
    assert "F-1" in received[0].text()
