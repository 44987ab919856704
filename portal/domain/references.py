"""Payment references (CONTRACT §7) and the EPC QR code's text, in plain Python.

A reference is an ISO 11649 structured creditor reference: "RF", two check digits, then up to 21
letters and digits. Ours are derived from our own primary keys, so every debtor and invoice has
one from the day it exists, without a column or a backfill:

    RF <check digits> <kind letter> <id in base 36, upper case, no leading zero>

The kind letter is "D" for a debtor and "I" for an invoice. Primary keys are unique across
creditors, so a reference names one row in the whole database; the creditor it belongs to is
checked wherever it is looked up. A 64-bit id needs 13 base-36 characters, well within the 20
left after the kind letter.

The check digits are ISO 7064 mod 97-10, as for an IBAN: move "RF00" to the end, letters to
numbers (A=10 … Z=35), check = 98 - (that number mod 97). `python-stdnum` (`stdnum.iso11649`)
validates the result; the tests hold the two to the same answer.
"""
from __future__ import annotations

import string

from stdnum import iban as _iban
from stdnum import iso11649

DEBTOR = "D"
INVOICE = "I"
KINDS = (DEBTOR, INVOICE)

_DIGITS36 = string.digits + string.ascii_uppercase
MAX_BODY = 21  # characters after "RF" and the check digits (ISO 11649)
MAX_ID = 36 ** (MAX_BODY - 1) - 1  # the kind letter takes one


def _base36(n: int) -> str:
    out = []
    while n:
        n, r = divmod(n, 36)
        out.append(_DIGITS36[r])
    return "".join(reversed(out))


def _check_digits(body: str) -> str:
    number = int("".join(str(int(c, 36)) for c in body + "RF00"))
    return f"{98 - number % 97:02d}"


def reference(kind: str, row_id: int) -> str:
    """The RF reference of a row of that kind, unformatted ("RF…", no spaces)."""
    if kind not in KINDS:
        raise ValueError(f"unknown reference kind {kind!r}")
    if isinstance(row_id, bool) or not isinstance(row_id, int) or not 0 < row_id <= MAX_ID:
        raise ValueError(f"a reference needs a positive id up to {MAX_ID}, not {row_id!r}")
    body = kind + _base36(row_id)
    return "RF" + _check_digits(body) + body


def debtor_reference(debtor_id: int) -> str:
    return reference(DEBTOR, debtor_id)


def invoice_reference(invoice_id: int) -> str:
    return reference(INVOICE, invoice_id)


def parse_reference(text: str) -> tuple[str, int] | None:
    """(kind, id) for one of our references as a payer may type it (spaces, lower case), else None:
    bad check digits, another scheme's RF reference, or a non-canonical spelling of an id
    (leading zeros) are not ours. Nor are check digits "00" or "01", which stdnum accepts as
    aliases of "97" and "98" (same residue) though ISO 7064 writes 02 to 98."""
    if not isinstance(text, str):
        return None
    ref = iso11649.compact(text)  # drops spaces, upper case
    if not iso11649.is_valid(ref) or len(ref) < 6 or ref[4] not in KINDS:
        return None
    digits = ref[5:]
    if not digits.isalnum() or not digits.isascii():
        return None
    row_id = int(digits, 36)
    if row_id == 0 or reference(ref[4], row_id) != ref:
        return None
    return ref[4], row_id


def format_reference(ref: str) -> str:
    """Groups of four for reading and typing: "RF18 5390 0754 7034"."""
    compact = iso11649.compact(ref)
    return " ".join(compact[i:i + 4] for i in range(0, len(compact), 4))


# --- EPC QR code ("GiroCode") --------------------------------------------------------------------
# Sources: EPC069-12 "Quick Response Code: Guidelines to Enable Data Capture for the Initiation of
# a SEPA Credit Transfer" (v2.1; the 2.x texts keep this layout), read through its transcription
# on doczz.fr and the summaries of the bwipp "EPC QR Code" wiki and segno's epc-qrcodes docs.
# The payload is these elements, one per line (LF), in this order:
#   1 service tag "BCD"          2 version "002"            3 character set "1" (UTF-8)
#   4 identification "SCT"       5 BIC (may be empty in 002) 6 beneficiary name, at most 70
#   7 IBAN                       8 "EUR" + amount, 0.01–999999999.99, a dot, 2 decimals here
#   9 purpose code (empty)       10 structured reference (our RF), at most 35
#   11 unstructured remittance (empty: a reference and a text are never both given)
#   12 beneficiary-to-originator information (not used)
# Nothing follows the last element given, so with 11 and 12 empty the text ends with the reference.
# Whole payload at most 331 bytes (QR version 13, error level M).

EPC_MAX_NAME = 70
EPC_MAX_AMOUNT_MINOR = 99_999_999_999
EPC_MAX_BYTES = 331


def epc_qr_payload(name: str, iban: str, bic: str | None, amount_minor: int, currency: str, reference: str) -> str:
    """The text of an EPC QR code asking `amount_minor` cents of euro to be paid to `iban` with
    `reference`. Euros only (the EPC code is a SEPA credit transfer); anything else is a ValueError."""
    if currency != "EUR":
        raise ValueError(f"an EPC QR code is for euros only, not {currency!r}")
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int) \
            or not 1 <= amount_minor <= EPC_MAX_AMOUNT_MINOR:
        raise ValueError("an EPC QR code asks for 0.01 to 999999999.99 EUR")
    iban = _iban.validate(iban)  # compact, checked; its errors are ValueErrors
    bic = (bic or "").replace(" ", "").upper()
    if bic and len(bic) not in (8, 11):
        raise ValueError(f"a BIC has 8 or 11 characters, not {bic!r}")
    ref = iso11649.validate(reference)
    # Names are the creditor's legal names; a long one is cut rather than leaving the letter without a code.
    name = " ".join(name.split())[:EPC_MAX_NAME]
    if not name:
        raise ValueError("an EPC QR code names the beneficiary")
    euros, cents = divmod(amount_minor, 100)
    lines = ["BCD", "002", "1", "SCT", bic, name, iban, f"EUR{euros}.{cents:02d}", "", ref]
    payload = "\n".join(lines)
    if len(payload.encode("utf-8")) > EPC_MAX_BYTES:
        raise ValueError("the EPC QR payload is over 331 bytes")
    return payload
