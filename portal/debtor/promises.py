"""Portal routes for promises to pay (being built in this session: placeholder answers 404)."""
from __future__ import annotations

from ..services import NotFound
from . import bp
from .views import portal_required


@bp.get("/portal/invoices/<path:number>/promise")
@portal_required
def promise_form(number):
    raise NotFound("not yet")
