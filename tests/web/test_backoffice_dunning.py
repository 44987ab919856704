"""Back office for dunning: plans and their live preview, the approval list of formal notices,
the outbox. Requests go through the test client (its own app); the test reads the database
through the `app` fixture's context, ending its transaction after each look."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from dunning_jobs import day as dunning_day
from portal.domain.calendar import today_for
from portal.extensions import db
from portal.models import Creditor, DunningPlan, DunningStep, OutboxMessage, Reminder
from portal.services import ledger, plans, reminders
from support import assert_clean, back_office_login, look, response_text

PAGES = ["/app/plans", "/app/approvals", "/app/outbox", "/app/outbox/1", "/app/outbox/1/html",
         "/app/outbox/1/attachment"]
ACTIONS = ["/app/plans/steps/1", "/app/plans/steps/1/preview", "/app/approvals/1/approve",
           "/app/approvals/1/skip", "/app/approvals/1/postpone"]
HTMX = {"HX-Request": "true"}



def step_of(creditor_id, profile, code) -> DunningStep:
    return db.session.scalar(select(DunningStep).join(DunningPlan).where(
        DunningPlan.creditor_id == creditor_id, DunningPlan.profile == profile, DunningStep.code == code))


def step_values(step: DunningStep) -> dict:
    return {c: getattr(step, c) for c in ("offset_days", "channel", "requires_approval", "adds_charges",
                                          "subject_fr", "body_fr", "subject_en", "body_en")}


def form_of(step: DunningStep, **changes) -> dict:
    """What the browser sends for a step's form: unticked boxes are left out."""
    values = {**step_values(step), **changes}
    data = {k: str(v) for k, v in values.items() if k not in ("requires_approval", "adds_charges")}
    for box in ("requires_approval", "adds_charges"):
        if values[box]:
            data[box] = "1"
    return data


@pytest.fixture
def bo(client, creditor):
    """The creditor's browser, signed in to the back office."""
    return back_office_login(client, creditor)


# --- access ----------------------------------------------------------------------------------

def test_every_page_and_action_needs_login(client):
    for path in PAGES:
        r = client.get(path)
        assert r.status_code == 302 and "/app/login" in r.headers["Location"], path
    for path in ACTIONS:
        r = client.post(path, data={"until": "2030-01-01"})
        assert r.status_code == 302 and "/app/login" in r.headers["Location"], path


def test_nav_links_to_the_new_pages(bo):
    page = response_text(bo.get("/app/"))
    for path in ("/app/plans", "/app/approvals", "/app/outbox"):
        assert f'href="{path}"' in page, path


# --- plans -----------------------------------------------------------------------------------

def test_plans_page_creates_and_lists_the_default_plans(bo, app, creditor):
    r = bo.get("/app/plans")
    assert r.status_code == 200
    assert_clean(r, "/app/plans")
    page = response_text(r)
    steps = look(lambda: [(s.id, s.code, s.subject_fr) for p in plans.plans_for(creditor.id) for s in p.steps])
    assert len(steps) == 4 * 5  # a plan per profile, five steps each
    for step_id, _code, _subject in steps:
        assert f'action="/app/plans/steps/{step_id}"' in page
        assert f'hx-post="/app/plans/steps/{step_id}/preview"' in page
        assert f'formaction="/app/plans/steps/{step_id}/preview"' in page  # the no-JS preview
    for label in ("Relance de courtoisie", "Premier rappel", "Deuxième rappel", "Relance ferme", "Mise en demeure",
                  "Grands comptes", "Secteur public", "7 jours avant l'échéance",
                  "30 jours après l'échéance"):
        assert label in page, label
    assert "Mise en demeure de payer — {{ creditor_name }}" in page  # the saved text, in its field
    assert 'hx-trigger="keyup changed delay:400ms, change"' in page


