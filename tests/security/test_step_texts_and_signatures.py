"""Issue 15, items 4 and 8.

A creditor's step text is rendered for every message of a dunning day: it may use the
placeholders, `if`/`elif`/`else` and a few filters, nothing that loops, calls or grows a value
(plans.StepTextEnvironment), and renders 20 000 characters at most. A text that would only be
slow for real debtors (guarded by `debtor_name != "Exemple SARL"`, the sample the save-time check
renders with) is refused when saved; one stored before the check existed fails fast when a message
would render it, as any failing text does: that creditor's composing is recorded failed (naming the
step) and the other creditors' messages go out.

A Stripe signature is accepted within ±300 s of now: the SDK refuses an old one, we refuse one
dated ahead. (GoCardless signs the body alone, with no timestamp: nothing to check there.)
"""
from __future__ import annotations

import json
import time
from datetime import date

import pytest
from sqlalchemy import func, select, update

from dunning_jobs import day as dunning_day
from portal.extensions import db
from portal.models import DunningPlan, DunningStep, Event, OutboxMessage, Reminder, WebhookEvent
from portal.services import Invalid, plans
from support import Api, back_office_login, look, response_text

DAY = date(2026, 10, 2)
GUARD = '{% if debtor_name != "Exemple SARL" %}'
# Each renders the sample debtor's text at once; the unguarded ones would be slow (or huge) for anyone.
SLOW_TEXTS = {
    "guarded loop": GUARD + "{% for i in range(100000) %}{{ debtor_name }}{% endfor %}{% endif %}",
    "nested loops": "{% for i in range(1000) %}{% for j in range(1000) %}x{% endfor %}{% endfor %}",
    "string times a power": '{{ "x" * 10**7 }}',
    "string times a number": '{{ "x" * 9999999 }}',
    "guarded string product": GUARD + '{{ debtor_name * 99999 }}{% endif %}',
    "padding by %": '{{ "%09999999d" % 1 }}',
    "growing namespace": '{% set ns = namespace(s="xx") %}{% for i in range(20) %}{% set ns.s = ns.s ~ ns.s %}'
                         '{% endfor %}{{ ns.s }}',
    "recursive macro": '{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% else %}x{% endif %}{% endmacro %}'
                       '{{ f(20) }}',
    "lorem ipsum": "{{ lipsum(1000, false, 1000, 1000) }}",
    "padding filter": "{{ debtor_name|center(9999999) }}",
    "method call": '{{ debtor_name.ljust(9999999) }}',
}


def step_of(creditor_id, profile, code) -> DunningStep:
    return db.session.scalar(select(DunningStep).join(DunningPlan).where(
        DunningPlan.creditor_id == creditor_id, DunningPlan.profile == profile, DunningStep.code == code))


def form_of(step: DunningStep, **changes) -> dict:
    values = {c: getattr(step, c) for c in ("offset_days", "channel", "subject_fr", "body_fr", "subject_en",
                                            "body_en")}
    return {k: str(v) for k, v in {**values, **changes}.items()}


def test_texts_that_loop_call_or_grow_are_refused_when_saved_and_previewed(client, app, creditor):
    bo = back_office_login(client, creditor)
    page = response_text(bo.get("/app/plans"))  # the page says what a text may use
    assert "les boucles, les appels et les affectations sont refusés" in page and "{{ earlier }}" in page
    step = look(lambda: step_of(creditor.id, "standard", "reminder_2"))
    before = look(lambda: form_of(step_of(creditor.id, "standard", "reminder_2")))
    for name, text in SLOW_TEXTS.items():
        for field in ("body_fr", "subject_en"):
            r = bo.post(f"/app/plans/steps/{step.id}", data=form_of(step, **{field: text}))
            assert r.status_code == 422, (name, field, r.status_code)
            assert "Ce texte ne peut pas être utilisé" in response_text(r), name
        r = bo.post(f"/app/plans/steps/{step.id}/preview", data=form_of(step, body_fr=text),
                    headers={"HX-Request": "true"})
        assert r.status_code == 200 and "Ce texte ne peut pas être utilisé" in response_text(r), name
    assert look(lambda: form_of(step_of(creditor.id, "standard", "reminder_2"))) == before

    # What a text may do still works: placeholders, conditions, the few filters, small arithmetic.
    fine = ("Bonjour {{ debtor_name|upper }},\n\n{% if count > 1 %}Vos {{ count }} factures{% else %}Votre "
            "facture{% endif %} ({{ total }}){% if earlier %}, après {{ earlier }}{% endif %}. "
            "{{ deadline|default('sans délai') }} — {{ count * 2 - count }}/{{ count % 2 }}")
    r = bo.post(f"/app/plans/steps/{step.id}", data=form_of(step, body_fr=fine))
    assert r.status_code == 302
    assert plans.render_text(fine, **{**plans.SAMPLE_VALUES, "debtor_name": "Alpha SARL"}).startswith(
        "Bonjour ALPHA SARL,\n\nVos 2 factures (1 000,00 €), après nos relances")


