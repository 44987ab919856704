"""Back office: the dashboard (KPIs, aged balance, portal adoption, live feed), the aged balance
as CSV, and each user's choice of notices. Views parse, call one service and render."""
from __future__ import annotations

from decimal import Decimal

from flask import flash, g, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from ..csv_export import to_csv
from ..domain.ageing import BUCKETS
from ..domain.money import to_decimal_string
from ..services import Invalid, checks, dashboard, group_figures, memberships
from ..domain.calendar import today_for
from .blueprint import bp


def _as_of():
    """?as_of=YYYY-MM-DD, default today in the creditor's time zone; (date, error message)."""
    raw = request.args.get("as_of")
    if not raw:
        return today_for(g.creditor), None
    try:
        return checks.check_date(raw, "as_of"), None
    except Invalid:
        return today_for(g.creditor), _("Enter a date: the figures below are as of today.")


def _after() -> int:
    raw = request.args.get("after", "0")
    return int(raw) if raw.isdigit() and len(raw) < 19 else 0


@bp.get("/dashboard")
@login_required
def dashboard_page():
    as_of, error = _as_of()
    rows, after = dashboard.feed_start(g.creditor.id)
    return render_template("creditor/dashboard.html", k=dashboard.overview(g.creditor, as_of), rows=rows,
                           after=after, as_of_error=error, as_of_value=request.args.get("as_of", "")[:10])


@bp.get("/dashboard/group")
@login_required
def group_dashboard():
    """For a user of several creditors: each side by side, and consolidated per currency (a user
    of one creditor, who is offered no link to it, sees its one company)."""
    creditors = memberships.creditors_of(current_user)
    as_of, error = _as_of()
    return render_template("creditor/dashboard_group.html", k=group_figures.overview(creditors, as_of),
                           as_of_error=error)


@bp.get("/dashboard/feed")
@login_required
def dashboard_feed():
    """What happened after an event id: for htmx's poll, the new rows to prepend (204 when there
    is nothing new); without JavaScript, a page listing them."""
    after = _after()
    rows, last = dashboard.feed_after(g.creditor.id, after)
    if request.headers.get("HX-Request") == "true":
        if not rows and last == after:
            response = make_response("", 204)
        else:
            response = make_response(render_template("creditor/_feed.html", rows=rows, after=last))
    else:
        response = make_response(render_template("creditor/dashboard_feed.html", rows=rows, after=after, last=last))
    response.vary.add("HX-Request")
    return response


@bp.get("/dashboard/ageing.csv")
@login_required
def ageing_csv():
    as_of, _error = _as_of()
    cur = g.creditor.currency
    table = dashboard.aged_balance_table(g.creditor, as_of)

    def amount(minor: int) -> Decimal:  # a number in the sheet, not a text
        return Decimal(to_decimal_string(minor, cur))
    rows = [["as_of", "currency", "debtor_ref", "debtor_name", *BUCKETS, "total"]]
    rows += [[as_of, cur, ref, name, *(amount(buckets[b]) for b in BUCKETS), amount(total)]
             for ref, name, buckets, total in table.rows]
    rows.append([as_of, cur, "", "TOTAL", *(amount(table.totals[b]) for b in BUCKETS), amount(table.total)])
    response = make_response(to_csv(rows))
    response.mimetype = "text/csv"
    response.charset = "utf-8"
    response.headers["Content-Disposition"] = f'attachment; filename="aged-balance-{as_of.isoformat()}.csv"'
    return response


@bp.route("/notifications", methods=["GET", "POST"])
@login_required
def notifications():
    """Each signed-in user's own choice: every notice by e-mail as it happens, or one digest a day."""
    if request.method == "POST":
        try:
            changed = dashboard.set_notify(current_user, request.form.get("notify", ""))
        except Invalid:  # refused before anything was written
            return render_template("creditor/notifications.html", error=_("Choose one of the two options.")), 422
        if changed:
            flash(_("Saved: you will get a daily digest.") if current_user.notify == "digest"
                  else _("Saved: you will get each notice as it happens."))
        return redirect(url_for("creditor.notifications"))
    return render_template("creditor/notifications.html", error=None)
