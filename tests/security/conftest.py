"""Security tests build a small app of just the routers under test on the real dependencies
(api/deps.py reads the settings and the engine from app.state), so they do not depend on which
other routers the full app includes."""

from __future__ import annotations

import pytest
from fastapi import APIRouter, FastAPI
from sqlalchemy.engine import Engine

from handrail.config import Settings


def security_app(settings: Settings, engine: Engine, *routers: APIRouter) -> FastAPI:
    app = FastAPI()
    app.state.settings = settings
    app.state.engine = engine
    for router in routers:
        app.include_router(router)
    return app


@pytest.fixture
def make_app():
    return security_app
