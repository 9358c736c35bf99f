"""Optional OpenID Connect login, against a stand-in identity provider (httpx.MockTransport)
that signs real RS256 ID tokens: only a valid token for an existing account logs in."""

from __future__ import annotations

import json
import time
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from handrail.api.routes import auth
from handrail.config import Settings
from handrail.security.oidc import OidcProvider, OidcSettings
from handrail.store.models import AuditEvent, Staff
from tests.security.conftest import security_app

ISSUER = "https://idp.example.test/realms/trust"
CLIENT_ID = "handrail-console"
EMAIL = "devi@example.test"


class StandInProvider:
    """Discovery, JWKS and a token endpoint; `claims` tweaks the next ID token it signs."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.signing_key = self.key
        self.claims: dict = {}
        self.nonce: str | None = None
        self.token_requests: list[dict] = []
        self.handle_jwks = None

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/.well-known/openid-configuration"):
            return httpx.Response(200, json={
                "issuer": ISSUER, "authorization_endpoint": f"{ISSUER}/auth",
                "token_endpoint": f"{ISSUER}/token", "jwks_uri": f"{ISSUER}/jwks"})
        if path.endswith("/jwks"):
            if self.handle_jwks is not None:
                return self.handle_jwks()
            jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
            return httpx.Response(200, json={"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]})
        if path.endswith("/token"):
            form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
            self.token_requests.append(form)
            now = int(time.time())
            claims = {"iss": ISSUER, "aud": CLIENT_ID, "sub": "user-42", "iat": now,
                      "exp": now + 300, "nonce": self.nonce, "email": EMAIL, "email_verified": True,
                      **self.claims}
            token = jwt.encode(claims, self.signing_key, algorithm="RS256", headers={"kid": "k1"})
            return httpx.Response(200, json={"id_token": token, "token_type": "Bearer"})
        return httpx.Response(404)


@pytest.fixture
def idp() -> StandInProvider:
    return StandInProvider()


@pytest.fixture
def client(tmp_path, sqlite_engine, idp):
    with Session(sqlite_engine) as session:
        session.add(Staff(name="Devi Testcase", role="clinician", email=EMAIL))
        session.commit()
    settings = Settings(data_dir=tmp_path, id_key="k", policy="seconds",
                        public_base_url="http://testserver", session_secret="o" * 40)
    app = security_app(settings, sqlite_engine, auth.router)
    app.state.oidc_provider = OidcProvider(
        OidcSettings(issuer=ISSUER, client_id=CLIENT_ID, client_secret="shh"),
        httpx.AsyncClient(transport=httpx.MockTransport(idp.handle)),
    )
    with TestClient(app, follow_redirects=False) as c:
        yield c


def _start(client, idp, next_path="/console") -> dict[str, str]:
    started = client.get("/auth/oidc/login", params={"next": next_path})
    assert started.status_code == 302
    target = urlsplit(started.headers["location"])
    query = {k: v[0] for k, v in parse_qs(target.query).items()}
    idp.nonce = query["nonce"]
    return query


def test_a_valid_id_token_for_an_existing_account_logs_in(client, idp, sqlite_engine):
    query = _start(client, idp)
    assert query["client_id"] == CLIENT_ID
    assert query["code_challenge_method"] == "S256"
    assert query["redirect_uri"] == "http://testserver/auth/oidc/callback"

    back = client.get("/auth/oidc/callback", params={"code": "abc", "state": query["state"]})

    assert back.status_code == 303
    assert back.headers["location"] == "/console"
    assert client.get("/auth/session").json()["name"] == "Devi Testcase"
    # PKCE: the verifier sent with the code matches the challenge sent with the redirect.
    assert idp.token_requests[0]["code_verifier"]
    assert idp.token_requests[0]["client_secret"] == "shh"
    with Session(sqlite_engine) as session:
        [event] = session.exec(select(AuditEvent).where(AuditEvent.action == "auth.login")).all()
    assert event.detail == {"method": "oidc"}


def test_a_state_that_does_not_match_is_refused(client, idp):
    _start(client, idp)
    answer = client.get("/auth/oidc/callback", params={"code": "abc", "state": "forged"})
    assert answer.status_code == 400
    assert client.get("/auth/session").status_code == 401


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"aud": "another-app"}, "not valid"),
        ({"iss": "https://evil.example"}, "not valid"),
        ({"exp": int(time.time()) - 3600}, "not valid"),
        ({"nonce": "replayed"}, "nonce"),
        ({"email_verified": False}, "verified email"),
    ],
)
def test_an_id_token_that_fails_a_check_is_refused(client, idp, claims, reason):
    query = _start(client, idp)
    idp.claims = claims
    answer = client.get("/auth/oidc/callback", params={"code": "abc", "state": query["state"]})
    assert answer.status_code == 401
    assert reason in answer.json()["detail"]
    assert client.get("/auth/session").status_code == 401


def test_a_token_signed_by_another_key_is_refused(client, idp):
    query = _start(client, idp)
    idp.signing_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    answer = client.get("/auth/oidc/callback", params={"code": "abc", "state": query["state"]})
    assert answer.status_code == 401


def test_an_identity_without_an_account_gets_no_session(client, idp):
    query = _start(client, idp)
    idp.claims = {"email": "stranger@example.test"}
    answer = client.get("/auth/oidc/callback", params={"code": "abc", "state": query["state"]})
    assert answer.status_code == 403
    assert client.get("/auth/session").status_code == 401


def test_a_provider_publishing_no_usable_keys_is_a_clear_refusal(client, idp):
    query = _start(client, idp)
    idp.handle_jwks = lambda: httpx.Response(200, json={"keys": []})
    answer = client.get("/auth/oidc/callback", params={"code": "abc", "state": query["state"]})
    assert answer.status_code == 401
    assert "not valid" in answer.json()["detail"]


def test_without_configuration_the_routes_are_absent(tmp_path, sqlite_engine, monkeypatch):
    monkeypatch.delenv("HANDRAIL_OIDC_ISSUER", raising=False)
    settings = Settings(data_dir=tmp_path, id_key="k", policy="seconds")
    with TestClient(security_app(settings, sqlite_engine, auth.router)) as plain:
        assert plain.get("/auth/oidc/login").status_code == 404
