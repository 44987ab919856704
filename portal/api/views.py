"""One route per resource action. Parsing and checking happen in the services; errors take the
JSON shape of portal/errors.py."""
from __future__ import annotations

import io

from flask import current_app, g, jsonify, request

from ..domain.money import MoneyError, check_currency, to_decimal_string
from ..domain.references import debtor_reference, invoice_reference
from ..errors import json_error
from ..extensions import limiter
from ..models import Invoice
from ..services import (Invalid, call_tasks, checks, events, facturx_invoices, ledger, links, plan_steps, receivables,
                        reconciliation, reminders, reports, tenants)
from ..services import effectiveness, forecast, payer
from ..domain.calendar import today_for
from ..domain.discount import due_now
from .blueprint import bp
from .openapi import document


@bp.before_request
def authenticate():
    if request.endpoint == "api.openapi":
        return None
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    creditor = tenants.creditor_for_api_key(key.strip()) if scheme.lower() == "bearer" else None
    if creditor is None:
        resp, status = json_error(401, "unauthorized", "a valid API key is required: Authorization: Bearer <api_key>")
        resp.headers["WWW-Authenticate"] = 'Bearer realm="relance"'
        return resp, status
    g.creditor = creditor
    return None


def body() -> dict:
    try:
        data = request.get_json(silent=True, force=True)
    except RecursionError:  # nested too deep for the parser: silent=True only covers ValueError
        data = None
    if not isinstance(data, dict):
        raise Invalid("the body must be a JSON object", code="malformed_json")
    for key, value in data.items():  # every text field, known or not: the check the forms get too
        if checks.has_unstorable(key) or checks.has_unstorable(value):
            field = checks.shown_field(key)
            raise Invalid(f"{field} contains control characters or invalid Unicode", field)
    return data


def debtor_json(d) -> dict:
    return {"ref": d.ref, "name": d.name, "email": d.email, "language": d.language, "profile": d.profile,
            "phone": d.phone, "kind": d.kind, "address": d.address, "payment_reference": debtor_reference(d.id)}


def invoice_json(i: Invoice, last_reminder: dict | None = None) -> dict:
    cur = i.currency
    return {
        "number": i.number, "debtor_ref": i.debtor.ref,
        "amount": to_decimal_string(i.amount, cur), "amount_paid": to_decimal_string(i.amount_paid, cur),
        "balance": to_decimal_string(i.balance, cur), "currency": cur,
        "issue_date": i.issue_date.isoformat(), "due_date": i.due_date.isoformat(),
        "status": i.status, "disputed": i.disputed, "last_reminder": last_reminder,
        "payment_reference": invoice_reference(i.id),
        "early_payment_discount": None if i.discount_until is None else {
            "percent": format(i.discount_percent.normalize(), "f"), "until": i.discount_until.isoformat()},
        "amount_due_now": to_decimal_string(due_now(i.amount, i.balance, i.discount_percent, i.discount_until,
                                                    today_for(g.creditor)), cur),
    }


@bp.put("/debtors/<path:ref>")
def put_debtor(ref):
    debtor, created = ledger.upsert_debtor(g.creditor, ref, body())
    return get_debtor(debtor.ref)[0], 201 if created else 200


@bp.get("/debtors/<path:ref>")
def get_debtor(ref):
    debtor = ledger.get_debtor(g.creditor.id, ref)
    items = receivables.open_items(debtor.id)
    cur = g.creditor.currency
    out = debtor_json(debtor)
    out["balance"] = to_decimal_string(items.balances.get(cur, 0), cur)
    out["currency"] = cur
    # Invoices in other currencies are listed too; their totals stay apart.
    out["balances"] = {c: to_decimal_string(v, c) for c, v in items.balances.items()}
    last = reminders.last_sent([i.id for i in items.invoices])
    out["open_invoices"] = [invoice_json(i, last.get(i.id)) for i in items.invoices]
    out["payer"] = payer.for_debtor(debtor).as_json()
    return jsonify(out), 200


def one_invoice_json(i: Invoice) -> dict:
    return invoice_json(i, reminders.last_sent([i.id]).get(i.id))


@bp.put("/invoices/<path:number>")
def put_invoice(number):
    invoice, created = facturx_invoices.put_invoice(g.creditor, number, body())
    return jsonify(one_invoice_json(invoice)), 201 if created else 200


@bp.get("/invoices/<path:number>")
def get_invoice(number):
    invoice = ledger.get_invoice(g.creditor.id, number)
    return jsonify(one_invoice_json(invoice))


@bp.post("/invoices/<path:number>/payments")
def post_payment(number):
    payment, created = ledger.record_offline_payment(g.creditor, number, body())
    invoice = ledger.get_invoice(g.creditor.id, number)
    cur = payment.currency
    allocated, unallocated = receivables.split(payment)
    return jsonify({
        "id": payment.id, "reference": payment.reference, "amount": to_decimal_string(payment.amount, cur),
        "currency": cur, "date": payment.received_on.isoformat(),
        "allocated": to_decimal_string(allocated, cur),
        "unallocated": to_decimal_string(unallocated, cur),
        "invoice": one_invoice_json(invoice),
    }), 201 if created else 200


@bp.post("/debtors/<path:ref>/links")
def post_link(ref):
    debtor = ledger.get_debtor(g.creditor.id, ref)
    issued = links.issue(debtor, issued_by="api")
    return jsonify({"url": issued.url, "expires_at": issued.link.expires_at.isoformat()}), 201