def test_editing_a_step_saves_it(bo, app, creditor):
    bo.get("/app/plans")
    step = look(lambda: step_of(creditor.id, "standard", "reminder_2"))
    data = form_of(step, offset_days="10", channel="letter", requires_approval=True,
                   subject_fr="Deuxième rappel — {{ total }}", body_fr="Bonjour,\r\n\r\nMerci de régler.")
    r = bo.post(f"/app/plans/steps/{step.id}", data=data)
    assert r.status_code == 302 and r.headers["Location"].endswith(f"/app/plans#step-{step.id}")
    saved = look(lambda: step_values(step_of(creditor.id, "standard", "reminder_2")))
    assert saved["offset_days"] == 10 and saved["channel"] == "letter" and saved["requires_approval"] is True
    assert saved["adds_charges"] is False
    assert saved["subject_fr"] == "Deuxième rappel — {{ total }}"
    assert saved["body_fr"] == "Bonjour,\n\nMerci de régler."  # paragraphs survive the browser's CRLF
    assert "Étape enregistrée." in response_text(bo.get("/app/plans"))

    # Unticking a box turns it off (an unticked box is absent from the form).
    firm = look(lambda: step_of(creditor.id, "standard", "firm"))
    assert firm.adds_charges
    assert bo.post(f"/app/plans/steps/{firm.id}", data=form_of(firm, adds_charges=False)).status_code == 302
    assert look(lambda: step_of(creditor.id, "standard", "firm").adds_charges) is False


@pytest.mark.parametrize("changes, field, message", [
    ({"offset_days": "20"}, "offset_days", "Les étapes doivent rester dans l'ordre"),  # after "firm" (15)
    ({"offset_days": "1"}, "offset_days", "Les étapes doivent rester dans l'ordre"),   # same as reminder_1
    ({"offset_days": "abc"}, "offset_days", "Saisissez un nombre entier de jours."),
    ({"offset_days": ""}, "offset_days", "Saisissez un nombre entier de jours."),
    ({"offset_days": "400"}, "offset_days", "entre -90 et 365"),
    ({"subject_en": ""}, "subject_en", "Un objet est obligatoire"),
    ({"body_fr": "Bonjour {{ total"}, "body_fr", "Ce texte ne peut pas être utilisé"),
    ({"body_en": "{{ 1 / 0 }}"}, "body_en", "Ce texte ne peut pas être utilisé"),  # fails only when rendered
])
def test_a_bad_step_shows_the_error_by_its_field_and_changes_nothing(bo, app, creditor, changes, field, message):
    bo.get("/app/plans")
    step = look(lambda: step_of(creditor.id, "standard", "reminder_2"))
    before = step_values(step)
    # Other fields changed too: none of them may be saved when one is refused.
    data = form_of(step, subject_fr="Changé", channel="letter", **changes)
    r = bo.post(f"/app/plans/steps/{step.id}", data=data)
    assert r.status_code == 422
    assert_clean(r, "step error")
    page = response_text(r)
    error = re.search(rf'<p class="field-error" id="s{step.id}-{field}-error">([^<]*)</p>', page)
    assert error and message in error.group(1), page[:200]
    assert re.search(rf'id="s{step.id}-{field}"[^>]*aria-invalid="true"', page)
    assert re.search(rf'<details id="step-{step.id}" class="step card" open>', page)
    assert 'value="Changé"' in page  # what was typed is kept, to be corrected
    assert look(lambda: step_values(step_of(creditor.id, "standard", "reminder_2"))) == before


def test_another_creditors_step_is_not_found(bo, app, new_creditor):
    other = new_creditor("Other")
    plans.ensure_default_plans(other.id)
    step = look(lambda: step_of(other.id, "standard", "firm"))
    before = step_values(step)
    assert bo.post(f"/app/plans/steps/{step.id}", data=form_of(step, offset_days="16")).status_code == 404
    assert bo.post(f"/app/plans/steps/{step.id}/preview", data=form_of(step), headers=HTMX).status_code == 404
    assert look(lambda: step_values(step_of(other.id, "standard", "firm"))) == before


