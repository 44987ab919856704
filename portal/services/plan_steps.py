"""A plan's steps read and replaced whole (CONTRACT §4 GET/PUT /plans), with the plan editor's
checks (plans.update_step) and the ladder's (DESIGN.md "The ladder").

Reminders name their step by id (reminder.step_id) and by code (the planner's unique (invoice,
step_code)), and the sent ones are the ladder's history: the formal notice quotes their dates,
the reports count them per step. So replacing steps never deletes one that a reminder refers to:
a step whose code is in the new list is updated in place (same row, same id, its texts kept); a
step left out is deleted only if no reminder refers to it, else retired (retired_at: out of the
plan's live steps, so never planned again, its row kept for the history). Its reminders still
waiting (planned and not composed, or awaiting approval) are cancelled, since the creditor took
the step out; those already composed, sent or in a call task keep their course.
"""
from __future__ import annotations

import re

from sqlalchemy import exists, select, update

from ..extensions import db
from ..models import STEP_CHANNELS, DunningPlan, DunningStep, Reminder, utcnow
from . import Invalid, NotFound, events
from .plans import DEFAULT_TEXTS, ensure_default_plans, plans_for

#: CONTRACT §4 tone names <-> the model's
TONES = {"courtesy": "courtesy", "reminder": "reminder", "firm": "firm", "formal_notice": "formal"}
TONE_NAMES = {v: k for k, v in TONES.items()}
FIRMNESS = {"courtesy": 0, "reminder": 1, "firm": 2, "formal": 3}
#: the default texts a new step starts from, by tone (reminder_2's claims no earlier reminder)
TEXTS_BY_TONE = {"courtesy": "courtesy", "reminder": "reminder_2", "firm": "firm", "formal": "formal_notice"}
CODE = re.compile(r"[a-z][a-z0-9_]{0,31}")
MAX_STEPS = 12
#: a formal notice follows at least this many after-due reminders (DESIGN.md "The ladder")
REMINDERS_BEFORE_FORMAL = 2


def step_json(step: DunningStep) -> dict:
    return {"code": step.code, "offset_days": step.offset_days, "channel": step.channel,
            "tone": TONE_NAMES[step.tone], "needs_approval": step.requires_approval}


def plans_json(creditor_id: int) -> list[dict]:
    ensure_default_plans(creditor_id)
    return [{"profile": p.profile, "steps": [step_json(s) for s in p.steps]} for p in plans_for(creditor_id)]


def _plan(creditor_id: int, profile: str) -> DunningPlan:
    ensure_default_plans(creditor_id)
    plan = db.session.scalar(select(DunningPlan).where(DunningPlan.creditor_id == creditor_id,
                                                       DunningPlan.profile == profile))
    if plan is None:
        raise NotFound("no such plan", "profile")
    return plan


def check_steps(raw) -> list[dict]:
    """The steps as given, checked one by one then together; the first fault names its field
    (`steps[2].channel`)."""
    if not isinstance(raw, list) or not raw:
        raise Invalid("steps must be a non-empty list", "steps")
    if len(raw) > MAX_STEPS:
        raise Invalid(f"a plan has at most {MAX_STEPS} steps", "steps")
    steps = [_check_step(item, f"steps[{i}]") for i, item in enumerate(raw)]
    seen = set()
    for i, s in enumerate(steps):
        if s["code"] in seen:
            raise Invalid("each step's code must be unique in its plan", f"steps[{i}].code")
        seen.add(s["code"])
        if i and s["offset_days"] <= steps[i - 1]["offset_days"]:
            raise Invalid("steps must stay in order: each later than the one before", f"steps[{i}].offset_days")
        if i and FIRMNESS[s["tone"]] < FIRMNESS[steps[i - 1]["tone"]]:
            raise Invalid("a step is never less firm than the one before", f"steps[{i}].tone")
        if s["offset_days"] <= 0 and s["tone"] != "courtesy":
            raise Invalid("a step on or before the due date is a courtesy notice", f"steps[{i}].tone")
        if s["channel"] == "call" and s["requires_approval"]:
            raise Invalid("a call step needs no approval: its task is the collector's to do",
                          f"steps[{i}].needs_approval")
        if s["tone"] == "formal":
            if s["channel"] not in ("email", "letter"):
                raise Invalid("a formal notice goes by e-mail or letter", f"steps[{i}].channel")
            if sum(1 for t in steps[:i] if t["offset_days"] > 0) < REMINDERS_BEFORE_FORMAL:
                raise Invalid(f"a formal notice follows at least {REMINDERS_BEFORE_FORMAL} reminders after the due "
                              "date", f"steps[{i}].tone")
    return steps


