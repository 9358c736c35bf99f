"""The small commands: policy check, db upgrade, seed, and refusals without tracebacks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlmodel import Session, select
from typer.testing import CliRunner

from handrail.cli.main import app
from handrail.config import get_settings
from handrail.store.db import make_engine
from handrail.store.models import ApiToken, Staff
from handrail.store.tokens import hash_token

SECONDS_POLICY = Path(__file__).resolve().parents[2] / "policies" / "seconds.toml"
runner = CliRunner()


@pytest.fixture
def bad_policy(tmp_path: Path) -> Path:
    path = tmp_path / "bad.toml"
    text = SECONDS_POLICY.read_text()
    assert 'first_contact_due = "PT60S"' in text
    path.write_text(text.replace('first_contact_due = "PT60S"', 'first_contact_due = "soon"'))
    return path


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith("HANDRAIL_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HANDRAIL_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    yield tmp_path / "data"
    get_settings.cache_clear()


def test_policy_check_names_the_field_and_the_reason(bad_policy: Path) -> None:
    result = runner.invoke(app, ["policy", "check", str(bad_policy)])
    assert result.exit_code == 1
    assert "handoff.first_contact_due" in result.output
    assert "duration" in result.output  # the reason: not a valid duration


def test_policy_check_accepts_the_shipped_policies() -> None:
    for name in ("default", "seconds"):
        path = SECONDS_POLICY.parent / f"{name}.toml"
        result = runner.invoke(app, ["policy", "check", str(path)])
        assert result.exit_code == 0, result.output
        assert "valid (version " in result.output


def test_policy_check_of_a_missing_file_says_so(tmp_path: Path) -> None:
    result = runner.invoke(app, ["policy", "check", str(tmp_path / "nowhere.toml")])
    assert result.exit_code == 1
    assert "no policy file" in result.output


def test_worker_refuses_an_invalid_policy_without_a_traceback(bad_policy: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HANDRAIL_")}
    env |= {"HANDRAIL_POLICY": str(bad_policy), "HANDRAIL_DATA_DIR": str(tmp_path / "data")}
    for command in (["worker"], ["api", "--port", "1"], ["mllp", "--port", "1"]):
        done = subprocess.run(
            [sys.executable, "-m", "handrail.cli.main", *command],
            env=env, capture_output=True, text=True, timeout=60,
        )
        assert done.returncode == 1, done.stderr
        assert "handoff.first_contact_due" in done.stderr
        assert "Traceback" not in done.stderr


def test_db_upgrade_then_seed_prints_tokens_once_and_keeps_them(data_dir: Path) -> None:
    upgraded = runner.invoke(app, ["db", "upgrade"])
    assert upgraded.exit_code == 0, upgraded.output
    assert "store at head" in upgraded.output

    first = runner.invoke(app, ["seed"])
    assert first.exit_code == 0, first.output
    saved = (data_dir / "demo-logins.txt").read_text()
    supervisor_line = next(line for line in saved.splitlines() if line.startswith("supervisor"))
    token = supervisor_line.split()[-1]
    assert token in first.output
    assert (data_dir / "demo-logins.txt").stat().st_mode & 0o077 == 0  # tokens: owner only

    second = runner.invoke(app, ["seed"])
    assert second.exit_code == 0
    assert "already present" in second.output and token not in second.output
    assert (data_dir / "demo-logins.txt").read_text() == saved

    # The printed token is the one the API will accept: its hash is stored, not the token.
    engine = make_engine(f"sqlite:///{data_dir / 'handrail.db'}")
    with Session(engine) as session:
        staff = session.exec(
            select(Staff).join(ApiToken).where(ApiToken.token_hash == hash_token(token))
        ).one()
        assert staff.role == "supervisor"
        assert session.exec(select(ApiToken).where(ApiToken.token_hash == token)).first() is None
    engine.dispose()


def test_every_area_s_commands_are_reachable_from_handrail() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    commands = ("dev", "worker", "api", "db", "seed", "policy", "mllp", "teams", "users", "audit", "keys")
    for command in commands:
        assert command in result.output
    for group, sub in (("teams", "add"), ("users", "token"), ("audit", "verify"), ("keys", "new"),
                       ("db", "upgrade")):
        listed = runner.invoke(app, [group, "--help"])
        assert listed.exit_code == 0 and sub in listed.output, listed.output


def test_dev_without_a_temporal_binary_says_which_setting_to_fix(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HANDRAIL_")}
    env |= {"HANDRAIL_TEMPORAL_BIN": str(tmp_path / "no-temporal"), "HANDRAIL_POLICY": "seconds"}
    done = subprocess.run(
        [sys.executable, "-m", "handrail.cli.main", "dev", "--data-dir", str(tmp_path / "data")],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 1
    assert f"HANDRAIL_TEMPORAL_BIN: no executable at {tmp_path / 'no-temporal'}" in done.stderr
    assert "Traceback" not in done.stderr


def test_dev_refuses_unreadable_payload_keys_before_starting_anything(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HANDRAIL_")}
    env |= {"HANDRAIL_CODEC_KEYS": "not-a-key", "HANDRAIL_POLICY": "seconds"}
    done = subprocess.run(
        [sys.executable, "-m", "handrail.cli.main", "dev", "--data-dir", str(tmp_path / "data")],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 1
    assert "payload keys refused: HANDRAIL_CODEC_KEYS" in done.stderr
    assert "Traceback" not in done.stderr and "not-a-key" not in done.stderr
    assert not (tmp_path / "data").exists()
