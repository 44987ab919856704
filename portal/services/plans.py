"""Dunning plans: one per debtor profile, a default shipped to every creditor, editable."""
from __future__ import annotations

from functools import lru_cache

from jinja2 import TemplateRuntimeError, TemplateSyntaxError, nodes
from jinja2.sandbox import SandboxedEnvironment, SecurityError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from ..extensions import db
from ..models import STEP_CHANNELS, DunningPlan, DunningStep
from . import Invalid, NotFound, events
from .checks import check_storable

# The default plan (DESIGN: "Dunning model"): code, offset, channel, tone, approval, charges.
DEFAULT_STEPS = [
    ("courtesy", -7, "email", "courtesy", False, False),
    ("reminder_1", 1, "email", "reminder", False, False),
    ("reminder_2", 8, "email", "reminder", False, False),
    ("firm", 15, "email", "firm", False, True),
    ("formal_notice", 30, "letter", "formal", True, True),
]
# The same steps on other calendars: key accounts get more room, risky debtors less, public
# bodies (legal payment term of 30 days, slow circuits) the most. The ladder never sends two
# rungs less than 7 days apart (domain/schedule.py), so no after-due steps are closer than that:
# risky debtors get the tightest ladder, a formal notice at D+22 instead of D+30. Plans created
# with the earlier risky calendar (-10, 1, 5, 10, 20) are left as they are: the ladder spaces
# their rungs by 7 days anyway (D+1, D+8, D+15, D+25).
PROFILE_OFFSETS = {
    "standard": ("Standard", (-7, 1, 8, 15, 30)),
    "key_account": ("Key accounts", (-7, 3, 15, 30, 45)),
    "risky": ("Risky", (-10, 1, 8, 15, 22)),
    "public_sector": ("Public sector", (-7, 5, 20, 35, 60)),
}

# Subject and opening paragraph per step and language. Placeholders: {{ debtor_name }},
# {{ creditor_name }}, {{ total }} (the one amount the message asks), {{ count }}, {{ deadline }},
# {{ earlier }} (the reminders really sent before, "nos relances des 12 et 19 novembre 2026",
# empty for a first one). The invoice table, the earlier reminders' dates (when the text does not
# use {{ earlier }}), the legal basis of charges (by debtor kind), the link and the bank details
# are added around it: a text never claims a reminder or a charge on its own.
DEFAULT_TEXTS = {
    "courtesy": {
        "fr": ("Échéance prochaine de vos factures — {{ creditor_name }}",
               "Bonjour,\n\nNous vous informons que les factures ci-dessous arrivent bientôt à échéance. "
               "Si leur règlement est déjà programmé, merci de ne pas tenir compte de ce message."),
        "en": ("Invoices coming due soon — {{ creditor_name }}",
               "Hello,\n\nThis is a friendly note that the invoices below will soon be due. "
               "If payment is already scheduled, please disregard this message."),
    },
    "reminder_1": {
        "fr": ("Rappel : facture(s) arrivée(s) à échéance — {{ creditor_name }}",
               "Bonjour,\n\nSauf erreur de notre part, nous n'avons pas encore reçu le règlement des factures "
               "ci-dessous, arrivées à échéance. Un simple oubli sans doute : vous pouvez régler en un clic "
               "depuis votre espace."),
        "en": ("Reminder: invoice(s) now due — {{ creditor_name }}",
               "Hello,\n\nAccording to our records, we have not yet received payment for the invoices below, "
               "which are now due. Probably an oversight: you can pay in one click from your account page."),
    },
    "reminder_2": {
        "fr": ("Rappel : {{ total }} restent à régler — {{ creditor_name }}",
               "Bonjour,\n\nLes factures ci-dessous restent impayées à ce jour. Merci de procéder à leur "
               "règlement, ou de nous indiquer depuis votre espace si l'une d'elles pose problème."),
        "en": ("Reminder: {{ total }} still outstanding — {{ creditor_name }}",
               "Hello,\n\nThe invoices below remain unpaid. Please settle them, or tell us from your account "
               "page if one of them is in question."),
    },
    "firm": {
        "fr": ("Relance : retard de paiement de {{ total }} — {{ creditor_name }}",
               "Madame, Monsieur,\n\nLes factures ci-dessous sont échues et restent impayées. Nous vous "
               "demandons d'en effectuer le règlement sans délai."),
        "en": ("Overdue payment of {{ total }} — {{ creditor_name }}",
               "Dear Sir or Madam,\n\nThe invoices below are overdue and remain unpaid. We ask you to settle "
               "them without delay."),
    },
    "formal_notice": {
        "fr": ("Mise en demeure de payer — {{ creditor_name }}",
               "Madame, Monsieur,\n\n{% if earlier %}Malgré {{ earlier }}, les{% else %}Les{% endif %} sommes "
               "ci-dessous restent impayées. Par la présente, nous vous mettons en demeure de régler la somme de "
               "{{ total }} au plus tard le {{ deadline }}. À défaut, nous nous réservons le droit d'engager une "
               "procédure de recouvrement judiciaire, sans autre avis."),
        "en": ("Formal notice to pay — {{ creditor_name }}",
               "Dear Sir or Madam,\n\n{% if earlier %}Despite {{ earlier }}, the{% else %}The{% endif %} amounts "
               "below remain unpaid. We hereby give you formal notice (mise en demeure) to pay {{ total }} by "
               "{{ deadline }} at the latest. Failing this, we reserve the right to start legal recovery "
               "proceedings without further notice."),
    },
}

