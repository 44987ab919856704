"""Which dunning step is due for an invoice on a date: the rule the planner's SQL applies
set-wise (dunning_jobs/planner.py), stated once in plain Python and tested against it."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class Step:
    code: str
    position: int
    offset_days: int  # from the due date; negative = before it


def due_step(steps: list[Step], due_date: date, day: date, reached: int = 0) -> Step | None:
    """The most advanced step whose day has come (due_date + offset <= day), provided the
    invoice has not already reached that position (`reached`: the highest position reminded,
    0 if none). Earlier steps that were missed are never sent late: an invoice loaded 40 days
    overdue gets the step its age calls for, once."""
    age = (day - due_date).days
    ready = [s for s in steps if s.offset_days <= age]
    if not ready:
        return None
    step = max(ready, key=lambda s: s.position)
    return step if step.position > reached else None
