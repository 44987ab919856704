"""Debtors in the creditor's sub-ledger: checked input, created or updated with an event naming
what changed; a corrected e-mail or postal address gives failed reminders another chance."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..domain import phones
from ..domain.legal import DEBTOR_KINDS
from ..extensions import db
from ..models import Creditor, Debtor
from . import Conflict, Invalid, NotFound, events, ladder
from .checks import REF, check_address, check_email, check_name, check_ref, check_storable, check_text

PROFILES = ("standard", "key_account", "risky", "public_sector")
#: the legal basis of reminders and charges follows the debtor's kind (domain/legal.py)
KINDS = DEBTOR_KINDS


@dataclass
class DebtorInput:
    name: str
    email: str | None
    language: str
    profile: str | None
    phone: str | None
    kind: str | None
    address: str | None = None  # None: keep the current one; "": clear it
    ap_contact: str | None = None  # the same


def check_debtor(data, default_language: str, prefix: str = "") -> DebtorInput:
    """`prefix` names the fields as the input does ("debtor_" in a CSV import)."""
    if not isinstance(data, dict):
        raise Invalid("a JSON object is required")
    email = data.get("email")
    email = None if email in (None, "") else check_email(email, f"{prefix}email")
    language = data.get("language", default_language)
    if language not in ("fr", "en"):
        raise Invalid(f"{prefix}language must be fr or en", f"{prefix}language")
    profile = data.get("profile")
    if profile is not None and profile not in PROFILES:
        raise Invalid(f"profile must be one of {', '.join(PROFILES)}", "profile")
    kind = data.get("kind")
    if kind is not None and kind not in KINDS:
        raise Invalid(f"kind must be one of {', '.join(KINDS)}", "kind")
    phone = check_text(data.get("phone"), f"{prefix}phone", 40, required=False)
    if phone:  # CONTRACT §4: E.164, checked; stored so, the form Twilio takes
        try:
            phone = phones.to_e164(phone)
        except phones.InvalidPhone as e:
            raise Invalid(str(e), f"{prefix}phone") from None
    address = (check_address(data["address"], f"{prefix}address") or "") if "address" in data else None
    ap_contact = check_ap_contact(data["ap_contact"]) if "ap_contact" in data else None
    return DebtorInput(check_name(data.get("name"), f"{prefix}name"), email, language, profile, phone, kind, address,
                       ap_contact)


AP_CONTACT_MAX = 1000


def check_ap_contact(value) -> str:
    """The accounts-payable contact, free text as the collector notes it (a name, a direct line,
    opening hours); "" clears it."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return ""
    if not isinstance(value, str):
        raise Invalid("ap_contact must be text", "ap_contact")
    value = value.replace("\r\n", "\n").strip()
    if len(value) > AP_CONTACT_MAX:
        raise Invalid(f"ap_contact is longer than {AP_CONTACT_MAX} characters", "ap_contact")
    return check_storable(value, "ap_contact")


def get_debtor(creditor_id: int, ref: str) -> Debtor:
    # No stored ref looks otherwise, and PostgreSQL would refuse a query holding a NUL.
    if not isinstance(ref, str) or not REF.fullmatch(ref):
        raise NotFound("no such debtor", "ref")
    debtor = db.session.scalar(select(Debtor).where(Debtor.creditor_id == creditor_id, Debtor.ref == ref))
    if debtor is None:
        raise NotFound("no such debtor", "ref")
    return debtor


def _put_debtor(creditor: Creditor, ref: str, d: DebtorInput, actor: str) -> tuple[Debtor, bool]:
    debtor = db.session.scalar(select(Debtor).where(Debtor.creditor_id == creditor.id, Debtor.ref == ref))
    created = debtor is None
    if created:
        debtor = Debtor(creditor_id=creditor.id, ref=ref, profile="standard", kind="business")
        db.session.add(debtor)
    before = {k: getattr(debtor, k) for k in ("name", "email", "language", "profile", "phone", "kind", "address",
                                              "ap_contact")}
    debtor.name, debtor.email, debtor.language = d.name, d.email, d.language
    for key in ("profile", "phone", "kind", "address", "ap_contact"):
        if getattr(d, key) is not None:
            setattr(debtor, key, getattr(d, key) or None)
    db.session.flush()
    changed = {k: v for k, v in before.items() if getattr(debtor, k) != v}
    if created:
        events.record("debtor.created", creditor_id=creditor.id, debtor_id=debtor.id, actor=actor)
    elif changed:
        events.record("debtor.updated", creditor_id=creditor.id, debtor_id=debtor.id, actor=actor,
                      fields=sorted(changed))
        if changed.keys() & ladder.CONTACT_FIELDS:  # a refused address corrected: failed steps go again
            ladder.replan_failed(debtor, actor)
    return debtor, created


def upsert_debtor(creditor: Creditor, ref, data, actor: str = "api") -> tuple[Debtor, bool]:
    ref = check_ref(ref, "ref")
    current = db.session.scalar(select(Debtor).where(Debtor.creditor_id == creditor.id, Debtor.ref == ref))
    d = check_debtor(data, current.language if current else creditor.language)
    if current is not None and "email" not in data:  # left out: kept (the others in _put_debtor)
        d.email = current.email
    debtor, created = _put_debtor(creditor, ref, d, actor)
    commit_or_conflict()
    return debtor, created


def commit_or_conflict() -> None:
    try:
        db.session.commit()
    except IntegrityError:
        # Two writers created the same reference at once: the other one won; the client retries.
        db.session.rollback()
        raise Conflict("this resource was changed at the same moment by another request; retry") from None