# Texts the default plans shipped with before issue 14, as creditors' plans still store them:
# they claimed earlier reminders ("Malgré notre précédent rappel") and the Code de commerce
# whoever the debtor was. A step still holding one word for word is written with today's default.
FORMER_TEXTS = {
    ("reminder_2", "fr"): "Bonjour,\n\nMalgré notre précédent rappel, les factures ci-dessous restent impayées. Merci "
                          "de procéder à leur règlement, ou de nous indiquer depuis votre espace si l'une d'elles pose "
                          "problème.",
    ("reminder_2", "en"): "Hello,\n\nDespite our previous reminder, the invoices below remain unpaid. Please settle "
                          "them, or tell us from your account page if one of them is in question.",
    ("firm", "fr"): "Madame, Monsieur,\n\nLes factures ci-dessous sont échues depuis plus de deux semaines. Nous "
                    "vous demandons d'en effectuer le règlement sans délai. Conformément à l'article L441-10 du "
                    "Code de commerce, des pénalités de retard et une indemnité forfaitaire pour frais de "
                    "recouvrement sont exigibles.",
    ("firm", "en"): "Dear Sir or Madam,\n\nThe invoices below have been overdue for more than two weeks. We ask "
                    "you to settle them without delay. Under article L441-10 of the French Commercial Code, "
                    "late-payment interest and a fixed recovery indemnity are due.",
    ("formal_notice", "fr"): "Madame, Monsieur,\n\nMalgré nos relances, les sommes ci-dessous restent impayées. Par "
                             "la présente, nous vous mettons en demeure de régler la somme de {{ total }} au plus "
                             "tard le {{ deadline }}. À défaut, nous nous réservons le droit d'engager une procédure "
                             "de recouvrement judiciaire, sans autre avis.",
    ("formal_notice", "en"): "Dear Sir or Madam,\n\nDespite our reminders, the amounts below remain unpaid. We hereby "
                             "give you formal notice (mise en demeure) to pay {{ total }} by {{ deadline }} at the "
                             "latest. Failing this, we reserve the right to start legal recovery proceedings "
                             "without further notice.",
}
FORMER_SUBJECTS = {
    ("reminder_2", "fr"): "Deuxième rappel : {{ total }} restent à régler — {{ creditor_name }}",
    ("reminder_2", "en"): "Second reminder: {{ total }} still outstanding — {{ creditor_name }}",
}


def step_text(step, part: str, lang: str) -> str:
    """A step's subject or body ("subject"/"body") in `lang`, today's default if it still holds
    a former default word for word."""
    text = getattr(step, f"{part}_{lang}")
    former = (FORMER_SUBJECTS if part == "subject" else FORMER_TEXTS).get((getattr(step, "code", None), lang))
    if former is not None and text == former:
        return DEFAULT_TEXTS[step.code][lang][0 if part == "subject" else 1]
    return text


#: the values a step's texts may use, with harmless stand-ins to try them on
SAMPLE_VALUES = {"debtor_name": "Exemple SARL", "creditor_name": "Exemple", "total": "1 000,00 €", "count": 2,
                 "deadline": "1er janvier 2030", "earlier": "nos relances des 12 et 19 novembre 2029"}
#: the filters a step's text may use: each costs a pass over its value, no more
FILTERS = ("upper", "lower", "capitalize", "title", "trim", "default", "d")
#: a rendered subject or text never exceeds this (a 5000-character text of placeholders stays under)
MAX_OUTPUT = 20_000
#: what a step's text may contain besides the placeholders (`Name`, checked apart): text,
#: `{{ }}`, `{% if %}`/`elif`/`else`, literals, comparisons and tests, `and`/`or`/`not`,
#: `~` and the arithmetic that cannot grow a value (`*` and `%` on numbers only, no `**`), the
#: FILTERS. No loop, macro, call, assignment, attribute or item: each node runs at most once,
#: so rendering costs what the text's length does, whoever the debtor is.
_ALLOWED_NODES = (nodes.Template, nodes.Output, nodes.TemplateData, nodes.If, nodes.Const, nodes.CondExpr,
                  nodes.And, nodes.Or, nodes.Not, nodes.Neg, nodes.Pos, nodes.Compare, nodes.Operand,
                  nodes.Concat, nodes.Filter, nodes.Test, nodes.Add, nodes.Sub, nodes.Mul, nodes.Div,
                  nodes.FloorDiv, nodes.Mod, nodes.Tuple, nodes.List, nodes.Keyword)
