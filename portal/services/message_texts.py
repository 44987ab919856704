"""The words of a message: the step's text (the creditor's, or today's default), and around it
only what is true: thanks for what was paid, the dates of the reminders really sent before, the
legal basis of charges as the debtor's kind has it, the one amount, and how to pay it."""
from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

from babel.numbers import format_decimal
from flask import render_template
from flask_babel import force_locale, get_translations, gettext, ngettext
from jinja2 import pass_context
from markupsafe import Markup
from jinja2 import TemplateError

from ..domain.long_dates import day_list, long_date
from ..domain.money import format_money
from ..domain.references import format_reference
from ..models import Creditor, Debtor, DunningStep, Invoice, OutboxMessage
from .demand import Demand
from .discounts import granted_on
from .mime import qr_content_id, qr_payload
from .plans import StepTextError, render_text, step_text

#: a step text that places the earlier reminders itself ({{ earlier }}) gets no sentence added
_USES_EARLIER = re.compile(r"{[{%][^}]*\bearlier\b")
#: "Bonjour," / "Dear Sir or Madam,": the opening line the thanks and the earlier dates follow
_GREETING = re.compile(r"^[^\n.!?]{1,40},$")


def _and(words: list[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + gettext(" and ") + words[-1]


def earlier_phrase(demand: Demand | None, lang: str) -> str:
    """"nos relances des 12 et 19 novembre 2026" / "our reminder of 12 November 2026", or ""."""
    days = [s.day for s in demand.earlier] if demand else []
    if not days:
        return ""
    return ngettext("our reminder of %(dates)s", "our reminders of %(dates)s", len(days),
                    dates=day_list(days, lang))


def discount_terms(line, lang: str) -> str:
    """"Escompte pour paiement anticipé : 2 %, soit 980,49 € à régler au plus tard le 14 décembre 2026"."""
    inv = line.invoice
    percent = format_decimal(inv.discount_percent, locale=lang) + ("\u00a0%" if lang == "fr" else "%")
    return gettext("Early-payment discount: %(percent)s, i.e. %(amount)s to pay by %(date)s at the latest",
                   percent=percent, amount=format_money(line.balance, inv.currency, lang),
                   date=long_date(inv.discount_until, lang))


def legal_basis(creditor: Creditor, debtor: Debtor, step) -> str | None:
    """The law the charges rest on, by the debtor's kind; None for a consumer or a step without charges."""
    if step is None or not step.adds_charges:
        return None
    if debtor.kind == "public":
        return gettext("Under article L2192-13 of the French Public Procurement Code, any late payment makes "
                       "default interest payable at the European Central Bank's rate plus 8 points and a fixed "
                       "recovery indemnity of €40 per invoice.")
    if debtor.kind == "business":
        if creditor.late_interest_bp is not None:
            rate = gettext("an annual rate of %(rate)s", rate=format_decimal(
                Decimal(creditor.late_interest_bp) / 100, "0.00", locale=debtor.language) + "\u00a0%")
        else:
            rate = gettext("the European Central Bank's rate plus 10 points")
        return gettext("Under articles L441-10 and D441-5 of the French Commercial Code, any late payment makes "
                       "interest payable at %(rate)s and a fixed recovery indemnity of €40 per invoice.", rate=rate)
    return None


def _render_step(step, part: str, lang: str, values: dict) -> str:
    """The step's subject or body rendered; a text refused by the sandbox's limits (one stored
    before they were checked on saving) fails naming the step and field, so the creditor's
    dashboard says which text to correct (dunning_jobs/day.py records the failed day)."""
    try:
        return render_text(step_text(step, part, lang), **values)
    except TemplateError as e:
        raise StepTextError(f"step {getattr(step, 'code', None) or '?'}, {part}_{lang}: {e}") from e


def context(creditor: Creditor, debtor: Debtor, kind: str, demand: Demand | None, paid: list[Invoice],
            step: DunningStep | None, url: str, day: date, message: OutboxMessage | None = None) -> dict:
    """Everything the templates print; call under force_locale(debtor.language)."""
    lang = debtor.language
    currency = demand.currency if demand else creditor.currency
    earlier = earlier_phrase(demand, lang)
    values = {"debtor_name": debtor.name, "creditor_name": creditor.name,
              "count": len(demand.lines) if demand else len(paid),
              "total": format_money(demand.total, currency, lang) if demand else "",
              "deadline": long_date(demand.deadline, lang) if demand and demand.deadline else "",
              "earlier": earlier}
    subject = greeting = None
    paragraphs: list[str] = []
    if step is not None and demand is not None:
        subject = _render_step(step, "subject", lang, values)
        body = step_text(step, "body", lang)
        paragraphs = [p.strip() for p in _render_step(step, "body", lang, values).split("\n\n") if p.strip()]
        if len(paragraphs) > 1 and _GREETING.match(paragraphs[0]):
            greeting = paragraphs.pop(0)
        if earlier and not _USES_EARLIER.search(body):
            paragraphs.insert(0, gettext("This message follows %(earlier)s.", earlier=earlier))
    thanks = None
    if paid and demand is not None:
        thanks = ngettext("Thank you for your payment of invoice %(numbers)s, which we have received.",
                          "Thank you for your payment of invoices %(numbers)s, which we have received.",
                          len(paid), numbers=_and([inv.number for inv in paid]))
    payload = qr_payload(message, creditor) if message is not None and message.channel == "email" else None
    discounted = granted_on(inv.id for inv in paid) if paid else {}
    return dict(discounted=discounted, creditor=creditor, debtor=debtor, kind=kind, demand=demand, paid=paid, step=step, url=url, day=day,
                lang=lang, currency=currency, subject=subject, greeting=greeting, paragraphs=paragraphs,
                intro="\n\n".join(([greeting] if greeting else []) + paragraphs), thanks=thanks,
                legal=legal_basis(creditor, debtor, step) if demand else None,
                deadline_text=values["deadline"], long=lambda day_: long_date(day_, lang),
                interest_label=gettext("default interest") if debtor.kind == "public" else gettext("late-payment interest"), day_text=long_date(day, lang),
                reference=format_reference(demand.reference) if demand else None,
                qr_cid=qr_content_id(message) if payload else None,
                charges_dates={ln.invoice.id: long_date(ln.invoice.issue_date, lang)
                               for ln in demand.lines if ln.invoice.kind == "charges"} if demand else {},
                discount_terms={ln.invoice.id: discount_terms(ln, lang) for ln in demand.lines if ln.discount}
                if demand else {},
                # the letter's figures (pdf/letter.html): balances, the charges claimed, and both summed
                items=demand.lines if demand else [], total=demand.total - demand.new_charges if demand else 0,
                charges=demand.new_charges if demand else 0, with_charges=bool(demand and demand.new_charges),
                deadline=demand.deadline if demand else None)


def render_message(creditor, debtor, kind, demand, paid, step, url, day, message=None) -> tuple[str, str, str]:
    with force_locale(debtor.language):
        ctx = context(creditor, debtor, kind, demand, paid, step, url, day, message)
        ctx.update(_bound_gettext(get_translations()))
        if ctx["subject"] is None:  # a thank-you alone has no step
            ctx["subject"] = render_template("email/subject_thank_you.txt", **ctx).strip()
        text_body = render_template("email/message.txt", **ctx)
        html_body = render_template("email/message.html", **ctx)
    return " ".join(ctx["subject"].split())[:300], text_body, html_body


def _bound_gettext(translations) -> dict:
    """`gettext` and `ngettext` for a message's templates, bound to its locale's translations: the
    environment's (Flask-Babel's) look the locale up again for each of a message's ~40 strings.
    Given in the render context, they take the place of the environment's; they behave as Jinja's
    newstyle ones: %-formatted with their keywords, marked safe where the template autoescapes."""

    @pass_context
    def bound_gettext(ctx, string: str, /, **variables) -> str:
        rv = translations.ugettext(string)
        return (Markup(rv) if ctx.eval_ctx.autoescape else rv) % variables

    @pass_context
    def bound_ngettext(ctx, singular: str, plural: str, num: int, /, **variables) -> str:
        variables.setdefault("num", num)
        rv = translations.ungettext(singular, plural, num)
        return (Markup(rv) if ctx.eval_ctx.autoescape else rv) % variables

    return {"gettext": bound_gettext, "ngettext": bound_ngettext}
