"""Console login: signed session cookies, CSRF on unsafe requests, throttled failures, headers."""

from __future__ import annotations

from datetime import timedelta

import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from handrail.api.routes import auth
from handrail.config import Settings
from handrail.security import passwords
from handrail.security.headers import SecurityHeadersMiddleware
from handrail.security.passwords import hash_password
from handrail.security.ratelimit import LoginRateLimiter
from handrail.security.sessions import cookie_name, issue_session, read_session
from handrail.store.models import AuditEvent, Staff
from handrail.store.types import utcnow
from tests.security.conftest import security_app

PASSWORD = "lantern-ferry-orchard"
EMAIL = "casey@example.test"


@pytest.fixture(autouse=True)
def quick_argon2(monkeypatch):
    # Production cost (64 MiB, 3 passes) is the point in production, not in these tests.
    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    monkeypatch.setattr(passwords, "_hasher", cheap)
    monkeypatch.setattr(passwords, "_DUMMY_HASH", cheap.hash("no-such-account"))


def _app(settings: Settings, engine) -> FastAPI:
    return security_app(settings, engine, auth.router)


@pytest.fixture
def staff_id(sqlite_engine) -> int:
    with Session(sqlite_engine) as session:
        staff = Staff(name="Casey Testington", role="supervisor", email=EMAIL,
                      password_hash=hash_password(PASSWORD))
        session.add(staff)
        session.commit()
        return staff.id


def _settings(tmp_path, public_base_url="http://testserver") -> Settings:
    return Settings(data_dir=tmp_path, id_key="test-key", policy="seconds",
                    temporal_address="127.0.0.1:1", public_base_url=public_base_url,
                    session_secret="s" * 40)


@pytest.fixture
def client(tmp_path, sqlite_engine, staff_id):
    with TestClient(_app(_settings(tmp_path), sqlite_engine), client=("198.51.100.4", 4000)) as c:
        yield c


def _login(client, password=PASSWORD, **extra):
    return client.post("/auth/login", json={"email": EMAIL, "password": password, **extra})


def test_login_sets_an_httponly_lax_cookie_and_returns_a_csrf_token(client, staff_id):
    answer = _login(client)

    assert answer.status_code == 200
    assert answer.json()["staff_id"] == staff_id
    assert len(answer.json()["csrf_token"]) >= 32
    set_cookie = answer.headers["set-cookie"]
    assert set_cookie.startswith("handrail_session=")
    assert "HttpOnly" in set_cookie
    assert "SameSite=lax" in set_cookie
    assert "Secure" not in set_cookie  # plain http in this test
    assert PASSWORD not in set_cookie

    me = client.get("/auth/session")
    assert me.status_code == 200
    assert me.json()["csrf_token"] == answer.json()["csrf_token"]


def test_over_https_the_cookie_is_secure_and_host_prefixed(tmp_path, sqlite_engine, staff_id):
    app = _app(_settings(tmp_path, "https://handrail.example.test"), sqlite_engine)
    with TestClient(app, base_url="https://handrail.example.test") as client:
        set_cookie = _login(client).headers["set-cookie"]
    assert set_cookie.startswith("__Host-handrail_session=")
    assert "Secure" in set_cookie
    assert "Path=/" in set_cookie


def test_a_wrong_password_is_refused_and_audited_without_the_password(client, sqlite_engine):
    answer = _login(client, password="not-the-password")

    assert answer.status_code == 401
    assert "set-cookie" not in answer.headers
    with Session(sqlite_engine) as session:
        [event] = session.exec(select(AuditEvent)).all()
    assert (event.action, event.source) == ("auth.login_failed", "198.51.100.4")
    assert "not-the-password" not in str(event.detail)


def test_five_failures_lock_that_account_and_address_for_a_while(client, tmp_path, sqlite_engine):
    for _ in range(5):
        assert _login(client, password="guess").status_code == 401

    throttled = _login(client)  # even the right password, now
    assert throttled.status_code == 429
    assert int(throttled.headers["retry-after"]) > 0

    # Another address is not blocked by this one's failures.
    other = TestClient(client.app, client=("192.0.2.77", 4000))
    assert other.post("/auth/login", json={"email": EMAIL, "password": PASSWORD}).status_code == 200