_WHAT = {nodes.For: "loops", nodes.Macro: "macros", nodes.CallBlock: "macros", nodes.Call: "calls",
         nodes.Assign: "{% set %}", nodes.AssignBlock: "{% set %}", nodes.Pow: "the ** operator",
         nodes.Getattr: "attributes", nodes.Getitem: "items or slices", nodes.FilterBlock: "{% filter %}",
         nodes.With: "{% with %}", nodes.Include: "{% include %}", nodes.Import: "{% import %}",
         nodes.FromImport: "{% import %}", nodes.Extends: "{% extends %}", nodes.Block: "{% block %}"}


class StepTextEnvironment(SandboxedEnvironment):
    """Jinja's sandbox narrowed to what a step's text needs (issue 15: a text looping only for
    real debtors passed the check on the sample one). Every parse is checked against
    _ALLOWED_NODES, so a text outside them is refused when saved or previewed and, if one
    was stored before, the moment a message would render it. `*` and `%` take numbers only
    (``"x" * 10**9``, ``"%09999999d" % 1``), checked on parsing and again on rendering."""

    intercepted_binops = frozenset({"*", "%"})

    def __init__(self):
        super().__init__(autoescape=False)
        self.globals.clear()  # no range, lipsum, namespace, cycler, joiner, dict
        self.filters = {name: self.filters[name] for name in FILTERS}

    def _parse(self, source, name, filename):
        tree = super()._parse(source, name, filename)
        for node in tree.find_all(nodes.Node):
            _allowed(node)
        return tree

    def call_binop(self, context, operator, left, right):
        if not all(isinstance(v, (int, float)) for v in (left, right)):
            raise SecurityError(f"the {operator} operator takes numbers only")
        return super().call_binop(context, operator, left, right)


def _allowed(node) -> None:
    if isinstance(node, nodes.Name):
        if node.ctx != "load" or node.name not in SAMPLE_VALUES:
            raise TemplateSyntaxError(f"unknown placeholder {node.name!r}: use {', '.join(SAMPLE_VALUES)}",
                                      node.lineno)
    elif isinstance(node, (nodes.Mul, nodes.Mod)) and not (_numeric(node.left) and _numeric(node.right)):
        raise TemplateSyntaxError(f"the {node.operator} operator takes numbers only", node.lineno)
    elif isinstance(node, nodes.Filter) and node.name not in FILTERS:
        raise TemplateSyntaxError(f"filter {node.name!r} not allowed: use {', '.join(FILTERS)}", node.lineno)
    elif not isinstance(node, _ALLOWED_NODES):
        what = next((w for cls, w in _WHAT.items() if isinstance(node, cls)), type(node).__name__)
        raise TemplateSyntaxError(f"not allowed in a step's text: {what} (only placeholders, if/elif/else and "
                                  f"the filters {', '.join(FILTERS)})", node.lineno)


def _numeric(node) -> bool:
    """An expression of numbers and {{ count }} only: `*` and `%` may not repeat or pad a string."""
    if isinstance(node, nodes.Const):
        return isinstance(node.value, (int, float))
    if isinstance(node, nodes.Name):
        return node.name == "count"
    if isinstance(node, (nodes.Neg, nodes.Pos)):
        return _numeric(node.node)
    if isinstance(node, (nodes.Add, nodes.Sub, nodes.Mul, nodes.Div, nodes.FloorDiv, nodes.Mod)):
        return _numeric(node.left) and _numeric(node.right)
    return False


_env = StepTextEnvironment()


class StepTextError(Exception):
    """A step's stored text that cannot be rendered within the limits, named by step and field."""


def render_text(template: str, **values) -> str:
    """A creditor-edited text, rendered in the narrowed sandbox, MAX_OUTPUT characters at most."""
    out, size = [], 0
    for chunk in _compiled(template).generate(**values):
        size += len(chunk)
        if size > MAX_OUTPUT:
            raise TemplateRuntimeError(f"the text is longer than {MAX_OUTPUT} characters once rendered")
        out.append(chunk)
    return "".join(out)


@lru_cache(maxsize=512)
def _compiled(template: str):
    # Compiling costs ~1 ms, rendering ~20 µs: a dunning day renders the same few step texts
    # for every message, so each is compiled once per process (keyed by its source).
    return _env.from_string(template)


