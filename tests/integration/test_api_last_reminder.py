"""GET /invoices/{number} reports the most advanced reminder sent, once the dunning ran."""
from datetime import date

from dunning_jobs import day as dunning_day


def test_last_reminder_follows_the_dunning(app, seeded):
    assert seeded.get("/invoices/F-1").json["last_reminder"] is None
    dunning_day.run(date(2026, 10, 2))  # F-1 due 2026-10-01: first reminder
    first = seeded.get("/invoices/F-1").json["last_reminder"]
    assert first["step"] == "reminder_1" and first["sent_at"].startswith("20")
    dunning_day.run(date(2026, 10, 16))  # D+15: the next rung, the second reminder
    assert seeded.get("/invoices/F-1").json["last_reminder"]["step"] == "reminder_2"
    dunning_day.run(date(2026, 10, 23))  # a week later: the firm reminder
    assert seeded.get("/invoices/F-1").json["last_reminder"]["step"] == "firm"
    listed = {i["number"]: i["last_reminder"] for i in seeded.get("/debtors/D1").json["open_invoices"]}
    assert listed["F-1"]["step"] == "firm"
    # F-3 (another debtor, due 2026-11-14) was only offered the courtesy notice in this window.
    assert seeded.get("/invoices/F-3").json["last_reminder"] is None


def test_unexpected_error_is_json_under_api(make_app, creditor):
    app = make_app()

    @app.get("/api/v1/_boom")
    def boom():  # a route of the test's own, standing for any bug
        raise RuntimeError("boom")

    r = app.test_client().get("/api/v1/_boom", headers=creditor.headers)
    assert r.status_code == 500 and r.json["error"]["code"] == "internal_error"
    assert "boom" not in r.get_data(as_text=True)
