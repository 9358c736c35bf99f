"""End-to-end tests run `handrail dev` itself; its helpers live beside the supervisor tests."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "cli"))
