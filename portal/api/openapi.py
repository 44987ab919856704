"""The OpenAPI 3.1 document of API v1, kept beside the views it describes."""
from __future__ import annotations

from flask import current_app

from ..models import TRANSACTION_STATUSES as TX_STATUSES

AMOUNT = {"type": "string", "pattern": r"^(0|[1-9][0-9]{0,15})(\.[0-9]+)?$", "examples": ["1200.00"]}
DATE = {"type": "string", "format": "date",
        "description": "YYYY-MM-DD; a date given in a request must lie from 1990-01-01 to 2199-12-31 (else 422)"}
REF = {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9._/\-]{0,63}$"}
PAYMENT_REFERENCE = {"type": "string", "pattern": "^RF[0-9]{2}[0-9A-Z]{1,21}$", "examples": ["RF56D1"],
                     "description": "ISO 11649 structured creditor reference to quote on a transfer, unformatted"}
KIND = {"enum": ["business", "public", "consumer"],
        "description": "the legal basis of reminders and charges follows it: a business, a public body or a consumer"}
ADDRESS = {"type": ["string", "null"],
           "description": "postal address for letters: at most 6 lines of at most 38 characters (NF Z10-011), "
                          "separated by \\n; spaces are tidied and empty lines dropped; null or \"\" clears it; "
                          "left out of an update, it is kept"}
CURRENCY = {"type": "string", "pattern": "^[A-Za-z]{3}$", "examples": ["EUR"]}
#: the early-payment discount (CONTRACT §4, §10): a percentage of the amount, until a last day inclusive
DISCOUNT = {"type": "object", "required": ["percent", "until"], "additionalProperties": False, "properties": {
    "percent": {"type": "string", "pattern": r"^[0-9]{1,2}(\.[0-9]{1,2})?$", "examples": ["2", "2.5"],
                "description": "greater than 0 and less than 100, at most 2 decimals"},
    "until": {**DATE, "description": "the last day (creditor's time zone) a payment in full earns it; "
                                     "not before issue_date"}}}
DISCOUNT_INPUT = {"oneOf": [{"type": "null"}, DISCOUNT],
                  "description": "paid in full (the discount deducted) by `until`, the discount settles the rest "
                                 "of the invoice; null removes it, absent leaves it as it is"}
FACTURX_INPUT = (
    "All of debtor_ref, issue_date, due_date, amount and currency are required, unless pdf_base64 is a Factur-X "
    "PDF (CII XML embedded): then each field left out comes from the XML (number BT-1, which must equal the path; "
    "issue_date BT-2; due_date BT-9, else issue_date plus the creditor's payment terms; amount BT-115, the amount "
    "due for payment; currency BT-5; debtor_ref the buyer identifier BT-46, else a debtor whose ref is the buyer's "
    "SIREN/SIRET BT-47, else a new debtor made from the buyer's name BT-44 and e-mail BT-49), and each field given "
    "must agree with the XML: else 422 `facturx_mismatch` naming the field and both values. A credit note "
    "(BT-3 381) answers 422 `credit_note_unsupported`; an unusable XML 422 `facturx_invalid` naming the BT. "
    "A PDF without Factur-X XML is stored as the invoice's document, every field then required.")


TX_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}


def _ref_param(name):
    return {"name": name, "in": "path", "required": True, "schema": REF}


def _json(schema_ref, description="OK"):
    return {"description": description, "content": {"application/json": {"schema": {"$ref": schema_ref}}}}


ERRORS = {
    "401": _json("#/components/schemas/Error", "missing or invalid API key"),
    "404": _json("#/components/schemas/Error", "not found (or another creditor's)"),
    "422": _json("#/components/schemas/Error", "invalid input"),
}


def _body(schema_ref):
    return {"required": True, "content": {"application/json": {"schema": {"$ref": schema_ref}}}}