def check_template(template: str, field: str) -> str:
    """The text parses within what a step's text may do (StepTextEnvironment) and renders: one
    that fails at render time (``{{ 1 / 0 }}``, ``{{ "x" * 10 }}``) would otherwise stop the
    creditor's dunning day that meets it."""
    try:
        _env.parse(template)
        render_text(template, **SAMPLE_VALUES)
    except TemplateSyntaxError as e:
        raise Invalid(f"template error: {e.message}", field) from None
    except Exception as e:  # noqa: BLE001 - any failure of a creditor's text is the creditor's to fix
        raise Invalid(f"template error: {e}", field) from None
    return template


def ensure_default_plans(creditor_id: int) -> None:
    """Give the creditor a plan for every profile it lacks (first dunning run or plan page).
    Commits, so that concurrent first runs meet the unique (creditor, profile) and carry on."""
    have = set(db.session.scalars(select(DunningPlan.profile).where(DunningPlan.creditor_id == creditor_id)))
    for profile, (name, offsets) in PROFILE_OFFSETS.items():
        if profile in have:
            continue
        plan = DunningPlan(creditor_id=creditor_id, profile=profile, name=name)
        for position, ((code, _o, channel, tone, approval, charges), offset) in enumerate(
                zip(DEFAULT_STEPS, offsets), 1):
            texts = DEFAULT_TEXTS[code]
            plan.steps.append(DunningStep(code=code, position=position, offset_days=offset, channel=channel,
                                          tone=tone, requires_approval=approval, adds_charges=charges,
                                          subject_fr=texts["fr"][0], body_fr=texts["fr"][1],
                                          subject_en=texts["en"][0], body_en=texts["en"][1]))
        db.session.add(plan)
        try:
            db.session.commit()
        except IntegrityError:  # another process created it at the same moment
            db.session.rollback()


def plans_for(creditor_id: int) -> list[DunningPlan]:
    """The creditor's plans with their steps (every caller reads them): two queries, not one per plan."""
    return list(db.session.scalars(select(DunningPlan).where(DunningPlan.creditor_id == creditor_id)
                                   .order_by(DunningPlan.profile).options(selectinload(DunningPlan.steps))))


def get_step(creditor_id: int, step_id: int) -> DunningStep:
    step = db.session.scalar(select(DunningStep).join(DunningPlan)
                             .where(DunningStep.id == step_id, DunningPlan.creditor_id == creditor_id))
    if step is None:
        raise NotFound("no such step")
    return step


def update_step(creditor_id: int, step_id: int, data: dict) -> DunningStep:
    """Change a step's timing, channel, approval, charges and texts, checked first."""
    step = get_step(creditor_id, step_id)
    try:
        offset = int(data.get("offset_days", step.offset_days))
    except (TypeError, ValueError):
        raise Invalid("offset_days must be a whole number of days", "offset_days") from None
    if not -90 <= offset <= 365:
        raise Invalid("offset_days must be between -90 and 365", "offset_days")
    siblings = {s.position: s.offset_days for s in step.plan.steps if s.id != step.id}
    before = [o for p, o in siblings.items() if p < step.position]
    after = [o for p, o in siblings.items() if p > step.position]
    if (before and offset <= max(before)) or (after and offset >= min(after)):
        raise Invalid("steps must stay in order: each later than the one before", "offset_days")
    channel = data.get("channel", step.channel)
    if channel not in STEP_CHANNELS:
        raise Invalid("channel must be one of email, sms, letter, call", "channel")
    texts = {}  # all checked before any is set: a refused edit changes nothing
    for lang in ("fr", "en"):
        subject = data.get(f"subject_{lang}", getattr(step, f"subject_{lang}"))
        body = data.get(f"body_{lang}", getattr(step, f"body_{lang}"))
        if not subject or len(subject) > 200:
            raise Invalid("subject is required (200 characters at most)", f"subject_{lang}")
        if not body or len(body) > 5000:
            raise Invalid("text is required (5000 characters at most)", f"body_{lang}")
        texts[f"subject_{lang}"] = check_template(check_storable(subject, f"subject_{lang}"), f"subject_{lang}")
        texts[f"body_{lang}"] = check_template(check_storable(body, f"body_{lang}"), f"body_{lang}")
    for name, value in texts.items():
        setattr(step, name, value)
    step.offset_days, step.channel = offset, channel
    step.requires_approval = bool(data.get("requires_approval", step.requires_approval))
    step.adds_charges = bool(data.get("adds_charges", step.adds_charges))
    events.record("plan.step_updated", creditor_id=creditor_id, actor="creditor", step=step.code,
                  plan=step.plan.profile)
    db.session.commit()
    return step
