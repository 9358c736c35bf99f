"""docker-compose.yml and the Dockerfile, checked without a Docker engine (none runs here).

Debian's `docker-compose` (1.29) validates and resolves the file offline; the resolved
configuration is then read for what an operator relies on: the start order, the health checks,
workers that scale, versions pinned once, and no secret with a default.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_ENV = ROOT / "deploy" / "compose.env.example"
ONE_SHOTS = {"temporal-schema", "temporal-namespace", "migrate"}
SECRETS = ("POSTGRES_PASSWORD", "TEMPORAL_DB_PASSWORD", "HANDRAIL_DB_PASSWORD", "HANDRAIL_CODEC_KEYS",
           "HANDRAIL_ID_KEY", "HANDRAIL_SESSION_SECRET")


def docker_compose() -> str:
    found = shutil.which("docker-compose")
    if found:
        return found
    reason = "docker-compose is not installed (Debian package docker-compose; scripts/test installs it)"
    if os.environ.get("CI"):
        pytest.fail(f"CI is set and {reason}", pytrace=False)
    pytest.skip(reason)


def run_compose(*args: str, env_file: Path | None = EXAMPLE_ENV) -> subprocess.CompletedProcess:
    # Only the example's values: nothing from the developer's shell fills a required variable.
    env = {k: v for k, v in os.environ.items() if k not in SECRETS and not k.startswith("HANDRAIL_")}
    argv = [docker_compose()]
    if env_file is not None:
        argv += ["--env-file", str(env_file)]
    argv += ["-f", str(ROOT / "docker-compose.yml"), *args]
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def resolved() -> dict:
    result = run_compose("config")
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_compose_file_validates_with_docker_compose_config() -> None:
    result = run_compose("config", "-q")
    assert result.returncode == 0, result.stderr


def test_compose_refuses_to_resolve_without_the_secrets(tmp_path) -> None:
    empty = tmp_path / "empty.env"
    empty.write_text("")
    result = run_compose("config", "-q", env_file=empty)
    assert result.returncode != 0
    assert any(name in result.stderr for name in SECRETS), result.stderr


def test_each_service_starts_only_when_what_it_needs_is_healthy_or_done(resolved) -> None:
    services = resolved["services"]

    def needs(name: str) -> dict[str, str]:
        return {dep: spec["condition"] for dep, spec in services[name].get("depends_on", {}).items()}

    assert needs("temporal-schema") == {"postgres": "service_healthy"}
    assert needs("temporal") == {"temporal-schema": "service_completed_successfully"}
    assert needs("temporal-namespace") == {"temporal": "service_healthy"}
    assert needs("migrate") == {"postgres": "service_healthy"}
    for name in ("api", "worker"):
        assert needs(name) == {
            "migrate": "service_completed_successfully",
            "temporal-namespace": "service_completed_successfully",
        }
    assert needs("temporal-ui") == {"temporal": "service_healthy", "api": "service_healthy"}
    assert services["migrate"]["command"] == ["db", "upgrade"]


def test_every_long_running_service_has_a_health_check(resolved) -> None:
    for name, service in resolved["services"].items():
        if name in ONE_SHOTS:
            assert service.get("restart") == "no", name
        else:
            assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"


def test_workers_scale_no_fixed_name_or_published_port_and_they_stop_gracefully(resolved) -> None:
    worker = resolved["services"]["worker"]
    assert "container_name" not in worker and "ports" not in worker
    assert worker["command"] == ["worker"]
    # Longer than the worker's own 20 s graceful shutdown, so Docker's SIGKILL comes after it.
    assert int(str(worker["stop_grace_period"]).rstrip("s")) > 20


def test_images_are_pinned_and_the_handrail_processes_share_one_configuration(resolved) -> None:
    services = resolved["services"]
    for name, service in services.items():
        image = service["image"]
        assert re.search(r":[0-9][\w.-]*$", image) and not image.endswith(":latest"), (name, image)
    handrail = {name: s for name, s in services.items() if s["image"].startswith("handrail:")}
    assert set(handrail) == {"migrate", "api", "worker"}
    for name, service in handrail.items():
        env = service["environment"]
        assert env["HANDRAIL_DATABASE_URL"].startswith("postgresql+psycopg://handrail:"), name
        assert env["HANDRAIL_TEMPORAL_ADDRESS"] == "temporal:7233"
        assert env["HANDRAIL_LOG_FORMAT"] == "json"
    # The UI decodes payloads through Handrail's codec endpoint, with the staff member's login.
    ui = services["temporal-ui"]["environment"]
    assert ui["TEMPORAL_CODEC_ENDPOINT"] == "https://handrail.example.org/codec"
    assert ui["TEMPORAL_CODEC_INCLUDE_CREDENTIALS"] == "true"
    # Temporal's schema comes from Temporal's own tool, in the admin-tools image.
    schema = services["temporal-schema"]
    assert schema["image"].startswith("temporalio/admin-tools:")
    assert "temporal-sql-tool" in " ".join(schema["command"])


def test_versions_are_written_once_in_the_compose_file() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    for image in ("postgres:", "temporalio/server:", "temporalio/admin-tools:", "temporalio/ui:"):
        assert len(re.findall(r"(?<![\w@/.-])" + re.escape(image) + r"\d", text)) == 1, image


def test_dockerfile_is_multi_stage_and_runs_as_a_non_root_user() -> None:
    text = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM\s+\S+\s+AS\s+(\w+)", text, flags=re.MULTILINE | re.IGNORECASE)
    assert len(stages) >= 2, stages
    final = text.split("FROM ")[-1]
    users = re.findall(r"^USER\s+(\S+)", final, flags=re.MULTILINE)
    assert users and users[-1].split(":")[0] not in ("root", "0"), users
    # The run stage copies the built environment; it installs nothing itself.
    assert "COPY --from=build" in final and "pip install" not in final
    # Only the package, its metadata and the policies go into the build context.
    ignore = (ROOT / ".dockerignore").read_text().split()
    assert ignore[ignore.index("*")] == "*" and "!handrail/" in ignore and "!policies/" in ignore
