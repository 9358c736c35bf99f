"""The weekly assurance's store work: which teams to report, and one team's report of a week
(its four checks and their trend), stored once per team and week."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy.engine import Engine
from temporalio import activity

from ..domain.assurance import AssurancePolicy, IsoWeek
from ..store import assurance
from ..store.db import session_scope


class AssuranceRun(BaseModel):
    """The schedule's input: the policy section it was made from, so a run keeps it."""

    policy: AssurancePolicy
    policy_version: str
    week: str | None = None  # None: the last complete week before the run
    team_codes: list[str] = Field(default_factory=list)  # empty: every team


class AssuranceTeam(BaseModel):
    id: int
    code: str


class WriteAssuranceReport(BaseModel):
    team_id: int
    week: str
    policy: AssurancePolicy
    policy_version: str
    workflow_id: str
    at: datetime


class AssuranceFinding(BaseModel):
    check: str
    transition_id: str
    person_id: int | None = None
    detail: dict[str, Any] = Field(default_factory=dict)


class StoredAssurance(BaseModel):
    report_id: int
    team_id: int
    week: str
    counts: dict[str, int]
    findings: list[AssuranceFinding]


class AssuranceActivities:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @activity.defn
    def list_assurance_teams(self, codes: list[str]) -> list[AssuranceTeam]:
        with session_scope(self._engine) as session:
            return [AssuranceTeam(id=team.id, code=team.code)
                    for team in assurance.teams(session=session, codes=codes)]

    @activity.defn
    def write_assurance_report(self, request: WriteAssuranceReport) -> StoredAssurance:
        """Idempotent: the first report of a team's week is kept and returned on a repeat."""
        with session_scope(self._engine) as session:
            report = assurance.save_report(session=session, report=assurance.build_report(
                session=session, team_id=request.team_id, week=IsoWeek.parse(request.week),
                policy=request.policy, policy_version=request.policy_version,
                workflow_id=request.workflow_id, at=request.at))
            return StoredAssurance(
                report_id=report.id, team_id=report.team_id, week=report.week, counts=report.counts,
                findings=[AssuranceFinding.model_validate(f) for f in report.findings])
