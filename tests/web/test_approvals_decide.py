"""The approval list of formal notices: how each one leaves (e-mail, letter, registered letter),
a preview of the letter built by approve() itself and recorded nowhere, several approved or
skipped in one POST, a letter refused without a postal address, the count in the menu and on
the dashboard. Through the test client with a signed-in creditor user, on both engines."""
from __future__ import annotations

import re
import subprocess
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from dunning_jobs import day as dunning_day
from portal.domain.calendar import today_for
from portal.extensions import db
from portal.models import (Creditor, Debtor, DunningPlan, DunningStep, Event, OutboxMessage, PortalLink,
                           Reminder)
from portal.services import plans
from support import assert_clean, back_office_login, csrf_token_in, flashes, look, response_text

ADDRESS = "Beta SAS\n12 rue des Lilas\n75011 Paris"


@pytest.fixture
def waiting(api, app, creditor):
    """Three debtors, each with a notice awaiting approval: A has an e-mail and no postal
    address, B a postal address and no e-mail, C neither. Every after-due step needs approval
    here, so whatever step the ladder picks for an invoice 40 days late waits in the list."""
    row = db.session.get(Creditor, creditor.id)
    today = today_for(row)
    plans.ensure_default_plans(creditor.id)
    plan_ids = select(DunningPlan.id).where(DunningPlan.creditor_id == creditor.id)
    db.session.execute(update(DunningStep).where(DunningStep.plan_id.in_(plan_ids), DunningStep.offset_days > 0)
                       .values(requires_approval=True))
    db.session.commit()
    for ref, name, email in [("A", "Alpha SARL", "alpha@example.com"), ("B", "Beta SAS", None),
                             ("C", "Gamma SA", None)]:
        body = {"name": name, "language": "fr", **({"email": email} if email else {})}
        assert api.put(f"/debtors/{ref}", json=body).status_code in (200, 201)
        r = api.put(f"/invoices/F-{ref}", json={
            "debtor_ref": ref, "issue_date": (today - timedelta(days=70)).isoformat(),
            "due_date": (today - timedelta(days=40)).isoformat(), "amount": "1200.00", "currency": "EUR"})
        assert r.status_code == 201, r.json
    db.session.execute(update(Debtor).where(Debtor.creditor_id == creditor.id, Debtor.ref == "B")
                       .values(address=ADDRESS))
    db.session.commit()
    result = dunning_day.run(today, creditor_ids=[creditor.id])
    assert result.awaiting_approval == 3
    ids = dict(db.session.execute(select(Debtor.ref, Debtor.id).where(Debtor.creditor_id == creditor.id)).all())
    db.session.rollback()
    return ids


@pytest.fixture
def bo(client, creditor):
    return back_office_login(client, creditor)


def statuses(creditor_id):
    return look(lambda: dict(db.session.execute(
        select(Debtor.ref, Reminder.status).join(Debtor, Debtor.id == Reminder.debtor_id)
        .where(Reminder.creditor_id == creditor_id)).all()))


def counts():
    return look(lambda: tuple(db.session.scalar(select(func.count()).select_from(m))
                              for m in (Reminder, OutboxMessage, PortalLink, Event)))


def test_the_list_offers_each_delivery_and_says_when_the_address_is_missing(bo, waiting):
    r = bo.get("/app/approvals")
    assert r.status_code == 200
    assert_clean(r, "/app/approvals")
    page = response_text(r)
    a, b, c = waiting["A"], waiting["B"], waiting["C"]
    # E-mail offered (and chosen) only where there is an address to send it to.
    assert re.search(rf'name="delivery-{a}" value="email"\s+data-preview-for="{a}" checked>', page)
    assert re.search(rf'name="delivery-{b}" value="email"\s+data-preview-for="{b}" disabled>', page)
    assert re.search(rf'name="delivery-{b}" value="registered"\s+data-preview-for="{b}" checked>', page)
    assert "Lettre recommandée avec accusé de réception" in page and "Lettre simple" in page
    # No postal address: said so, with a link to the debtor's address form.
    assert f'id="address-{a}"' in page and f'id="address-{c}"' in page and f'id="address-{b}"' not in page
    assert "Pas d'adresse postale ni d'e-mail" in page
    assert 'href="/app/debtors/C#address">Ajouter l\'adresse postale</a>' in page
    # One form for the lot, a preview per notice opening in a new tab.
    assert 'action="/app/approvals/decide"' in page and page.count('name="debtor"') == 3
    assert re.search(rf'target="_blank" rel="noopener"\s+href="/app/approvals/{b}/preview\?delivery=registered"', page)
    # The count waiting, in the menu of every page and on the dashboard.
    for path in ("/app/approvals", "/app/", "/app/dashboard"):
        r = bo.get(path)
        assert r.status_code == 200, (path, r.get_data(as_text=True)[-2000:])
        nav = re.search(r"<nav.*?</nav>", response_text(r), re.S).group(0)
        assert re.search(r'href="/app/approvals">Validations <span class="badge warn" title="3 mises en demeure '
                         r'attendent votre validation">3</span>', nav), path
    assert "3 mises en demeure attendent votre validation" in response_text(bo.get("/app/dashboard"))


