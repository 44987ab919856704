"""Demo data: one creditor, ~20 debtors, ~100 invoices from 90 days overdue to 30 days ahead."""
from __future__ import annotations

import random
from datetime import timedelta

from sqlalchemy import select

from ..domain.calendar import today_for
from ..domain.money import to_decimal_string
from ..extensions import db
from ..models import Creditor, CreditorUser
from . import ledger, tenants

EMAIL = "demo@relance.test"
PASSWORD = "relance-demo"
COMPANIES = ["Boulangerie Martin", "Garage Dupuis", "Cabinet Leroy", "Hôtel des Voyageurs", "Pharmacie Centrale",
             "Transports Girard", "Menuiserie Roux", "Studio Lumière", "Ferme du Vallon", "Librairie Papyrus",
             "Clinique Vétérinaire Saint-Roch", "Imprimerie Moderne", "Café de la Gare", "Atelier Vélo Sud",
             "Brasserie Lambert", "Green Office Ltd", "Nordic Supplies AB", "Fromagerie Bernard",
             "Mairie de Saint-Aubin", "Société Bâtir Ouest"]


def existing() -> Creditor | None:
    user = db.session.scalar(select(CreditorUser).where(CreditorUser.email == EMAIL))
    return db.session.get(Creditor, user.creditor_id) if user else None


def seed() -> tuple[Creditor, bool]:
    """Create the demo creditor once; return it and whether it was created now."""
    creditor = existing()
    if creditor is not None:
        return creditor, False
    creditor, _key = tenants.create_creditor(
        name="Atelier Démo", email=EMAIL, password=PASSWORD, currency="EUR", timezone="Europe/Paris",
        language="fr", legal_name="Atelier Démo SARL", registration_number="123456789",
        vat_number="FR32123456789", address="12 rue des Lilas, 69003 Lyon", phone="+33 4 72 00 00 00",
        iban="FR7630006000011234567890189", bic="AGRIFRPP")
    rng = random.Random(20261123)
    today = today_for(creditor)
    n = 0
    for i, company in enumerate(COMPANIES, 1):
        english = company.endswith(("Ltd", "AB"))
        ledger.upsert_debtor(creditor, f"C{i:04d}", {
            "name": company, "email": f"compta{i}@example.com", "language": "en" if english else "fr",
            "profile": "public_sector" if company.startswith("Mairie") else "standard",
            "kind": "business"}, actor="demo")
        for _ in range(rng.randint(3, 7)):
            n += 1
            due = today + timedelta(days=rng.randint(-90, 30))
            issue = due - timedelta(days=30)
            amount = f"{rng.randint(80, 4800)}.{rng.randint(0, 99):02d}"
            inv, _ = ledger.upsert_invoice(creditor, f"FA-2026-{n:04d}", {
                "debtor_ref": f"C{i:04d}", "issue_date": issue.isoformat(), "due_date": due.isoformat(),
                "amount": amount, "currency": "EUR"}, actor="demo")
            roll = rng.random()
            if roll < 0.2 and issue < today:  # some paid in full, some in part
                ledger.record_offline_payment(creditor, inv.number, {
                    "amount": amount, "date": max(issue, today - timedelta(days=5)).isoformat(),
                    "reference": f"VIR-{inv.number}"}, actor="demo")
            elif roll < 0.3 and issue < today:
                ledger.record_offline_payment(creditor, inv.number, {
                    "amount": to_decimal_string(inv.amount // 3, "EUR"),
                    "date": issue.isoformat(), "reference": f"VIR-{inv.number}-1"}, actor="demo")
    return creditor, True
