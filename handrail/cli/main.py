"""The `handrail` command: the dev stack, the worker, the API and the store's housekeeping.

Other areas add their command groups here with `app.add_typer(...)` (teams, users, audit, keys) or
`app.command(...)` (mllp), so `handrail --help` lists everything an operator can run.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from ..config import Settings, get_settings
from ..domain.policy import Policy, PolicyError
from ..intake.cli import mllp
from ..observability.logs import configure_logging
from .admin import audit_app, keys_app, teams_app, users_app
from .report import report_app
from .signals import run_until_signalled

app = typer.Typer(
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals may hold tokens and keys
    add_completion=False,
    help="Handrail: durable workflows for the transitions of community mental health care.",
)
db_app = typer.Typer(no_args_is_help=True, help="The SQL store: migrations.")
policy_app = typer.Typer(no_args_is_help=True, help="The pathway policy file.")
app.add_typer(db_app, name="db")
app.add_typer(policy_app, name="policy")
app.add_typer(teams_app, name="teams")
app.add_typer(users_app, name="users")
app.add_typer(audit_app, name="audit")
app.add_typer(keys_app, name="keys")
app.add_typer(report_app, name="report")


def fail(message: str, code: int = 1) -> typer.Exit:
    typer.secho(message, err=True, fg=typer.colors.RED)
    return typer.Exit(code)


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment (plus flags); a bad value names the variable, no traceback."""
    try:
        if not overrides:
            return get_settings()
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as err:
        problems = "\n  ".join(
            f"HANDRAIL_{'.'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in err.errors()
        )
        raise fail(f"invalid settings:\n  {problems}") from None


def load_policy_or_exit(settings: Settings) -> Policy:
    """An invalid policy is refused at start-up with the field and the reason."""
    try:
        return settings.load_policy()
    except PolicyError as err:
        raise fail(f"policy refused: {err}") from None


def check_payload_keys(settings: Settings) -> None:
    """Payload keys that cannot be read are refused before anything starts (dev keys are made)."""
    from ..security.codec import CodecKeyError, keyring_from_settings

    try:
        keyring_from_settings(settings)
    except CodecKeyError as err:
        raise fail(f"payload keys refused: {err}") from None


@app.command()
def dev(
    data_dir: Annotated[Path | None, typer.Option(help="State directory (default HANDRAIL_DATA_DIR)")] = None,
    temporal_port: Annotated[int, typer.Option(help="Temporal dev server gRPC port")] = 7233,
    ui_port: Annotated[int, typer.Option(help="Temporal UI port")] = 8233,
    api_port: Annotated[int, typer.Option(help="API and console port")] = 8000,
    api_host: Annotated[str, typer.Option(help="Address the API binds")] = "127.0.0.1",
    policy: Annotated[str | None, typer.Option(help="Policy file or name (default HANDRAIL_POLICY)")] = None,
    headless: Annotated[bool, typer.Option(help="Run the Temporal dev server without its UI")] = False,
    mllp_port: Annotated[
        int | None, typer.Option(help="Also listen for HL7 v2 over MLLP on this port (e.g. 2575)")
    ] = None,
    demo_notifications: Annotated[
        bool, typer.Option(help="On first start, post three synthetic notifications")
    ] = True,
) -> None:
    """Start everything on the embedded default: Temporal dev server, store, worker, API."""
    from .dev import DevOptions, run_dev

    settings = load_settings(data_dir=data_dir, policy=policy)
    load_policy_or_exit(settings)
    check_payload_keys(settings)
    options = DevOptions(
        settings=settings,
        temporal_port=temporal_port,
        ui_port=ui_port,
        api_port=api_port,
        api_host=api_host,
        headless=headless,
        mllp_port=mllp_port,
        demo_notifications=demo_notifications,
    )
    raise typer.Exit(run_dev(options))


@app.command()
def worker() -> None:
    """Run the Temporal worker until SIGTERM or Ctrl-C, then shut down gracefully."""
    settings = load_settings()
    load_policy_or_exit(settings)
    configure_logging(settings)
    from ..worker import GRACEFUL_SHUTDOWN, run_worker

    # In-flight activities get the graceful period; a few seconds more to hand the rest back.
    run_until_signalled(run_worker(settings), stop_within=GRACEFUL_SHUTDOWN.total_seconds() + 5)


@app.command()
def api(
    host: Annotated[str, typer.Option(help="Address to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind")] = 8000,
) -> None:
    """Serve the API and console with uvicorn."""
    import uvicorn

    settings = load_settings()
    load_policy_or_exit(settings)
    configure_logging(settings)
    uvicorn.run(
        "handrail.api.app:create_app",
        factory=True,
        host=host,
        port=port,
        log_level=settings.log_level.lower(),
        log_config=None,  # uvicorn's loggers propagate to ours (configure_logging): one format
        proxy_headers=True,
    )


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision")] = "head") -> None:
    """Apply the store's migrations (SQLite or PostgreSQL, from HANDRAIL_DATABASE_URL)."""
    from ..store.migrate import upgrade

    settings = load_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.resolved_database_url, revision)
    typer.echo(f"store at {revision}: {_safe_url(settings.resolved_database_url)}")


@app.command()
def seed() -> None:
    """Add the demo teams, staff and tokens (idempotent); print tokens made this time."""
    from .demo import seed_and_save_logins

    settings = load_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    logins_file, made = seed_and_save_logins(settings)
    if made:
        typer.echo(made.rstrip())
        typer.echo(f"(saved in {logins_file}; tokens are shown once)")
    else:
        typer.echo(f"demo data already present; logins were saved in {logins_file}")


@policy_app.command("check")
def policy_check(
    path: Annotated[Path | None, typer.Argument(help="Policy file (default HANDRAIL_POLICY)")] = None,
) -> None:
    """Validate a policy file; on error print the field and the reason and exit 1."""
    settings = load_settings(policy=str(path) if path is not None else None)
    policy = load_policy_or_exit(settings)
    typer.echo(f"{settings.policy_path()}: valid (version {policy.fingerprint})")


def _policy_checked(command):
    """A command from another area that loads the policy: refuse a bad one without a traceback."""

    @functools.wraps(command)
    def run(*args, **kwargs):
        load_policy_or_exit(load_settings())
        return command(*args, **kwargs)

    return run


app.command("mllp")(_policy_checked(mllp))


def _safe_url(url: str) -> str:
    # Never print a database password.
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


if __name__ == "__main__":
    app()