def document() -> dict:
    s = "#/components/schemas/"
    return {
        "openapi": "3.1.0",
        "info": {"title": "Relance API", "version": "1.0.0",
                 "description": "Creditor API: debtors, invoices, offline payments, portal links, events, reports, bank reconciliation. "
                                "Amounts are decimal strings in the invoice currency; dates ISO 8601."},
        "servers": [{"url": current_app.config["PORTAL_BASE_URL"] + "/api/v1"}],
        "security": [{"bearer": []}],
        "paths": {
            "/debtors/{ref}": {
                "parameters": [_ref_param("ref")],
                "put": {"operationId": "putDebtor", "requestBody": _body(s + "DebtorInput"),
                        "responses": {"200": _json(s + "Debtor", "updated"), "201": _json(s + "Debtor", "created"),
                                      **ERRORS, "409": _json(s + "Error", "conflict")}},
                "get": {"operationId": "getDebtor", "responses": {"200": _json(s + "Debtor"), **ERRORS}},
            },
            "/invoices/{number}": {
                "parameters": [_ref_param("number")],
                "put": {"operationId": "putInvoice", "requestBody": _body(s + "InvoiceInput"),
                        "responses": {"200": _json(s + "Invoice", "updated"), "201": _json(s + "Invoice", "created"),
                                      **ERRORS, "409": _json(s + "Error", "conflict")}},
                "get": {"operationId": "getInvoice", "responses": {"200": _json(s + "Invoice"), **ERRORS}},
            },
            "/invoices/{number}/payments": {
                "parameters": [_ref_param("number")],
                "post": {"operationId": "postPayment", "requestBody": _body(s + "PaymentInput"),
                         "responses": {"200": _json(s + "Payment", "already recorded with this reference"),
                                       "201": _json(s + "Payment", "recorded"), **ERRORS,
                                       "409": _json(s + "Error", "reference reused or invoice cancelled")}},
            },
            "/debtors/{ref}/links": {
                "parameters": [_ref_param("ref")],
                "post": {"operationId": "postLink", "responses": {"201": _json(s + "Link", "issued"), **ERRORS}},
            },
            "/events": {
                "get": {"operationId": "getEvents",
                        "parameters": [{"name": "after", "in": "query", "schema": {"type": "integer", "minimum": 0}},
                                       {"name": "limit", "in": "query",
                                        "schema": {"type": "integer", "minimum": 1, "maximum": 1000}}],
                        "responses": {"200": _json(s + "EventPage"), **ERRORS}},
            },
            "/reports/summary": {
                "get": {"operationId": "getSummary",
                        "parameters": [{"name": "as_of", "in": "query", "schema": DATE}],
                        "responses": {"200": _json(s + "Summary"), **ERRORS}},
            },
            "/reports/dunning": {
                "get": {"operationId": "getDunningReport",
                        "description": "What each step of the plans achieved for the messages sent from `from` to "
                                       "`to` (calendar days in the creditor's time zone; default: the 90 days up to "
                                       "today): per step and channel, messages sent (each under its most advanced "
                                       "step), portal visits after them and before the debtor's next message, "
                                       "invoices paid in full within 7 and 30 days and the amount collected within "
                                       "30 days, each payment credited to the last message before it that named "
                                       "the invoice. 422 with `field` for a bad date or `from` after `to`.",
                        "parameters": [{"name": "from", "in": "query", "schema": DATE},
                                       {"name": "to", "in": "query", "schema": DATE}],
                        "responses": {"200": _json(s + "DunningReport"), **ERRORS}},
            },
            "/reports/forecast": {
                "get": {"operationId": "getForecast",
                        "description": "Cash expected per week (weeks start on Monday, the first contains today, "
                                       "money expected before today counts in it), in the creditor's currency: open "
                                       "items not under dispute at their due date moved by the debtor's average days "
                                       "late (else the creditor-wide average, else 0); a live promise to pay puts "
                                       "what it promised and is still to come on its date.",
                        "parameters": [{"name": "weeks", "in": "query",
                                        "schema": {"type": "integer", "minimum": 1, "maximum": 52, "default": 12}}],
                        "responses": {"200": _json(s + "Forecast"), **ERRORS}},
            },
            "/bank-statements": {
                "post": {"operationId": "postBankStatement",
                         "description": "A bank statement file as the body (camt.053, camt.054, CFONB 120, MT940 or "
                                        "OFX, recognised from the content), 64 MB at most. Every line is stored "
                                        "once per bank account; new credits are matched to open invoices. A file "
                                        "that cannot be read records nothing: 422, `field` names the line or "
                                        "element at fault. Debits are kept as `ignored` with the reason `debit`.",
                         "parameters": [{"name": "X-Filename", "in": "header", "required": False,
                                         "schema": {"type": "string", "maxLength": 255}}],
                         "requestBody": {"required": True, "content": {"application/octet-stream": {
                             "schema": {"type": "string", "contentEncoding": "binary"}}}},
                         "responses": {"201": _json(s + "StatementImport", "imported, some lines new"),
                                       "200": _json(s + "StatementImport", "nothing new: every line already recorded"),
                                       **ERRORS, "413": _json(s + "Error", "over 64 MB")}},
            },
            "/bank-transactions": {
                "get": {"operationId": "getBankTransactions",
                        "parameters": [{"name": "status", "in": "query", "schema": {"enum": list(TX_STATUSES)}},
                                       {"name": "limit", "in": "query",
                                        "schema": {"type": "integer", "minimum": 1, "maximum": 5000}}],
                        "responses": {"200": _json(s + "BankTransactionPage"), **ERRORS}},
            },
            "/bank-transactions/{id}/match": {
                "parameters": [TX_ID],
                "post": {"operationId": "matchBankTransaction",
                         "description": "Confirm the suggestion (no body, or no `invoices`) or match to these "
                                        "invoices of one debtor; the payment is recorded, oldest due first, what "
                                        "is left stays as credit. Idempotent.",
                         "requestBody": {"required": False, "content": {"application/json": {"schema": {
                             "type": "object", "properties": {"invoices": {"type": "array", "items": REF,
                                                                           "maxItems": 100}}}}}},
                         "responses": {"200": _json(s + "BankTransaction", "matched"), **ERRORS,
                                       "409": _json(s + "Error", "a debit, a payout, already matched otherwise, "
                                                                 "or an invoice no longer open")}},
            },
            "/bank-transactions/{id}/ignore": {
                "parameters": [TX_ID],
                "post": {"operationId": "ignoreBankTransaction",
                         "responses": {"200": _json(s + "BankTransaction", "ignored"), **ERRORS,
                                       "409": _json(s + "Error", "already matched")}},
            },
            "/openapi.json": {"get": {"operationId": "getOpenApi", "security": [],
                                      "responses": {"200": {"description": "this document"}}}},
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {"type": "object", "required": ["error"], "properties": {"error": {
                    "type": "object", "required": ["code", "message"],
                    "properties": {"code": {"type": "string"}, "message": {"type": "string"},
                                   "field": {"type": ["string", "null"]}}}}},
                "DebtorInput": {"type": "object", "required": ["name"], "properties": {
                    "name": {"type": "string", "minLength": 1, "maxLength": 200},
                    "email": {"type": ["string", "null"], "format": "email"},
                    "language": {"enum": ["fr", "en"]},
                    "profile": {"enum": ["standard", "key_account", "risky", "public_sector"]},
                    "phone": {"type": ["string", "null"], "maxLength": 40},
                    "kind": KIND, "address": ADDRESS}},
                "Debtor": {"type": "object", "properties": {
                    "ref": REF, "name": {"type": "string"}, "email": {"type": ["string", "null"]},
                    "language": {"enum": ["fr", "en"]}, "profile": {"type": "string"},
                    "phone": {"type": ["string", "null"]}, "kind": KIND,
                    "address": {"type": ["string", "null"], "description": ADDRESS["description"]},
                    "payment_reference": PAYMENT_REFERENCE, "balance": AMOUNT, "currency": CURRENCY,
                    "balances": {"type": "object", "additionalProperties": AMOUNT},
                    "open_invoices": {"type": "array", "items": {"$ref": s + "Invoice"}},
                    "payer": {"$ref": s + "Payer"}}},
                "InvoiceInput": {"type": "object", "description": FACTURX_INPUT,
                                 # Every field is required, unless the PDF is a Factur-X invoice.
                                 "anyOf": [{"required": ["debtor_ref", "issue_date", "due_date", "amount",
                                                         "currency"]},
                                           {"required": ["pdf_base64"]}],
                                 "properties": {"debtor_ref": REF, "issue_date": DATE, "due_date": DATE,
                                                "amount": AMOUNT, "currency": CURRENCY,
                                                "pdf_base64": {"type": "string", "contentEncoding": "base64",
                                                               "contentMediaType": "application/pdf",
                                                               "description": "the invoice PDF (10 MB at most); "
                                                                              "a Factur-X PDF fills the other fields"},
                                                "cancelled": {"type": "boolean"},
                                                "early_payment_discount": DISCOUNT_INPUT}},
                "Invoice": {"type": "object", "properties": {
                    "number": REF, "debtor_ref": REF, "amount": AMOUNT, "amount_paid": AMOUNT, "balance": AMOUNT,
                    "currency": CURRENCY, "issue_date": DATE, "due_date": DATE,
                    "status": {"enum": ["open", "partially_paid", "paid", "cancelled"]},
                    "disputed": {"type": "boolean"},
                    "last_reminder": {"oneOf": [{"type": "null"}, {"type": "object", "properties": {
                        "step": {"type": "string"}, "sent_at": {"type": "string", "format": "date-time"}}}]},
                    "payment_reference": PAYMENT_REFERENCE,
                    "early_payment_discount": {"oneOf": [{"type": "null"}, DISCOUNT]},
                    "amount_due_now": {**AMOUNT, "description": "the balance less the early-payment discount while "
                                                                "it is available (today in the creditor's time zone "
                                                                "on or before `until`)"}}},
                "PaymentInput": {"type": "object", "required": ["amount", "date", "reference"], "properties": {
                    "amount": AMOUNT, "date": DATE, "reference": {"type": "string", "minLength": 1, "maxLength": 255}}},
                "Payment": {"type": "object", "properties": {
                    "id": {"type": "integer"}, "reference": {"type": "string"}, "amount": AMOUNT,
                    "currency": CURRENCY, "date": DATE, "allocated": AMOUNT, "unallocated": AMOUNT,
                    "invoice": {"$ref": s + "Invoice"}}},
                "Link": {"type": "object", "properties": {"url": {"type": "string", "format": "uri"},
                                                          "expires_at": {"type": "string", "format": "date-time"}}},
                "EventPage": {"type": "object", "properties": {"events": {"type": "array", "items": {
                    "type": "object", "properties": {
                        "id": {"type": "integer"}, "type": {"type": "string"},
                        "at": {"type": "string", "format": "date-time"}, "debtor_ref": {"type": ["string", "null"]},
                        "invoice_number": {"type": "string"},
                        "data": {"type": "object", "description": "depends on the type; amounts in it are decimal "
                                                                  "strings in its `currency`"}}}}}},
                "StatementImport": {"type": "object", "properties": {
                    "format": {"enum": ["camt.053", "camt.054", "cfonb120", "mt940", "ofx"]},
                    **{k: {"type": "integer", "minimum": 0} for k in
                       ("transactions", "new", "duplicates", "matched", "suggested", "unmatched")}}},
                "BankTransaction": {"type": "object", "properties": {
                    "id": {"type": "integer"}, "booking_date": DATE,
                    "amount": {"type": "string", "pattern": r"^-?(0|[1-9][0-9]{0,15})(\.[0-9]+)?$",
                               "description": "positive a credit, negative a debit"},
                    "currency": CURRENCY, "counterparty": {"type": ["string", "null"]},
                    "remittance": {"type": "string"}, "status": {"enum": list(TX_STATUSES)},
                    "debtor_ref": {"type": ["string", "null"]}, "invoices": {"type": "array", "items": REF},
                    "reason": {"type": "string", "description": "invoice_reference, debtor_reference, invoice_numbers, "
                               "exact_amount, invoice_set, payer_name, debtor_balance, payout, debit, "
                               "already_recorded, confirmed, manual, none"}}},
                "BankTransactionPage": {"type": "object", "properties": {"transactions": {
                    "type": "array", "items": {"$ref": s + "BankTransaction"}}}},
                "Summary": {"type": "object", "properties": {
                    "as_of": DATE, "currency": CURRENCY, "outstanding": AMOUNT, "overdue": AMOUNT,
                    "dso_days": {"type": "number"},
                    "ageing": {"type": "object", "properties": {k: AMOUNT for k in
                                                               ("not_due", "1_30", "31_60", "61_90", "over_90")}},
                    "cei": {"type": ["number", "null"]}}},
                "Payer": {"type": "object", "description": "over the debtor's fully paid invoices (credit notes "
                          "and charges excluded; paid on = the day the balance reached zero)", "properties": {
                    "average_days_late": {"type": ["number", "null"],
                                          "description": "mean of max(0, paid on - due date), one decimal"},
                    "paid_on_time_share": {"type": ["string", "null"], "pattern": r"^[01]\.[0-9]{2}$",
                                           "examples": ["0.75"]},
                    "invoices_paid": {"type": "integer", "minimum": 0}}},
                "DunningReport": {"type": "object", "properties": {
                    "from": DATE, "to": DATE, "currency": CURRENCY,
                    "steps": {"type": "array", "items": {"type": "object", "properties": {
                        "step": {"type": "string"}, "channel": {"type": "string"},
                        **{k: {"type": "integer", "minimum": 0} for k in
                           ("sent", "portal_visits", "paid_within_7_days", "paid_within_30_days")},
                        "amount_collected_within_30_days": AMOUNT}}}}},
                "Forecast": {"type": "object", "properties": {
                    "currency": CURRENCY, "weeks": {"type": "array", "items": {"type": "object", "properties": {
                        "week_start": DATE, "expected": AMOUNT}}}}},
            },
        },
    }


