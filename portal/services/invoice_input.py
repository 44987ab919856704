"""What PUT /invoices/{number} (and the Factur-X upload) may carry, checked: the invoice's fields,
its PDF, and the early-payment discount (CONTRACT §4, §10). Nothing here touches the database."""
from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from . import Invalid
from .checks import amount_of, check_date, check_ref, currency_of

MAX_PDF_BYTES = 10 * 1024 * 1024
#: "2", "2.5", "2.75": a percentage with at most two decimals (the column is Numeric(5, 2))
PERCENT = re.compile(r"^[0-9]{1,2}(\.[0-9]{1,2})?$")
#: the discount left as it is (the key absent), as opposed to None (removed)
KEEP = "keep"


@dataclass
class InvoiceInput:
    debtor_ref: str
    issue_date: date
    due_date: date
    amount: int
    currency: str
    pdf: bytes | None = None
    cancelled: bool | None = None
    #: (percent, last day), None to remove it, or KEEP
    discount: tuple[Decimal, date] | None | str = KEEP


def check_invoice(data) -> InvoiceInput:
    if not isinstance(data, dict):
        raise Invalid("a JSON object is required")
    debtor_ref = check_ref(data.get("debtor_ref"), "debtor_ref")
    issue = check_date(data.get("issue_date"), "issue_date")
    due = check_date(data.get("due_date"), "due_date")
    if due < issue:
        raise Invalid("due_date is before issue_date", "due_date")
    currency = currency_of(data.get("currency"))
    amount = amount_of(data.get("amount"), currency)
    pdf = None
    if data.get("pdf_base64") is not None:
        pdf = check_pdf(data["pdf_base64"])
    cancelled = data.get("cancelled")
    if cancelled is not None and not isinstance(cancelled, bool):
        raise Invalid("cancelled must be true or false", "cancelled")
    discount = check_discount(data["early_payment_discount"], issue) if "early_payment_discount" in data else KEEP
    return InvoiceInput(debtor_ref, issue, due, amount, currency, pdf, cancelled, discount)


def check_discount(value, issue_date: date) -> tuple[Decimal, date] | None:
    """{"percent": "2.5", "until": "2026-12-14"} -> (Decimal("2.5"), date); null removes it."""
    field = "early_payment_discount"
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) - {"percent", "until"}:
        raise Invalid(f'{field} must be an object {{"percent": "2.5", "until": "YYYY-MM-DD"}} or null', field)
    percent = value.get("percent")
    if not isinstance(percent, str) or not PERCENT.fullmatch(percent.strip()):
        raise Invalid(f'{field}.percent must be a decimal string with at most 2 decimals, like "2" or "2.5"',
                      f"{field}.percent")
    percent = Decimal(percent.strip())
    if not 0 < percent < 100:
        raise Invalid(f"{field}.percent must be greater than 0 and less than 100", f"{field}.percent")
    until = check_date(value.get("until"), f"{field}.until")
    if until < issue_date:
        raise Invalid(f"{field}.until is before issue_date", f"{field}.until")
    return percent, until


def check_pdf(value) -> bytes:
    if not isinstance(value, str) or len(value) > MAX_PDF_BYTES * 4 // 3 + 4:
        raise Invalid("pdf_base64 must be a base64 string of a PDF under 10 MB", "pdf_base64")
    try:
        pdf = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise Invalid("pdf_base64 is not valid base64", "pdf_base64") from None
    if not pdf.startswith(b"%PDF-"):
        raise Invalid("pdf_base64 is not a PDF", "pdf_base64")
    return pdf
