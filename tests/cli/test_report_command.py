"""`handrail report assurance`: the week's checks and trend in the terminal."""

from __future__ import annotations

import pytest
from sqlmodel import Session
from typer.testing import CliRunner

from handrail.cli.main import app
from handrail.config import get_settings
from handrail.store.models import Team
from tests.workflows.assurance_world import WEEK, seed_week


@pytest.fixture
def run(sqlite_engine, monkeypatch, tmp_path):
    monkeypatch.setenv("HANDRAIL_DATABASE_URL", sqlite_engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("HANDRAIL_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    yield lambda *args: CliRunner().invoke(app, list(args))
    get_settings.cache_clear()


def test_report_assurance_prints_each_check_its_trend_and_the_findings(run, sqlite_engine):
    with Session(sqlite_engine) as session:
        team = Team(code="crisis-north", name="Crisis North")
        session.add(team)
        session.commit()
        team_id = team.id
    expected = seed_week(sqlite_engine, team_id)

    result = run("report", "assurance", "--week", WEEK, "--team", "crisis-north")

    assert result.exit_code == 0, result.output
    assert f"Weekly assurance {WEEK} · crisis-north (not stored yet: counted now)" in result.output
    assert "  2026-W10  2026-W09  2026-W08" in result.output
    assert "Step-up request waiting for capacity" in result.output
    for transition_id in expected.values():
        assert transition_id in result.output


def test_report_assurance_refuses_a_malformed_week_and_an_unknown_team(run):
    assert run("report", "assurance", "--week", "48").exit_code == 2
    unknown = run("report", "assurance", "--week", WEEK, "--team", "nowhere")
    assert unknown.exit_code == 2 and "no team with code 'nowhere'" in unknown.output