@bp.get("/events")
def get_events():
    after = _int_arg("after", 0, 0, 2**62)
    limit = _int_arg("limit", 100, 1, 1000)
    out = [events.as_json(*row) for row in events.page(g.creditor.id, after=after, limit=limit)]
    ids = {a.get("invoice_id") for e in out for a in e["data"].get("allocations") or () if isinstance(a, dict)}
    numbers = receivables.invoice_numbers(g.creditor.id, ids)
    for e in out:
        e["data"] = _event_data(e["data"], numbers)
    return jsonify({"events": out})


def _event_data(data: dict, numbers: dict[int, str]) -> dict:
    """Stored event data keeps minor units and row ids (the back office reads them); the API
    shows amounts as decimal strings, like everywhere else, and invoices by their number."""
    data = dict(data)  # never the ORM's own dict
    try:
        cur = check_currency(data.get("currency"))
    except MoneyError:
        return data

    def money(v):
        return to_decimal_string(v, cur) if type(v) is int else v
    for key in ("amount", "unallocated"):
        if key in data:
            data[key] = money(data[key])
    if isinstance(data.get("allocations"), list):
        data["allocations"] = [{"invoice_number": numbers.get(a.get("invoice_id")), "amount": money(a.get("amount"))}
                               if isinstance(a, dict) else a for a in data["allocations"]]
    return data


@bp.get("/reports/summary")
def get_summary():
    raw = request.args.get("as_of")
    as_of = checks.check_date(raw, "as_of") if raw is not None else today_for(g.creditor)
    return jsonify(reports.summary(g.creditor, as_of))


@bp.post("/bank-statements")
def post_bank_statement():
    # A year of statements may pass the app's limit for other bodies.
    request.max_content_length = current_app.config.get("MAX_STATEMENT_BYTES", reconciliation.MAX_STATEMENT_BYTES)
    data = request.get_data(cache=False)  # over the limit: 413
    if not data:
        raise Invalid("the body must be the statement file", "body", code="unreadable_statement")
    result = reconciliation.import_statement(g.creditor, io.BytesIO(data), request.headers.get("X-Filename"),
                                             actor="api")
    return jsonify(result.as_dict()), 201 if result.new else 200


def bank_transaction_json(line: reconciliation.Line) -> dict:
    tx = line.tx
    return {"id": tx.id, "booking_date": tx.booking_date.isoformat(),
            "amount": to_decimal_string(tx.amount, tx.currency), "currency": tx.currency,
            "counterparty": tx.counterparty, "remittance": tx.remittance, "status": tx.status,
            "debtor_ref": line.debtor_ref, "invoices": line.invoices, "reason": tx.reason}


@bp.get("/bank-transactions")
def get_bank_transactions():
    lines = reconciliation.list_transactions(g.creditor.id, request.args.get("status"),
                                             limit=_int_arg("limit", 500, 1, 5000))
    return jsonify({"transactions": [bank_transaction_json(line) for line in lines]})


@bp.post("/bank-transactions/<id>/match")
def match_bank_transaction(id):  # noqa: A002  (the path's name in CONTRACT §8)
    transaction_id = reconciliation.transaction_id(id)
    data = body() if request.get_data() else {}
    reconciliation.confirm_match(g.creditor, transaction_id, data.get("invoices"), actor="api")
    return jsonify(bank_transaction_json(reconciliation.get_line(g.creditor.id, transaction_id)))


@bp.post("/bank-transactions/<id>/ignore")
def ignore_bank_transaction(id):  # noqa: A002
    transaction_id = reconciliation.transaction_id(id)
    reconciliation.ignore(g.creditor, transaction_id, actor="api")
    return jsonify(bank_transaction_json(reconciliation.get_line(g.creditor.id, transaction_id)))


@bp.get("/openapi.json")
@limiter.exempt
def openapi():
    return jsonify(document())


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    # isdigit() alone accepts "²", and int() refuses more than 4300 digits: both would be a 500.
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 19) or not low <= int(raw) <= high:
        raise Invalid(f"{name} must be an integer from {low} to {high}", name)
    return int(raw)


# --- reports: what each reminder achieves, the cash forecast (CONTRACT §4) ---------------------------

@bp.get("/reports/dunning")
def get_dunning_report():
    start, end = effectiveness.period(request.args.get("from"), request.args.get("to"), today_for(g.creditor))
    return jsonify(effectiveness.report(g.creditor, start, end))


@bp.get("/reports/forecast")
def get_forecast():
    weeks = _int_arg("weeks", 12, 1, forecast.MAX_WEEKS)
    return jsonify(forecast.forecast(g.creditor, weeks, today_for(g.creditor)))


# --- plans and tasks (issue 18) -----------------------------------------------------------------

@bp.get("/plans")
def get_plans():
    return jsonify({"plans": plan_steps.plans_json(g.creditor.id)})


@bp.put("/plans/<profile>")
def put_plan(profile):
    plan = plan_steps.replace_steps(g.creditor.id, profile, body().get("steps"))
    return jsonify({"profile": plan.profile, "steps": [plan_steps.step_json(s) for s in plan.steps]})


@bp.get("/tasks")
def get_tasks():
    status = request.args.get("status", "open")
    return jsonify({"tasks": call_tasks.listed_json(g.creditor.id, status)})


@bp.post("/tasks/<task_id>/outcome")
def post_task_outcome(task_id):
    task = call_tasks.record_outcome(g.creditor, call_tasks.task_id(task_id), body(), user=None)
    return jsonify(call_tasks.task_json(task))