def test_preview_is_a_fragment_for_htmx_and_the_page_without(bo, app, creditor):
    bo.get("/app/plans")
    step = look(lambda: step_of(creditor.id, "standard", "formal_notice"))
    before = step_values(step)
    data = form_of(step, subject_fr="Dernier avis à {{ debtor_name }} — {{ creditor_name }}",
                   body_fr="Madame, Monsieur,\r\n\r\nRéglez {{ total }} avant le {{ deadline }}.",
                   subject_en="Final notice to {{ debtor_name }}")

    r = bo.post(f"/app/plans/steps/{step.id}/preview", data=data, headers=HTMX)
    assert r.status_code == 200
    fragment = response_text(r)
    assert "<html" not in fragment and "<body" not in fragment and "<nav" not in fragment
    assert "Dernier avis à Exemple SARL — Atelier Test" in fragment  # rendered subject, unsaved text
    assert "Final notice to Example Ltd" in fragment
    # The sample's one amount (balances 1 550,00 € + the charges this step claims), its deadline in full.
    asked = re.search(r"Réglez (1\u202f\d{3},\d\d\u00a0€) avant le \d{1,2}(er)? [a-zéû]+ \d{4}\.", fragment)
    assert asked and f"Total dû\u00a0: {asked.group(1)}" in fragment and asked.group(1) > "1\u202f550,00"
    assert "F-" in fragment and "<pre>" in fragment  # the plain-text body with its invoice list
    assert "HX-Request" in r.headers.get("Vary", "")

    r = bo.post(f"/app/plans/steps/{step.id}/preview", data=data)  # no JavaScript: the whole page
    assert r.status_code == 200
    assert_clean(r, "preview page")
    page = response_text(r)
    assert "<html" in page and "<nav" in page
    assert re.search(rf'<div id="preview-{step.id}" class="preview" aria-live="polite">\s*<h3>', page)
    assert "Dernier avis à Exemple SARL — Atelier Test" in page
    assert 'value="Dernier avis à {{ debtor_name }} — {{ creditor_name }}"' in page  # still in the form
    assert look(lambda: step_values(step_of(creditor.id, "standard", "formal_notice"))) == before


def test_preview_shows_a_template_error_instead(bo, app, creditor):
    bo.get("/app/plans")
    step = look(lambda: step_of(creditor.id, "risky", "courtesy"))
    r = bo.post(f"/app/plans/steps/{step.id}/preview", data=form_of(step, subject_en="Hello {{ debtor_name"),
                headers=HTMX)
    assert r.status_code == 200  # htmx swaps 2xx answers only
    fragment = response_text(r)
    assert "<html" not in fragment
    assert "Objet (anglais)" in fragment and "Ce texte ne peut pas être utilisé" in fragment


# --- approvals -------------------------------------------------------------------------------

@pytest.fixture
def notice(api, app, creditor):
    """A formal notice awaiting approval: an invoice 40 days overdue whose firm reminder (the
    ladder's third rung) went out 16 days ago, then today's dunning run."""
    row = db.session.get(Creditor, creditor.id)
    today = today_for(row)
    assert api.put("/debtors/D1", json={"name": "Alpha SARL", "email": "alpha@example.com",
                                        "language": "fr"}).status_code in (200, 201)
    r = api.put("/invoices/F-40", json={"debtor_ref": "D1", "issue_date": (today - timedelta(days=70)).isoformat(),
                                        "due_date": (today - timedelta(days=40)).isoformat(),
                                        "amount": "1200.00", "currency": "EUR"})
    assert r.status_code == 201, r.json
    invoice = ledger.get_invoice(creditor.id, "F-40")
    invoice.rung_reached, invoice.rung_sent_on = 3, today - timedelta(days=16)
    db.session.commit()
    result = dunning_day.run(today, creditor_ids=[creditor.id])
    assert result.awaiting_approval == 1
    debtor_id = ledger.get_debtor(creditor.id, "D1").id
    db.session.rollback()
    return debtor_id, today


def awaiting_refs(creditor_id, day):
    return look(lambda: [d.ref for d, _rows in reminders.awaiting(creditor_id, day)])


def notices(creditor_id):
    return look(lambda: db.session.scalars(select(OutboxMessage).where(
        OutboxMessage.creditor_id == creditor_id, OutboxMessage.kind == "formal_notice")).all())