def test_the_limits_hold_whoever_the_debtor_is(app):
    real = {**plans.SAMPLE_VALUES, "debtor_name": "Client réel SAS " * 12}
    for name, text in SLOW_TEXTS.items():
        with pytest.raises(Invalid):
            plans.check_template(text, "body_fr")
        with pytest.raises(Exception) as refused:  # at once, before a single iteration or product
            plans.render_text(text, **real)
        assert "not allowed" in str(refused.value) or "numbers only" in str(refused.value), name
    # A text within the rules renders at most MAX_OUTPUT characters, whatever a debtor's name makes of it.
    repeated = GUARD + "{{ debtor_name }}" * 250 + "{% endif %}"
    assert plans.check_template(repeated, "body_fr")  # the sample debtor: nothing rendered
    with pytest.raises(Exception, match="longer than 20000 characters"):
        plans.render_text(repeated, **real)
    assert len(plans.render_text("{{ debtor_name }}" * 100, **real)) == 100 * len(real["debtor_name"])


# --- at sending time ---------------------------------------------------------------------------

@pytest.fixture
def app_config(smtp_server):
    return {"SMTP_URL": smtp_server.url}


@pytest.fixture
def two_creditors(client, new_creditor):
    """"Lent" stores texts the editor now refuses (or that only grow for real debtors); "Sain" is
    healthy. Each has one debtor with one invoice due the day before DAY."""
    slow, healthy = new_creditor("Lent SARL"), new_creditor("Sain SAS")
    for who, ref, name in [(slow, "K1", "Client réel SAS " * 12), (healthy, "S1", "Client S1")]:
        api = Api(client, who)
        assert api.put(f"/debtors/{ref}", json={"name": name.strip(), "email": f"{ref.lower()}@example.com",
                                                "language": "fr"}).status_code == 201
        assert api.put(f"/invoices/{ref}-1", json={"debtor_ref": ref, "issue_date": "2026-09-01",
                                                   "due_date": "2026-10-01", "amount": "100.00",
                                                   "currency": "EUR"}).status_code == 201
    plans.ensure_default_plans(slow.id)
    return slow, healthy


def store_body(creditor_id, body):
    """Written as a text saved before the limits were: past the editor's check."""
    plan_ids = select(DunningPlan.id).where(DunningPlan.creditor_id == creditor_id)
    db.session.execute(update(DunningStep).where(DunningStep.plan_id.in_(plan_ids)).values(body_fr=body))
    db.session.commit()


@pytest.mark.parametrize("text, reason", [
    (SLOW_TEXTS["guarded loop"], "loops"),
    (SLOW_TEXTS["nested loops"], "loops"),
    (SLOW_TEXTS["guarded string product"], "the * operator takes numbers only"),
    # within the rules, and only long for a real debtor: the output bound stops it
    (GUARD + "{{ debtor_name }}" * 250 + "{% endif %}", "longer than 20000 characters"),
])
def test_a_stored_slow_text_fails_its_creditor_fast_and_stops_no_other(app, make_app, two_creditors, smtp_server,
                                                                        text, reason):
    slow, healthy = two_creditors
    store_body(slow.id, text)
    result = dunning_day.run(DAY)
    assert (result.planned, result.sent, result.failed) == (2, 1, 1)
    assert [m.rcpt_tos for m in smtp_server.handler.take()] == [["s1@example.com"]]
    db.session.rollback()
    [failure] = [e.data for e in db.session.scalars(select(Event).where(Event.creditor_id == slow.id,
                                                                        Event.type == "dunning.failed"))]
    assert failure["stage"] == "composing" and failure["error_type"] == "StepTextError", failure
    assert failure["error"].startswith("step reminder_1, body_fr: ") and reason in failure["error"], failure
    # nothing of the slow text was written anywhere: no message, its reminder waits for a corrected text
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage)
                             .where(OutboxMessage.creditor_id == slow.id)) == 0
    assert db.session.scalars(select(Reminder.status).where(Reminder.creditor_id == slow.id)).all() == ["planned"]
    page = response_text(back_office_login(make_app().test_client(), slow).get("/app/dashboard"))
    assert "StepTextError: step reminder_1, body_fr" in page

    store_body(slow.id, "Bonjour {{ debtor_name }}")  # corrected: the next run sends what waited
    again = dunning_day.run(DAY)
    assert (again.sent, again.failed) == (1, 0)
    assert [m.rcpt_tos for m in smtp_server.handler.take()] == [["k1@example.com"]]


# --- Stripe signatures: ±300 s ------------------------------------------------------------------

@pytest.mark.parametrize("offset, status", [(3600, 400), (301 + 5, 400), (-3600, 400), (-301, 400),
                                            (0, 200), (250, 200), (-250, 200)])
def test_a_stripe_signature_dated_outside_five_minutes_is_refused(seeded, make_app, providers_config,
                                                                  fake_stripe, offset, status):
    client = make_app(**providers_config).test_client()
    body = json.dumps({"id": f"evt_at_{offset}", "type": "checkout.session.completed",
                       "data": {"object": {"id": "cs_test_not_ours"}}}).encode()
    header = fake_stripe.sign(body, timestamp=int(time.time()) + offset)
    r = client.post("/webhooks/stripe", data=body, headers={"Stripe-Signature": header})
    assert r.status_code == status, (offset, r.status_code, r.data)
    with client.application.app_context():
        stored = db.session.scalar(select(func.count()).select_from(WebhookEvent))
    if status == 400:
        assert r.json["error"]["code"] == "bad_signature" and stored == 0
    else:
        assert r.json["ignored"] == 1 and stored == 1
