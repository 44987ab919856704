"""The plan editor's SMS preview: both languages, characters and segments counted as Twilio bills
them (GSM-7 160/153 a segment, UCS-2 70/67 as soon as one character is outside GSM-7), the
creditor's name shortened beyond two segments, and "by e-mail" while SMS is not set up."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from portal.domain import sms
from portal.models import DunningPlan, DunningStep
from support import back_office_login, look, response_text

HTMX = {"HX-Request": "true"}
TWILIO = {"TWILIO_ACCOUNT_SID": "AC" + "0" * 32, "TWILIO_AUTH_TOKEN": "t" * 32, "TWILIO_FROM": "+33757000001"}


@pytest.fixture
def app_config():
    return TWILIO


def _step(creditor_id, code="reminder_1"):
    from portal.extensions import db
    return db.session.scalar(select(DunningStep).join(DunningPlan).where(
        DunningPlan.creditor_id == creditor_id, DunningPlan.profile == "standard", DunningStep.code == code))


def _form(step, **changes):
    values = {c: getattr(step, c) for c in ("offset_days", "channel", "subject_fr", "body_fr", "subject_en", "body_en")}
    return {k: str(v) for k, v in {**values, **changes}.items()}


def _preview(client, who, channel="sms", code="reminder_1"):
    bo = back_office_login(client, who)
    bo.get("/app/plans")  # the default plans are made on first sight
    step = look(lambda: _step(who.id, code))
    r = bo.post(f"/app/plans/steps/{step.id}/preview", data=_form(step, channel=channel), headers=HTMX)
    assert r.status_code == 200
    return response_text(r)


def _sms_texts(fragment):
    return re.findall(r'<figure class="sample sms-sample" lang="(\w+)">.*?<pre>(.*?)</pre>\s*'
                      r'<p class="sms-count">(.*?)</p>', fragment, re.S)


def _counted(line):
    return " ".join(line.split())


def test_a_gsm7_sms_in_both_languages(client, new_creditor):
    who = new_creditor("Atelier Leclerc", language="en")  # "é" of the French wording is in GSM-7 too
    fragment = _preview(client, who)
    shown = _sms_texts(fragment)
    assert [lang for lang, _t, _c in shown] == ["fr", "en"]
    for lang, text, counted in shown:
        c = sms.count(text)
        assert c.encoding == "GSM-7" and text.startswith("Atelier Leclerc")
        assert _counted(counted) == f"{c.characters} characters · {c.segments} segment{'s' if c.segments > 1 else ''} · " \
                                    f"GSM-7 ({c.per_segment} per segment)"
        assert "/l/" in text and "F-" in text
    assert "1 200,00 €" in shown[0][1] and "€1,200.00" in shown[1][1]
    assert "Répondez STOP" in shown[0][1] and "Reply STOP" in shown[1][1]
    assert "SMS is not set up" not in fragment
    # The e-mail texts stay, for a debtor the SMS cannot reach.
    assert "By e-mail, when the SMS cannot reach the debtor" in fragment


def test_one_character_outside_gsm7_makes_it_ucs2_at_67_a_segment(client, new_creditor):
    who = new_creditor("Crêperie Ça Roule", language="en")  # ê and ç are not in GSM-7 ("é" is)
    fragment = " ".join(_preview(client, who).split())
    # As written, the name makes the whole SMS UCS-2: 67 a segment, 3 of them. The SMS goes
    # with the name as phones write it without ê, back in GSM-7 and within two.
    warnings = re.findall(r"With your name as written it would take (\d) segments \((UCS-2), (67) characters each\)",
                          fragment)
    assert warnings == [("3", "UCS-2", "67"), ("3", "UCS-2", "67")]
    for _lang, text, counted in _sms_texts(fragment):
        assert text.startswith("Creperie Ça Roule")  # capital Ç is in GSM-7; ê is not and sms.count(text).encoding == "GSM-7"
    assert sms.count("Crêperie Ça Roule").encoding == "UCS-2"
    single = sms.count("ê" * 70)
    assert (single.segments, single.per_segment) == (1, 70) and sms.count("ê" * 71).segments == 2
    assert sms.count("é" * 160).encoding == "GSM-7"


def test_a_long_name_is_shortened_with_a_warning(client, new_creditor):
    who = new_creditor("Société Générale de Maçonnerie et de Rénovation des Façades du Grand Est", language="en")
    fragment = _preview(client, who, code="firm")
    shown = _sms_texts(fragment)
    for _lang, text, _counted in shown:
        assert sms.count(text).segments <= 2 and "Générale de Maçonnerie et de Rénovation des Façades du Grand Est" not in text
    warnings = re.findall(r"With your name as written it would take (\d) segments", fragment)
    assert warnings and all(int(n) > 2 for n in warnings)


def test_an_email_step_has_no_sms_preview(client, new_creditor):
    fragment = _preview(client, new_creditor("Email Only Ltd", language="en"), channel="email")
    assert "sms-sample" not in fragment and "Preview with a sample debtor and two invoices" in fragment


def test_without_twilio_sms_steps_go_by_email(make_app, new_creditor):
    client = make_app().test_client()
    fragment = _preview(client, new_creditor("No Sms Ltd", language="en"))
    assert "SMS is not set up on this Relance (Twilio): until it is, SMS steps go by e-mail." in fragment
    assert _sms_texts(fragment)  # still previewed: what it will be once set up


def test_in_french(client, creditor):
    bo = back_office_login(client, creditor)
    bo.get("/app/plans")
    step = look(lambda: _step(creditor.id))
    r = bo.post(f"/app/plans/steps/{step.id}/preview", data=_form(step, channel="sms"), headers=HTMX)
    fragment = response_text(r)
    assert "Le SMS, avec une facture d'exemple" in fragment
    assert re.search(r"\d+ caractères · [12] segments? · GSM-7 \(1[56][03] par segment\)", " ".join(fragment.split()))
