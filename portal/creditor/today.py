"""Today, the back office's home (`/app/`): what waits for a person this morning, each list with
its count and a link to the screen where it is done; and the menu's counts, read in one query
for every back-office page."""
from __future__ import annotations

from flask import g, render_template
from flask_login import current_user, login_required

from ..domain.calendar import today_for
from ..services import dispute_mail, today as work_today
from .bank import REASONS as BANK_REASONS
from .blueprint import bp


@bp.context_processor
def _menu_counts():
    """For the nav: called by the layout only (once per page: kept on g), so pages that do not
    show the menu cost nothing."""
    def menu_counts() -> dict[str, int]:
        creditor = g.get("creditor")
        if creditor is None:
            return work_today.no_counts()
        if "menu_counts" not in g:
            g.menu_counts = work_today.counts(creditor.id, today_for(creditor))
        return g.menu_counts
    return {"menu_counts": menu_counts}


@bp.get("/")
@login_required
def today():
    day = today_for(g.creditor)
    g.menu_counts = work_today.counts(g.creditor.id, day)
    return render_template("creditor/today.html", work=work_today.work(g.creditor, day, current_user.id),
                           counts=g.menu_counts, today=day, sections=work_today.SECTIONS,
                           dispute_reasons=dispute_mail.REASON_LABELS, bank_reasons=BANK_REASONS)
