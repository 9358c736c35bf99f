"""`handrail teams|users|audit`: accounts made and refused as an operator would see it."""

from __future__ import annotations

import csv
import io

import pytest
import typer
from sqlalchemy import text
from sqlmodel import Session, select
from typer.testing import CliRunner

from handrail.cli.admin import audit_app, keys_app, teams_app, users_app
from handrail.config import get_settings
from handrail.security.passwords import verify_password
from handrail.store.models import ApiToken, AuditEvent, Staff, StaffTeam
from handrail.store.tokens import hash_token

cli = typer.Typer()
cli.add_typer(teams_app, name="teams")
cli.add_typer(users_app, name="users")
cli.add_typer(audit_app, name="audit")
cli.add_typer(keys_app, name="keys")


@pytest.fixture
def run(sqlite_engine, monkeypatch, tmp_path):
    monkeypatch.setenv("HANDRAIL_DATABASE_URL", sqlite_engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("HANDRAIL_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None):
        return runner.invoke(cli, list(args), input=input)

    yield invoke
    get_settings.cache_clear()


def _token_of(result) -> str:
    return result.stdout.strip().splitlines()[-1]


def test_add_team_and_user_prints_a_working_token_last(run, sqlite_engine):
    assert run("teams", "add", "north-crisis", "--name", "North crisis team").exit_code == 0
    assert run("teams", "add", "south-cmht", "--name", "South CMHT").exit_code == 0

    made = run("users", "add", "Robin Testperson", "--role", "transition_coordinator",
               "--team", "north-crisis", "--team", "south-cmht", "--email", "robin@example.test")

    assert made.exit_code == 0, made.output
    token = _token_of(made)
    assert token.startswith("hr_")
    with Session(sqlite_engine) as session:
        staff = session.exec(select(Staff).where(Staff.name == "Robin Testperson")).one()
        assert staff.role == "transition_coordinator"
        assert len(session.exec(select(StaffTeam).where(StaffTeam.staff_id == staff.id)).all()) == 2
        stored = session.exec(select(ApiToken).where(ApiToken.staff_id == staff.id)).one()
        assert stored.token_hash == hash_token(token)
        # The token itself is in no table, only its hash.
        for row in session.execute(text("SELECT detail FROM auditevent")):
            assert token not in str(row)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--role", "wizard", "--team", "north-crisis"), "unknown role 'wizard'"),
        (("--role", "clinician", "--team", "nowhere"), "unknown team 'nowhere'"),
    ],
)
def test_unknown_role_or_team_is_refused_with_exit_code_2(run, sqlite_engine, args, message):
    run("teams", "add", "north-crisis")
    refused = run("users", "add", "Sam Testcase", *args)

    assert refused.exit_code == 2
    assert message in refused.stderr
    with Session(sqlite_engine) as session:
        assert session.exec(select(Staff)).all() == []


def test_duplicate_team_is_refused(run):
    run("teams", "add", "north-crisis")
    again = run("teams", "add", "north-crisis")
    assert again.exit_code == 2
    assert "already exists" in again.stderr


def test_new_token_and_revoking_all_tokens(run, sqlite_engine):
    run("teams", "add", "north-crisis")
    first = _token_of(run("users", "add", "Kit Testwright", "--role", "clinician", "--team", "north-crisis"))
    second = _token_of(run("users", "token", "Kit Testwright"))
    assert second != first

    revoked = run("users", "revoke-tokens", "Kit Testwright")
    assert revoked.exit_code == 0
    assert "revoked 2 token(s)" in revoked.stdout
    with Session(sqlite_engine) as session:
        assert all(t.revoked_at is not None for t in session.exec(select(ApiToken)).all())


def test_ambiguous_name_asks_for_the_id(run):
    run("teams", "add", "north-crisis")
    run("users", "add", "Alex SameName", "--role", "clinician", "--team", "north-crisis")
    run("users", "add", "Alex SameName", "--role", "supervisor", "--team", "north-crisis")

    refused = run("users", "token", "Alex SameName")
    assert refused.exit_code == 2
    assert "give the id" in refused.stderr
    assert run("users", "token", "1").exit_code == 0


def test_set_password_is_prompted_hashed_and_checked(run, sqlite_engine):
    run("teams", "add", "north-crisis")
    run("users", "add", "Jo Testing", "--role", "supervisor", "--team", "north-crisis",
        "--email", "jo@example.test")

    short = run("users", "set-password", "jo@example.test", input="short\nshort\n")
    assert short.exit_code == 2
    assert "at least 12" in short.stderr

    done = run("users", "set-password", "jo@example.test",
               input="correct horse battery\ncorrect horse battery\n")
    assert done.exit_code == 0, done.output
    assert "correct horse battery" not in done.stdout
    with Session(sqlite_engine) as session:
        staff = session.exec(select(Staff)).one()
    assert staff.password_hash.startswith("$argon2id$")
    assert verify_password(staff.password_hash, "correct horse battery")
    assert not verify_password(staff.password_hash, "wrong horse battery")


def test_audit_verify_reports_intact_then_the_broken_id(run, sqlite_engine):
    run("teams", "add", "north-crisis")
    run("users", "add", "Mo Testfield", "--role", "clinician", "--team", "north-crisis")

    intact = run("audit", "verify")
    assert intact.exit_code == 0
    assert "intact" in intact.stdout
    head = intact.stdout.strip().splitlines()[-1].removeprefix("head ")
    assert run("audit", "verify", "--anchor", head).exit_code == 0
    assert run("audit", "verify", "--anchor", "f" * 64).exit_code == 1

    with Session(sqlite_engine) as session:
        second_id = session.exec(select(AuditEvent.id).order_by(AuditEvent.id)).all()[1]
        session.execute(text("UPDATE auditevent SET source = 'elsewhere' WHERE id = :id"),
                        {"id": second_id})
        session.commit()

    broken = run("audit", "verify")
    assert broken.exit_code == 1
    assert f"BROKEN at entry id {second_id}" in broken.stderr


def test_audit_export_needs_a_filter_and_writes_csv(run):
    run("teams", "add", "north-crisis")
    assert run("audit", "export").exit_code == 2
    assert "not an ISO 8601" in run("audit", "export", "--from", "yesterday").stderr

    exported = run("audit", "export", "--from", "2000-01-01", "--to", "2100-01-01")
    assert exported.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert [row["action"] for row in rows] == ["admin.team_added"]
    # The export itself is recorded.
    assert "audit.exported" in run("audit", "export", "--from", "2000-01-01").stdout


def test_key_rotation_commands_never_print_key_material(run, monkeypatch):
    entry = _token_of(run("keys", "new", "k3"))
    assert entry.startswith("k3:")
    old = _token_of(run("keys", "new", "k2"))
    monkeypatch.setenv("HANDRAIL_CODEC_KEYS", f"{entry},{old}")
    get_settings.cache_clear()

    checked = run("keys", "check")
    assert checked.exit_code == 0
    assert "k3 encrypts; k3, k2 decrypt" in checked.stdout
    assert entry.split(":")[1] not in checked.stdout
    assert run("keys", "new", "bad id").exit_code == 2

    monkeypatch.setenv("HANDRAIL_CODEC_KEYS", "k1:short")
    get_settings.cache_clear()
    broken = run("keys", "check")
    assert broken.exit_code == 1
    assert "not valid base64" in broken.stderr or "bytes" in broken.stderr
