"""Optional OpenID Connect login for deployments with an identity provider.

Authorization code flow with PKCE. `/auth/oidc/login` sends the browser to the provider with a
fresh state, nonce and code challenge, kept in a short-lived signed cookie; `/auth/oidc/callback`
exchanges the code, checks the ID token (signature against the provider's JWKS, issuer,
audience, expiry, nonce, a verified email) and maps its email to an active Staff row, then
issues the same console session as password login. Nobody gets an account by signing in: the
staff member must exist (`handrail users add ... --email`).

Configure with HANDRAIL_OIDC_ISSUER, HANDRAIL_OIDC_CLIENT_ID and HANDRAIL_OIDC_CLIENT_SECRET
(the provider's redirect URI is `<HANDRAIL_PUBLIC_BASE_URL>/auth/oidc/callback`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

FLOW_COOKIE = "handrail_oidc"
FLOW_LIFETIME_SECONDS = 600
ALGORITHMS = ["RS256", "ES256", "PS256"]
HTTP_TIMEOUT_SECONDS = 5.0


class OidcSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HANDRAIL_OIDC_", extra="ignore")

    issuer: str | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    scope: str = "openid email profile"

    @property
    def enabled(self) -> bool:
        return bool(self.issuer and self.client_id)


class OidcError(Exception):
    """The provider's answer cannot be trusted or used; the message says why (no token in it)."""


@dataclass(frozen=True)
class Flow:
    state: str
    nonce: str
    verifier: str
    next: str | None
    expires_at: int


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _sign(secret: bytes, body: str) -> str:
    return _b64(hmac.new(secret, b"handrail-oidc:" + body.encode(), hashlib.sha256).digest())


def new_flow(next_path: str | None) -> Flow:
    return Flow(secrets.token_urlsafe(24), secrets.token_urlsafe(24), secrets.token_urlsafe(48),
                next_path, int(time.time()) + FLOW_LIFETIME_SECONDS)


def seal_flow(secret: bytes, flow: Flow) -> str:
    body = _b64(json.dumps([flow.state, flow.nonce, flow.verifier, flow.next, flow.expires_at]).encode())
    return f"{body}.{_sign(secret, body)}"


def open_flow(secret: bytes, sealed: str | None) -> Flow | None:
    if not sealed or sealed.count(".") != 1:
        return None
    body, signature = sealed.split(".")
    if not hmac.compare_digest(signature, _sign(secret, body)):
        return None
    try:
        state, nonce, verifier, next_path, expires = json.loads(
            base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (ValueError, TypeError):
        return None
    if time.time() >= expires:
        return None
    return Flow(state, nonce, verifier, next_path, expires)


def code_challenge(verifier: str) -> str:
    return _b64(hashlib.sha256(verifier.encode()).digest())


class OidcProvider:
    """The provider's endpoints (from its discovery document) and keys, fetched over `http`."""

    def __init__(self, settings: OidcSettings, http: httpx.AsyncClient) -> None:
        self.settings = settings
        self.http = http
        self._discovery: dict[str, Any] | None = None

    async def discovery(self) -> dict[str, Any]:
        if self._discovery is None:
            url = self.settings.issuer.rstrip("/") + "/.well-known/openid-configuration"
            document = await self._get_json(url)
            if str(document.get("issuer", "")).rstrip("/") != self.settings.issuer.rstrip("/"):
                raise OidcError("the provider's discovery document names a different issuer")
            missing = [k for k in ("authorization_endpoint", "token_endpoint", "jwks_uri")
                       if not isinstance(document.get(k), str)]
            if missing:
                raise OidcError(f"the provider's discovery document lacks {', '.join(missing)}")
            self._discovery = document
        return self._discovery

    async def _get_json(self, url: str) -> dict[str, Any]:
        try:
            answer = await self.http.get(url, timeout=HTTP_TIMEOUT_SECONDS)
            answer.raise_for_status()
            return answer.json()
        except (httpx.HTTPError, ValueError) as failed:
            raise OidcError(f"the identity provider did not answer usefully ({type(failed).__name__})"
                            ) from None

    async def authorization_url(self, flow: Flow, redirect_uri: str) -> str:
        endpoint = (await self.discovery())["authorization_endpoint"]
        query = {
            "response_type": "code", "client_id": self.settings.client_id,
            "redirect_uri": redirect_uri, "scope": self.settings.scope, "state": flow.state,
            "nonce": flow.nonce, "code_challenge": code_challenge(flow.verifier),
            "code_challenge_method": "S256",
        }
        return str(httpx.URL(endpoint, params=query))

    async def email_for_code(self, code: str, flow: Flow, redirect_uri: str) -> str:
        """Exchange the code and return the verified email of the validated ID token."""
        discovery = await self.discovery()
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
                "client_id": self.settings.client_id, "code_verifier": flow.verifier}
        if self.settings.client_secret is not None:
            form["client_secret"] = self.settings.client_secret.get_secret_value()
        try:
            answer = await self.http.post(discovery["token_endpoint"], data=form,
                                          timeout=HTTP_TIMEOUT_SECONDS)
            answer.raise_for_status()
            id_token = answer.json()["id_token"]
        except (httpx.HTTPError, ValueError, KeyError):
            raise OidcError("the identity provider refused the code") from None
        jwks = await self._get_json(discovery["jwks_uri"])
        try:
            keys = jwt.PyJWKSet.from_dict(jwks)
            kid = jwt.get_unverified_header(id_token).get("kid")
            candidates = [k for k in keys.keys if kid is None or k.key_id == kid]
            if not candidates:
                raise OidcError("the ID token is signed with a key the provider does not publish")
            claims = jwt.decode(
                id_token, candidates[0].key, algorithms=ALGORITHMS,
                audience=self.settings.client_id, issuer=discovery["issuer"],
                options={"require": ["exp", "iat", "iss", "aud", "sub"]}, leeway=30,
            )
        except jwt.PyJWTError as invalid:
            raise OidcError(f"the ID token is not valid ({type(invalid).__name__})") from None
        if not hmac.compare_digest(str(claims.get("nonce", "")), flow.nonce):
            raise OidcError("the ID token's nonce does not match this login")
        email = claims.get("email")
        if not email or claims.get("email_verified") is False:
            raise OidcError("the identity provider gave no verified email")
        return str(email)
