"""A debtor's contacts as the collector keeps them on the debtor page: e-mail, phone, language and
the accounts-payable contact. Through the same checks and the same `debtor.updated` event as
PUT /debtors (debtors.check_debtor, _put_debtor): a corrected e-mail gives failed steps another
chance there too. The name, profile, kind and postal address are left as they are."""
from __future__ import annotations

from ..domain import phones
from ..models import Creditor, Debtor
from . import Invalid
from .debtors import _put_debtor, check_debtor, commit_or_conflict


def save(creditor: Creditor, debtor: Debtor, form) -> Debtor:
    """`form`: the fields as typed (email, phone, language, ap_contact); an empty one clears it.
    Refused (Invalid, its field named) before anything is written."""
    data = {"name": debtor.name, "email": _text(form, "email"), "language": _text(form, "language"),
            "ap_contact": form.get("ap_contact") or ""}
    d = check_debtor(data, debtor.language)
    typed = _text(form, "phone")
    try:
        # Stored as E.164, the form an SMS gateway takes; "" clears it (_put_debtor stores None).
        d.phone = phones.to_e164(typed) if typed else ""
    except phones.InvalidPhone as e:
        raise Invalid(str(e), "phone", code=e.reason) from None
    _put_debtor(creditor, debtor.ref, d, actor="creditor")
    commit_or_conflict()
    return debtor


def _text(form, key: str) -> str:
    value = form.get(key)
    return value.strip() if isinstance(value, str) else ""
