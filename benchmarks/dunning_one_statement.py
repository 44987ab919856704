"""A candidate rewrite of planner.plan_day's step planning as ONE INSERT..SELECT, for the
dunning benchmark (--try-rewrite). Not used by the application.

plan_day runs one INSERT..SELECT per (plan, step): 4 profiles x 5 steps = 20 statements, each
re-reading the creditor's open invoices and hashing the reminder table. Because steps are taken
from the most advanced down and a step is skipped when a reminder at its position or beyond
exists, an invoice receives at most one step per day: the most advanced step whose offset has
passed, and only if it has no reminder at that position or beyond. That is one pass:

    for each remindable invoice, pick its profile's plan (standard for profiles without one),
    LATERAL-pick the highest-position step with due_date <= day - offset_days, and anti-join
    reminder (position >= that step's position, thank-you excluded).

The benchmark checks that it plans exactly the same (invoice, step, status) set as plan_day.
"""
from __future__ import annotations

import time
from datetime import date, datetime, timezone

import psycopg

SQL = """
WITH step (profile, step_id, code, position, offset_days, status) AS (
    SELECT p.profile, s.id, s.code, s.position, s.offset_days,
           CASE WHEN s.requires_approval THEN 'awaiting_approval' ELSE 'planned' END
    FROM dunning_plan p JOIN dunning_step s ON s.plan_id = p.id
    WHERE p.creditor_id = %(creditor_id)s
)
INSERT INTO reminder (creditor_id, debtor_id, invoice_id, step_id, step_code, position, dunning_date, status,
                      interest, indemnity, created_at)
SELECT i.creditor_id, i.debtor_id, i.id, s.step_id, s.code, s.position, %(day)s, s.status, 0, 0, %(now)s
FROM invoice i
JOIN debtor d ON d.id = i.debtor_id
CROSS JOIN LATERAL (
    SELECT * FROM step
    WHERE step.profile = CASE WHEN d.profile = ANY(%(profiles)s) THEN d.profile ELSE 'standard' END
      AND i.due_date <= %(day)s::date - step.offset_days
    ORDER BY step.position DESC
    LIMIT 1
) s
WHERE i.creditor_id = %(creditor_id)s AND i.status IN ('open', 'partially_paid') AND i.disputed IS FALSE
  AND NOT EXISTS (SELECT 1 FROM reminder r
                  WHERE r.invoice_id = i.id AND r.position >= s.position AND r.step_code <> 'thank_you')
ON CONFLICT (invoice_id, step_code) DO NOTHING
RETURNING invoice_id, step_code, status
"""


def plan_steps(db_url: str, creditor_id: int, day: date) -> tuple[float, set]:
    """Run the one-statement plan and commit; (seconds, {(invoice_id, step_code, status)})."""
    with psycopg.connect(db_url) as conn:
        profiles = [r[0] for r in conn.execute("SELECT profile FROM dunning_plan WHERE creditor_id = %s",
                                               (creditor_id,))]
        conn.commit()
        params = {"creditor_id": creditor_id, "day": day, "now": datetime.now(timezone.utc), "profiles": profiles}
        t0 = time.perf_counter()
        rows = conn.execute(SQL, params).fetchall()
        conn.commit()
        return time.perf_counter() - t0, set(rows)


def explain(db_url: str, creditor_id: int, day: date) -> list[str]:
    """EXPLAIN (ANALYZE, BUFFERS) of the statement, rolled back."""
    with psycopg.connect(db_url) as conn:
        profiles = [r[0] for r in conn.execute("SELECT profile FROM dunning_plan WHERE creditor_id = %s",
                                               (creditor_id,))]
        params = {"creditor_id": creditor_id, "day": day, "now": datetime.now(timezone.utc), "profiles": profiles}
        plan = [r[0] for r in conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + SQL, params)]
        conn.rollback()
        return plan