def test_approval_list_shows_the_waiting_notice(bo, notice):
    debtor_id, _today = notice
    r = bo.get("/app/approvals")
    assert r.status_code == 200
    assert_clean(r, "/app/approvals")
    page = response_text(r)
    assert "Alpha SARL" in page and "F-40" in page and "Mise en demeure" in page
    assert re.search(r'data-label="Jours de retard" class="num">40<', page)
    assert "1\u202f200,00\u00a0€" in page
    for action in ("approve", "skip", "postpone"):
        assert f'action="/app/approvals/{debtor_id}/{action}"' in page
    assert re.search(r'<input type="date" id="until-\d+" name="until" required\s+min="[\d-]+"\s+value="'
                     + (notice[1] + timedelta(days=7)).isoformat() + '"', page)


def test_approve_puts_the_formal_notice_in_the_outbox(bo, app, creditor, notice):
    debtor_id, today = notice
    r = bo.post(f"/app/approvals/{debtor_id}/approve", follow_redirects=True)
    assert r.status_code == 200
    page = response_text(r)
    assert "Mise en demeure validée\u00a0: l'e-mail à Alpha SARL est dans la boîte d'envoi." in page
    assert "Rien n'attend votre validation." in page
    [message] = notices(creditor.id)
    assert message.channel == "email" and message.status == "pending" and message.to_addr == "alpha@example.com"
    assert awaiting_refs(creditor.id, today) == []
    statuses = look(lambda: db.session.scalars(select(Reminder.status).where(Reminder.debtor_id == debtor_id)).all())
    assert statuses == ["planned"]  # carried by the message, sent with it

    # The letter (PDF) of the approved notice, to print.
    link = f'href="/app/outbox/{message.id}/attachment" download>Imprimer la lettre</a>'
    assert link in page
    pdf = bo.get(f"/app/outbox/{message.id}/attachment")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    assert pdf.headers["Content-Disposition"].startswith("attachment;")
    assert message.attachment_name in pdf.headers["Content-Disposition"]
    assert pdf.data.startswith(b"%PDF")

    # A second click finds nothing left to approve and says so.
    again = bo.post(f"/app/approvals/{debtor_id}/approve", follow_redirects=True)
    assert "Rien n'attend de validation pour ce client." in response_text(again)
    assert len(notices(creditor.id)) == 1


def test_skip_drops_the_formal_notice(bo, creditor, notice):
    debtor_id, today = notice
    r = bo.post(f"/app/approvals/{debtor_id}/skip")
    assert r.status_code == 302 and r.headers["Location"].endswith("/app/approvals")
    assert "Mise en demeure écartée" in response_text(bo.get("/app/approvals"))
    assert awaiting_refs(creditor.id, today) == []
    assert awaiting_refs(creditor.id, today + timedelta(days=365)) == []
    assert notices(creditor.id) == []
    statuses = look(lambda: db.session.scalars(select(Reminder.status).where(Reminder.debtor_id == debtor_id)).all())
    assert statuses == ["skipped"]


def test_postpone_hides_the_notice_until_the_chosen_day(bo, creditor, notice):
    debtor_id, today = notice
    until = today + timedelta(days=7)
    r = bo.post(f"/app/approvals/{debtor_id}/postpone", data={"until": until.isoformat()})
    assert r.status_code == 302
    assert "Mise en demeure reportée" in response_text(bo.get("/app/approvals"))
    assert awaiting_refs(creditor.id, today) == []
    assert awaiting_refs(creditor.id, until - timedelta(days=1)) == []
    assert awaiting_refs(creditor.id, until) == ["D1"]
    assert notices(creditor.id) == []


@pytest.mark.parametrize("until", ["", "not a date", "today", "yesterday", "in two years"])
def test_postpone_needs_a_day_after_today(bo, creditor, notice, until):
    debtor_id, today = notice
    value = {"today": today.isoformat(), "yesterday": (today - timedelta(days=1)).isoformat(),
             "in two years": (today + timedelta(days=730)).isoformat()}.get(until, until)
    r = bo.post(f"/app/approvals/{debtor_id}/postpone", data={"until": value})
    assert r.status_code == 422
    assert_clean(r, "postpone error")
    assert re.search(rf'<p class="field-error" id="until-{debtor_id}-error">Choisissez un jour', response_text(r))
    assert awaiting_refs(creditor.id, today) == ["D1"]
    assert look(lambda: db.session.scalars(select(Reminder.postponed_to)).all()) == [None]


