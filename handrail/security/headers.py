"""Security headers on every response (install with `app.add_middleware(SecurityHeadersMiddleware,
https=settings.public_base_url.startswith("https://"))`).

The console is server-rendered with its own scripts and styles only, so the content security
policy allows nothing from elsewhere and no framing; the interactive API docs (/docs, /redoc)
load Swagger/ReDoc from their CDN and get a policy that allows exactly that. Responses under
/api and /auth are not cached: they carry personal data or session state.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)
DOCS_CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
    "img-src 'self' data: https://fastapi.tiangolo.com https://cdn.redoc.ly; "
    "font-src 'self' https://fonts.gstatic.com; worker-src 'self' blob:; object-src 'none'; "
    "base-uri 'self'; frame-ancestors 'none'"
)
DOCS_PATHS = ("/docs", "/redoc")
NO_STORE_PATHS = ("/api", "/auth", "/codec")
HSTS = "max-age=31536000; includeSubDomains"


def security_headers(path: str, *, https: bool) -> dict[str, str]:
    docs = path.startswith(DOCS_PATHS)
    headers = {
        "Content-Security-Policy": DOCS_CONTENT_SECURITY_POLICY if docs else CONTENT_SECURITY_POLICY,
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
        "Cross-Origin-Opener-Policy": "same-origin",
    }
    if https:
        headers["Strict-Transport-Security"] = HSTS
    if path.startswith(NO_STORE_PATHS):
        headers["Cache-Control"] = "no-store"
    return headers


class SecurityHeadersMiddleware:
    """Pure ASGI (no BaseHTTPMiddleware), so streaming responses and background tasks are kept."""

    def __init__(self, app: ASGIApp, https: bool = False) -> None:
        self.app = app
        self.https = https

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = security_headers(scope.get("path", ""), https=self.https)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in extra.items():
                    if name not in headers:  # a route that set its own value keeps it
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)
