"""通话详情 (FEATURES.md R2, R3): one call's transcript, recording, grade and sharing."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import login_required

from core.enums import Role
from core.models import Call, DialogueTurn
from webui.extensions import db
from webui.security import get_visible_or_404, require_role

bp = Blueprint("call_detail", __name__)


@bp.get("/calls/<int:call_id>")
@login_required
@require_role(Role.ADMIN, Role.STAFF)
def view(call_id: int):
    call = get_visible_or_404(Call, call_id)
    turns = db.session.scalars(db.select(DialogueTurn).where(DialogueTurn.call_id == call.id)
                               .order_by(DialogueTurn.seq)).all()
    return render_template("call_detail/view.html", call=call, turns=turns)