def test_preview_is_the_letter_approve_would_send_and_records_nothing(bo, creditor, waiting, tmp_path):
    before = counts()
    r = bo.get(f"/app/approvals/{waiting['B']}/preview?delivery=registered")
    assert r.status_code == 200 and r.mimetype == "application/pdf" and r.data.startswith(b"%PDF")
    assert r.headers["Content-Disposition"].startswith("inline;")
    pdf = tmp_path / "preview.pdf"
    pdf.write_bytes(r.data)
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    assert "Beta SAS" in text and "F-B" in text
    # A letter without a postal address can be previewed (to see what is missing), not sent.
    assert bo.get(f"/app/approvals/{waiting['C']}/preview?delivery=letter").status_code == 200
    assert counts() == before  # no reminder decided, no message, no portal link, no event
    assert set(statuses(creditor.id).values()) == {"awaiting_approval"}
    # Approved the same way, the letter sent is the one previewed (same text, save the fresh link).
    assert bo.post(f"/app/approvals/{waiting['B']}/approve", data={f"delivery-{waiting['B']}": "registered"}
                   ).status_code == 302
    sent = look(lambda: db.session.scalar(select(OutboxMessage).where(OutboxMessage.debtor_id == waiting["B"])))
    assert sent.delivery == "registered" and sent.channel == "letter" and sent.status == "letter"
    printed = bo.get(f"/app/outbox/{sent.id}/attachment")  # the print queue's download
    assert printed.status_code == 200 and printed.mimetype == "application/pdf"
    pdf.write_bytes(printed.data)
    approved_text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout

    def strip_links(t):  # the portal link is fresh in each (a long URL may be broken over lines)
        return " ".join(re.sub(r"https?://\S+|\S{25,}", "", t).split())
    assert strip_links(approved_text) == strip_links(text)


def test_several_approved_at_once_each_its_own_way_and_a_letter_without_address_refused(bo, creditor, waiting):
    a, b, c = waiting["A"], waiting["B"], waiting["C"]
    r = bo.post("/app/approvals/decide", data={"debtor": [str(a), str(b), str(c)], "action": "approve",
                                               f"delivery-{a}": "email", f"delivery-{b}": "registered",
                                               f"delivery-{c}": "letter"}, follow_redirects=True)
    page = response_text(r)
    assert flashes(page) == [
        "Mises en demeure validées\u00a0: 1 par e-mail et 1 lettre à imprimer.",
        "Gamma SA n'a pas d'adresse postale\u00a0: ajoutez-la sur la fiche du client avant d'envoyer une lettre."]
    rows = look(lambda: {m.debtor_id: (m.channel, m.delivery, m.status, m.to_addr) for m in db.session.scalars(
        select(OutboxMessage).where(OutboxMessage.creditor_id == creditor.id))})
    assert rows == {a: ("email", "email", "pending", "alpha@example.com"), b: ("letter", "registered", "letter", None)}
    assert statuses(creditor.id) == {"A": "planned", "B": "sent", "C": "awaiting_approval"}
    approved = look(lambda: [e.data["delivery"] for e in db.session.scalars(
        select(Event).where(Event.type == "reminder.approved").order_by(Event.id))])
    assert approved == ["email", "registered"]
    # C is still in the list, its count in the menu down to one.
    assert re.search(r'href="/app/approvals">Validations <span class="badge warn"[^>]*>1</span>', page)


def test_an_email_without_address_is_refused_too(bo, creditor, waiting):
    r = bo.post(f"/app/approvals/{waiting['B']}/approve", data={f"delivery-{waiting['B']}": "email"},
                follow_redirects=True)
    assert flashes(response_text(r)) == ["Beta SAS n'a pas d'adresse e-mail\u00a0: choisissez une lettre."]
    assert statuses(creditor.id)["B"] == "awaiting_approval"


def test_several_skipped_at_once(bo, creditor, waiting):
    r = bo.post("/app/approvals/decide", data={"debtor": [str(waiting["A"]), str(waiting["C"])], "action": "skip"},
                follow_redirects=True)
    assert flashes(response_text(r)) == ["2 mises en demeure écartées\u00a0: elles ne seront pas envoyées."]
    assert statuses(creditor.id) == {"A": "skipped", "B": "awaiting_approval", "C": "skipped"}
    nothing = bo.post("/app/approvals/decide", data={"action": "skip"}, follow_redirects=True)
    assert flashes(response_text(nothing)) == ["Cochez au moins une mise en demeure, puis validez ou écartez."]


def test_another_creditors_notices_cannot_be_decided_or_previewed(make_app, new_creditor, creditor, waiting):
    other = back_office_login(make_app().test_client(), new_creditor("Other"))
    r = other.post("/app/approvals/decide", data={"debtor": [str(i) for i in waiting.values()], "action": "approve"},
                   follow_redirects=True)
    assert "Alpha SARL" not in response_text(r)
    assert other.get(f"/app/approvals/{waiting['B']}/preview").status_code == 302
    assert set(statuses(creditor.id).values()) == {"awaiting_approval"}


def test_deciding_needs_the_csrf_token(make_app, creditor, waiting):
    c = make_app(WTF_CSRF_ENABLED=True).test_client()
    token = csrf_token_in(c.get("/app/login").data)
    c.post("/app/login", data={"email": creditor.email, "password": creditor.password, "csrf_token": token})
    data = {"debtor": [str(waiting["A"])], "action": "approve", f"delivery-{waiting['A']}": "email"}
    assert c.post("/app/approvals/decide", data=data).status_code == 400
    assert statuses(creditor.id)["A"] == "awaiting_approval"
    page = c.get("/app/approvals").data
    assert c.post("/app/approvals/decide", data={**data, "csrf_token": csrf_token_in(page)}).status_code == 302
    assert statuses(creditor.id)["A"] == "planned"