# --- plans and tasks (issue 18), added to the document built above -----------------------------

STEP = {"type": "object", "required": ["code", "offset_days"], "properties": {
    "code": {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,31}$",
             "description": "stable name of the step in its plan; a step already used by reminders keeps its "
                            "history under this code"},
    "offset_days": {"type": "integer", "minimum": -90, "maximum": 365,
                    "description": "days from the due date (negative: before it); strictly increasing"},
    "channel": {"enum": ["email", "sms", "letter", "call"], "default": "email",
                "description": "sms goes by e-mail while SMS is not configured; call makes a task (/tasks)"},
    "tone": {"enum": ["courtesy", "reminder", "firm", "formal_notice"],
             "description": "never less firm than the step before; a step on or before the due date is a courtesy "
                            "notice; a formal notice follows at least two reminders after the due date"},
    "needs_approval": {"type": "boolean", "default": False}}}
TASK = {"type": "object", "properties": {
    "id": {"type": "integer"}, "kind": {"enum": ["call"]}, "debtor_ref": REF,
    "invoices": {"type": "array", "items": REF}, "due": DATE, "status": {"enum": ["open", "done"]},
    "outcome": {"enum": ["reached", "promise", "no_answer", "wrong_number", None]},
    "note": {"type": ["string", "null"]}, "closed_at": {"type": ["string", "null"], "format": "date-time"}}}


