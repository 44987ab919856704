"""The day's plan: what today's run will send (or would send, planned now) per step and per
debtor, the hold setting, the time the day's run starts, and releasing a held day."""
from __future__ import annotations

from datetime import date

from flask import flash, g, redirect, render_template, request, url_for
from flask_babel import format_date
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user, login_required

from dunning_jobs import day_plan
from ..domain.calendar import today_for
from ..services import Invalid, NotFound, dunning_days, tenants
from .blueprint import bp


@bp.get("/day")
@login_required
def dunning_day_page():
    return render_template("creditor/day.html", plan=day_plan.build(g.creditor, today_for(g.creditor)))


@bp.post("/day/hold")
@login_required
def dunning_hold():
    hold = request.form.get("hold") == "1"
    if dunning_days.set_hold(g.creditor, hold, user=current_user.email):
        flash(_("From the next run, each day's sending waits until you release it here.") if hold
              else _("Each day's reminders will go out as soon as they are planned."))
    return redirect(url_for("creditor.dunning_day_page"))


@bp.post("/day/time")
@login_required
def dunning_time():
    try:
        changed = tenants.set_dunning_time(g.creditor, request.form.get("dunning_time"), user=current_user.email)
    except Invalid:
        flash(_("Enter a time between %(start)s and %(end)s.", start=tenants.DUNNING_TIMES[0],
                end=tenants.DUNNING_TIMES[1]), "error")
        return redirect(url_for("creditor.dunning_day_page"))
    if changed:
        flash(_("Each day's run now starts at %(time)s.", time=g.creditor.dunning_time))
    return redirect(url_for("creditor.dunning_day_page"))


@bp.post("/day/release")
@login_required
def dunning_release():
    try:
        day = date.fromisoformat(request.form.get("day", ""))
        composed = dunning_days.release(g.creditor, day, user=current_user.email)
    except (ValueError, NotFound):
        flash(_("No held day to release."), "error")
        return redirect(url_for("creditor.dunning_day_page"))
    when = format_date(day, "long")
    if composed is None:
        flash(_("Day of %(date)s released, but its messages could not be written: see the dashboard.", date=when),
              "error")
        return redirect(url_for("creditor.dunning_day_page"))
    flash(ngettext("Day of %(date)s released: %(num)d message goes out with the next pass of the outbox.",
                   "Day of %(date)s released: %(num)d messages go out with the next pass of the outbox.",
                   composed, date=when) if composed else
          _("Day of %(date)s released: nothing was waiting to be sent.", date=when))
    return redirect(url_for("creditor.dunning_day_page"))
