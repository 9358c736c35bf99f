"""The staff console: server-rendered pages on the same app, its store queries and its actions.

`install(app)` adds the pages under /console, their static files, and the two answers every
page shares: no session → the login page; refused → a page saying why.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from . import admin, approvals, login, outbox, reports, transitions, work
from .web import (
    HERE,
    INSTALLED_PAGES,
    LOGIN_PATH,
    TIME_ZONE_GLOBAL,
    LoginRequired,
    Refused,
    render,
    templates,
)

PAGES = (login, work, transitions, approvals, reports, outbox, admin)


def install(app: FastAPI) -> None:
    templates.env.globals[TIME_ZONE_GLOBAL] = app.state.settings.console_time_zone
    app.mount("/console/static", StaticFiles(directory=HERE / "static"), name="console-static")
    for page in PAGES:
        app.include_router(page.router)
        INSTALLED_PAGES.update(route.path for route in page.router.routes)

    @app.exception_handler(LoginRequired)
    async def _login_required(_request: Request, err: LoginRequired) -> Response:
        return RedirectResponse(f"{LOGIN_PATH}?next={quote(err.next_path)}", status_code=303)

    @app.exception_handler(Refused)
    async def _refused(request: Request, err: Refused) -> Response:
        return render(request, "error.html", None, status_code=err.status_code, reason=err.reason)