def _plans_and_tasks(doc: dict) -> dict:
    s = "#/components/schemas/"
    doc["components"]["schemas"].update({
        "PlanStep": STEP,
        "Plan": {"type": "object", "properties": {"profile": {"type": "string"},
                                                  "steps": {"type": "array", "items": {"$ref": s + "PlanStep"}}}},
        "PlanList": {"type": "object", "properties": {"plans": {"type": "array", "items": {"$ref": s + "Plan"}}}},
        "PlanInput": {"type": "object", "required": ["steps"], "properties": {
            "steps": {"type": "array", "minItems": 1, "maxItems": 12, "items": {"$ref": s + "PlanStep"}}}},
        "Task": TASK,
        "TaskList": {"type": "object", "properties": {"tasks": {"type": "array", "items": {"$ref": s + "Task"}}}},
        "TaskOutcome": {"type": "object", "required": ["outcome"], "properties": {
            "outcome": {"enum": ["reached", "promise", "no_answer", "wrong_number"]},
            "note": {"type": "string", "maxLength": 2000},
            "promise_date": {**DATE, "description": "required for a promise: from today to the creditor's limit"},
            "promise_amount": {**AMOUNT, "description": "for a promise: spread over the task's invoices, oldest due "
                                                        "first; left out, each invoice's whole balance"}}},
    })
    doc["paths"].update({
        "/plans": {"get": {"operationId": "getPlans", "responses": {"200": _json(s + "PlanList"), **ERRORS}}},
        "/plans/{profile}": {
            "parameters": [{"name": "profile", "in": "path", "required": True, "schema": {"type": "string"}}],
            "put": {"operationId": "putPlan", "requestBody": _body(s + "PlanInput"),
                    "description": "Replaces the plan's steps. A step left out that reminders refer to is kept "
                                   "out of the plan (retired), never deleted; its reminders not yet composed are "
                                   "cancelled.",
                    "responses": {"200": _json(s + "Plan", "replaced"), **ERRORS}}},
        "/tasks": {"get": {"operationId": "getTasks",
                           "parameters": [{"name": "status", "in": "query", "schema": {"enum": ["open", "done"]}}],
                           "responses": {"200": _json(s + "TaskList"), **ERRORS}}},
        "/tasks/{task_id}/outcome": {
            "parameters": [{"name": "task_id", "in": "path", "required": True,
                            "schema": {"type": "integer", "minimum": 1}}],
            "post": {"operationId": "postTaskOutcome", "requestBody": _body(s + "TaskOutcome"),
                     "description": "Closes the task; the call counts as its step sent for the ladder. A promise "
                                    "records a promise to pay per invoice, as the portal does.",
                     "responses": {"200": _json(s + "Task", "closed"), **ERRORS,
                                   "409": _json(s + "Error", "already closed, or no invoice can take a promise")}}},
    })
    return doc


_document_before_plans = document


def document() -> dict:  # noqa: F811 - the document above with the plans and tasks added
    return _plans_and_tasks(_document_before_plans())