def test_another_creditors_debtor_cannot_be_decided(app, make_app, new_creditor, notice, creditor):
    debtor_id, today = notice
    other = back_office_login(make_app().test_client(), new_creditor("Other"))
    for action in ("approve", "skip"):
        r = other.post(f"/app/approvals/{debtor_id}/{action}", follow_redirects=True)
        assert "Rien n'attend de validation pour ce client." in response_text(r)
    other.post(f"/app/approvals/{debtor_id}/postpone", data={"until": (today + timedelta(days=3)).isoformat()})
    assert awaiting_refs(creditor.id, today) == ["D1"]
    assert "Alpha SARL" not in response_text(other.get("/app/approvals"))


# --- outbox ----------------------------------------------------------------------------------

@pytest.fixture
def approved(bo, notice, creditor):
    debtor_id, _today = notice
    assert bo.post(f"/app/approvals/{debtor_id}/approve").status_code == 302
    [message] = notices(creditor.id)
    return message


def test_outbox_lists_and_filters_messages(bo, approved):
    r = bo.get("/app/outbox")
    assert r.status_code == 200
    assert_clean(r, "/app/outbox")
    page = response_text(r)
    assert f'href="/app/outbox/{approved.id}"' in page and "Mise en demeure de payer — Atelier Test" in page
    assert "alpha@example.com" in page and "en attente d'envoi" in page
    assert f'href="/app/outbox/{approved.id}"' in response_text(bo.get("/app/outbox?status=pending"))
    assert f'href="/app/outbox/{approved.id}"' not in response_text(bo.get("/app/outbox?status=sent"))
    assert f'href="/app/outbox/{approved.id}"' in response_text(bo.get("/app/outbox?status=nonsense"))  # ignored


def test_outbox_message_page_html_and_attachment(bo, approved):
    r = bo.get(f"/app/outbox/{approved.id}")
    assert r.status_code == 200
    assert_clean(r, "message page")
    page = response_text(r)
    body = re.search(r'<pre class="message">(.*?)</pre>', page, re.S).group(1)
    assert "F-40" in body
    assert f'href="/app/outbox/{approved.id}/html"' in page
    assert f'href="/app/outbox/{approved.id}/attachment" download' in page

    shown = bo.get(f"/app/outbox/{approved.id}/html")
    assert shown.status_code == 200 and shown.mimetype == "text/html"
    assert shown.headers["Content-Security-Policy"] == \
        "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:"
    assert shown.headers["X-Frame-Options"] == "DENY"
    assert shown.get_data(as_text=True) == approved.html_body and "style=" in approved.html_body


def test_another_creditors_messages_are_not_found(make_app, new_creditor, approved):
    other = back_office_login(make_app().test_client(), new_creditor("Other"))
    for path in ("", "/html", "/attachment"):
        assert other.get(f"/app/outbox/{approved.id}{path}").status_code == 404, path
    assert f"/app/outbox/{approved.id}" not in response_text(other.get("/app/outbox"))
    assert f"/app/outbox/{approved.id}" not in response_text(other.get("/app/approvals"))


def test_no_attachment_is_not_found(bo, app, creditor, seeded):
    """A reminder e-mail carries no PDF: its attachment address answers 404."""
    from datetime import date
    dunning_day.run(date(2026, 11, 20), creditor_ids=[creditor.id])
    message = look(lambda: db.session.scalars(select(OutboxMessage).where(
        OutboxMessage.creditor_id == creditor.id, OutboxMessage.attachment.is_(None))).first())
    assert message is not None
    assert bo.get(f"/app/outbox/{message.id}/attachment").status_code == 404
    page = response_text(bo.get(f"/app/outbox/{message.id}"))
    assert "/attachment" not in page
