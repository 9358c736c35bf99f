"""Admin (read-only here): users, teams, step-up slots and the policy in force. Admins see
accounts and capacity, never a clinical record: slots show which transition holds them, not
who the person is. Changes are made with `handrail users …` / `handrail teams …`."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy import func
from sqlmodel import col, select

from ...store.models import ApiToken, Staff, StaffTeam, StepUpSlot, Team
from ..deps import PolicyDep, SessionDep
from .web import Viewer, render, require

router = APIRouter()
Admin = Annotated[Viewer, Depends(require("admin:manage"))]


@router.get("/console/admin", include_in_schema=False)
def admin_page(request: Request, viewer: Admin, session: SessionDep, policy: PolicyDep) -> Response:
    teams = session.exec(select(Team).order_by(col(Team.code))).all()
    team_codes = {team.id: team.code for team in teams}
    memberships: dict[int, list[str]] = {}
    for link in session.exec(select(StaffTeam)).all():
        memberships.setdefault(link.staff_id, []).append(team_codes.get(link.team_id, "?"))
    live_tokens = dict(session.exec(
        select(ApiToken.staff_id, func.count()).where(col(ApiToken.revoked_at).is_(None))
        .group_by(col(ApiToken.staff_id))).all())
    staff = session.exec(select(Staff).order_by(col(Staff.name))).all()
    slots = session.exec(select(StepUpSlot).order_by(col(StepUpSlot.team_id), col(StepUpSlot.label))).all()
    return render(
        request, "admin.html", viewer, teams=teams, staff=staff, memberships=memberships,
        live_tokens=live_tokens, slots=slots, team_codes=team_codes, policy=policy,
        policy_text=json.dumps(policy.model_dump(mode="json", exclude={"digest"}), indent=2),
        members={team.id: sum(team.code in codes for codes in memberships.values()) for team in teams},
    )
