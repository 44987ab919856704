"""GET /api/v1/tasks costs the same number of SQL statements for one task as for several: the
debtors and the invoice numbers are loaded for all listed tasks at once (no query per task)."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import event
from sqlalchemy.engine import Engine

from dunning_jobs import day as dunning_day
from portal.extensions import db
from support import put_ledger

CALL_PLAN = [
    {"code": "call_1", "offset_days": 1, "channel": "call", "tone": "reminder", "needs_approval": False},
]


def _statements(api) -> tuple[int, list]:
    statements = []

    def listener(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    # on the Engine class: the test client's app has its own engine
    event.listen(Engine, "before_cursor_execute", listener)
    try:
        r = api.get("/tasks")
    finally:
        event.remove(Engine, "before_cursor_execute", listener)
    assert r.status_code == 200
    return len(statements), r.get_json()["tasks"]


def test_listing_tasks_does_not_query_once_per_task(app, api, creditor, today):
    assert api.put("/plans/standard", json={"steps": CALL_PLAN}).status_code == 200
    due = today - timedelta(days=1)
    put_ledger(api, [("F-1", "D1", due, "100.00"), ("F-2", "D1", due, "50.00")], debtors=(("D1", "Alpha SARL", "fr"),))
    dunning_day.run(today, [creditor.id])
    db.session.rollback()
    one, tasks = _statements(api)
    assert [(t["debtor_ref"], t["invoices"]) for t in tasks] == [("D1", ["F-1", "F-2"])]

    put_ledger(api, [(f"G-{i}", f"D{i}", due, "10.00") for i in range(2, 7)],
               debtors=tuple((f"D{i}", f"Debtor {i}", "en") for i in range(2, 7)))
    dunning_day.run(today, [creditor.id])
    db.session.rollback()
    six, tasks = _statements(api)
    assert sorted((t["debtor_ref"], tuple(t["invoices"])) for t in tasks) == \
        [("D1", ("F-1", "F-2"))] + [(f"D{i}", (f"G-{i}",)) for i in range(2, 7)]
    assert one > 0 and six == one  # was 2 more per task before the eager loading
