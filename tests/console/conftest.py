"""Console fixtures (see console_world.py): the store, the Temporal stand-in and the app. The
browser tests start `handrail dev` with the helpers beside the supervisor tests (tests/cli)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "cli"))

from console_world import client, quick_argon2, temporal, world  # noqa: E402, F401
