"""Which dunning step is due for an invoice on a date: the ladder, stated once in plain Python;
the planner's SQL (dunning_jobs/planner.py) applies it set-wise and is tested against it.

The steps after the due date (offset > 0) are the rungs of a ladder, numbered 1..n in position
order, climbed one at a time. Rung 1 is due when its day has come. Rung k+1 is due when its day
has come, the invoice stands on rung k (`reached`: the highest rung whose message was sent) and
rung k was sent (`sent_on`) at least the gap between the two offsets earlier, and never less than
MIN_GAP_DAYS. An invoice first seen overdue therefore starts on rung 1, whatever its age. The
steps on or before the due date (the courtesy notice) are optional, never a prerequisite: the
most advanced one whose day has come is due only while rung 1 is not and no rung was sent, and
not once a notice before the due date went out on or after its day (`sent_on` on rung 0: the
day the last one was sent), so that the invoice row alone says it was sent.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

#: the least time between two rungs sent, whatever the plan says
MIN_GAP_DAYS = 7


@dataclass(frozen=True)
class Step:
    code: str
    position: int
    offset_days: int  # from the due date; negative = before it


def rungs(steps: list[Step]) -> list[Step]:
    """The after-due steps in ladder order: rung k is rungs(steps)[k - 1]."""
    return sorted((s for s in steps if s.offset_days > 0), key=lambda s: s.position)


def before_due(steps: list[Step]) -> list[Step]:
    """The optional steps on or before the due date, most advanced first."""
    return sorted((s for s in steps if s.offset_days <= 0), key=lambda s: -s.position)


def rung_gap(lower: Step, upper: Step) -> int:
    """Days that must pass between sending `lower` and `upper` (the next rung)."""
    return max(MIN_GAP_DAYS, upper.offset_days - lower.offset_days)


def due_step(steps: list[Step], due_date: date, day: date, reached: int = 0,
             sent_on: date | None = None) -> Step | None:
    """The step to plan for the invoice on `day`, or None. `reached` is the highest rung sent
    (0: none), `sent_on` the day it was sent (on rung 0: the day a notice before the due date
    was). A step already planned is not planned twice (the planner's unique (invoice, step)):
    the caller checks that, not this rule."""
    age = (day - due_date).days
    ladder = rungs(steps)
    if reached == 0:
        if ladder and age >= ladder[0].offset_days:
            return ladder[0]
        step = next((s for s in before_due(steps) if age >= s.offset_days), None)
        if step is not None and sent_on is not None and sent_on >= due_date + timedelta(days=step.offset_days):
            return None  # a notice went out on or after this one's day: this one, or one in its stead
        return step
    if reached >= len(ladder):
        return None
    lower, upper = ladder[reached - 1], ladder[reached]
    if age >= upper.offset_days and sent_on is not None and sent_on <= day - timedelta(days=rung_gap(lower, upper)):
        return upper
    return None