def test_the_limiter_forgets_failures_after_the_window():
    now = [1000.0]
    limiter = LoginRateLimiter(max_failures=5, window_seconds=900, clock=lambda: now[0])
    for _ in range(5):
        limiter.record_failure("Casey@Example.test", "198.51.100.4")
    assert limiter.retry_after("casey@example.test", "198.51.100.4") == 901

    now[0] += 901
    assert limiter.retry_after("casey@example.test", "198.51.100.4") is None


def test_unsafe_requests_need_the_sessions_csrf_token(client):
    token = _login(client).json()["csrf_token"]

    assert client.post("/auth/logout").status_code == 403
    assert client.post("/auth/logout", headers={"X-CSRF-Token": "forged"}).status_code == 403
    assert client.post("/auth/logout", data={"csrf_token": "forged"}).status_code == 403
    assert client.get("/auth/session").status_code == 200  # still logged in

    out = client.post("/auth/logout", data={"csrf_token": token})
    assert out.status_code == 204
    assert "Max-Age=0" in out.headers["set-cookie"]
    assert client.get("/auth/session").status_code == 401


def test_a_forged_or_altered_cookie_is_no_session(client):
    _login(client)
    genuine = client.cookies.get("handrail_session")
    body, signature = genuine.split(".")
    client.cookies.set("handrail_session", body[:-2] + "AA." + signature)
    assert client.get("/auth/session").status_code == 401
    client.cookies.set("handrail_session", body + "." + signature[:-2] + "AA")
    assert client.get("/auth/session").status_code == 401


def test_sessions_expire_and_end_when_the_password_changes(tmp_path, sqlite_engine, staff_id):
    settings = _settings(tmp_path)
    with Session(sqlite_engine) as session:
        staff = session.get(Staff, staff_id)
        cookie, _ = issue_session(settings, staff, utcnow())
        assert read_session(settings, cookie, utcnow() + timedelta(hours=7)) is not None
        assert read_session(settings, cookie, utcnow() + timedelta(hours=8, seconds=1)) is None

    app = _app(settings, sqlite_engine)
    with TestClient(app) as client:
        client.cookies.set(cookie_name(settings), cookie)
        assert client.get("/auth/session").status_code == 200
        with Session(sqlite_engine) as session:
            staff = session.get(Staff, staff_id)
            staff.password_hash = hash_password("a-brand-new-passphrase")
            session.add(staff)
            session.commit()
        assert client.get("/auth/session").status_code == 401


def test_login_from_another_origin_is_refused(client):
    answer = client.post("/auth/login", json={"email": EMAIL, "password": PASSWORD},
                         headers={"Origin": "https://evil.example"})
    assert answer.status_code == 403


def test_next_only_redirects_within_the_site(client):
    inside = client.post("/auth/login", follow_redirects=False,
                         json={"email": EMAIL, "password": PASSWORD, "next": "/console/tasks"})
    assert (inside.status_code, inside.headers["location"]) == (303, "/console/tasks")
    outside = client.post("/auth/login", follow_redirects=False,
                          json={"email": EMAIL, "password": PASSWORD, "next": "https://evil.example/"})
    assert outside.status_code == 200
    assert "location" not in outside.headers


def test_bad_login_bodies_are_422_naming_the_field(client):
    answer = client.post("/auth/login", json={"email": EMAIL})
    assert answer.status_code == 422
    assert "password" in str(answer.json()["detail"])
    assert client.post("/auth/login", content=b"{nope", headers={"content-type": "application/json"}
                       ).status_code == 422


def _headers_app(https: bool) -> TestClient:
    app = FastAPI()
    app.add_middleware(SecurityHeadersMiddleware, https=https)

    @app.get("/api/thing")
    def thing() -> dict:
        return {"ok": True}

    return TestClient(app)


def test_security_headers_on_every_response():
    headers = _headers_app(https=False).get("/api/thing").headers
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert "default-src 'self'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["cache-control"] == "no-store"
    assert "strict-transport-security" not in headers
    # Even a 404 carries them.
    assert "content-security-policy" in _headers_app(https=False).get("/missing").headers


def test_hsts_only_when_served_over_https():
    headers = _headers_app(https=True).get("/api/thing").headers
    assert headers["strict-transport-security"].startswith("max-age=31536000")