def _check_step(item, at: str) -> dict:
    if not isinstance(item, dict):
        raise Invalid("each step must be an object", at)
    code = item.get("code")
    if not isinstance(code, str) or not CODE.fullmatch(code) or code == "thank_you":
        raise Invalid("code must be 1 to 32 lowercase letters, digits or _, starting with a letter", f"{at}.code")
    offset = item.get("offset_days")
    if type(offset) is not int:
        raise Invalid("offset_days must be a whole number of days", f"{at}.offset_days")
    if not -90 <= offset <= 365:
        raise Invalid("offset_days must be between -90 and 365", f"{at}.offset_days")
    channel = item.get("channel", "email")
    if channel not in STEP_CHANNELS:
        raise Invalid(f"channel must be one of {', '.join(STEP_CHANNELS)}", f"{at}.channel")
    tone = item.get("tone", "courtesy" if offset <= 0 else "reminder")
    if not isinstance(tone, str) or tone not in TONES:
        raise Invalid(f"tone must be one of {', '.join(TONES)}", f"{at}.tone")
    approval = item.get("needs_approval", False)
    if not isinstance(approval, bool):
        raise Invalid("needs_approval must be true or false", f"{at}.needs_approval")
    return {"code": code, "offset_days": offset, "channel": channel, "tone": TONES[tone],
            "requires_approval": approval}


def replace_steps(creditor_id: int, profile: str, raw) -> DunningPlan:
    """Replace the plan's steps with `raw` (CONTRACT §4), checked whole first: a refusal changes
    nothing. One transaction; an event `plan.replaced`."""
    plan = _plan(creditor_id, profile)
    steps = check_steps(raw)
    rows = {s.code: s for s in db.session.scalars(select(DunningStep).where(DunningStep.plan_id == plan.id))}
    now = utcnow()
    # Matched by code over every row of the plan, retired ones too: a retired code coming back is
    # its old row again (the reminders naming it stay its own).
    for position, s in enumerate(steps, 1):
        row = rows.get(s["code"])
        if row is None:
            texts = DEFAULT_TEXTS.get(s["code"]) or DEFAULT_TEXTS[TEXTS_BY_TONE[s["tone"]]]
            row = DunningStep(plan_id=plan.id, code=s["code"], adds_charges=s["tone"] in ("firm", "formal"),
                              subject_fr=texts["fr"][0], body_fr=texts["fr"][1],
                              subject_en=texts["en"][0], body_en=texts["en"][1])
            db.session.add(row)
        row.position, row.offset_days, row.channel, row.tone = position, s["offset_days"], s["channel"], s["tone"]
        row.requires_approval, row.retired_at = s["requires_approval"], None
    kept = {s["code"] for s in steps}
    retired, deleted = [], []
    for code, row in rows.items():
        if code in kept or row.retired_at is not None:
            continue
        # (reminder.step_id has no index of its own, which would slow every planner insert: the
        # creditor's index narrows the probe to its own reminders)
        if db.session.scalar(select(exists().where(Reminder.creditor_id == creditor_id, Reminder.step_id == row.id))):
            row.retired_at = now
            retired.append(code)
            db.session.execute(update(Reminder).where(
                Reminder.creditor_id == creditor_id, Reminder.step_id == row.id, Reminder.message_id.is_(None),
                Reminder.status.in_(("planned", "awaiting_approval"))).values(status="cancelled"))
        else:
            db.session.delete(row)
            deleted.append(code)
    events.record("plan.replaced", creditor_id=creditor_id, actor="api", plan=profile,
                  steps=[s["code"] for s in steps], retired=retired, deleted=deleted)
    db.session.commit()
    db.session.expire(plan)
    return plan
