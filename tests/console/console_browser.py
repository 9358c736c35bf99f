"""Headless Chromium for the console's browser tests: Debian's /usr/bin/chromium driven by
Playwright (whose own browser download fails here), axe-core from node_modules injected into
every page, and screenshots kept in test-artifacts/console/.

Without Chromium or axe-core the tests skip saying why, unless CI is set: then they fail, since
scripts/test installs both (apt's chromium, `npm ci`)."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("HANDRAIL_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = ROOT / "test-artifacts" / "console"
BLOCKING_IMPACTS = ("serious", "critical")
DESKTOP, PHONE = {"width": 1280, "height": 900}, {"width": 375, "height": 812}


def _missing(what: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"CI is set and {what}", pytrace=False)
    pytest.skip(what)


def launch_chromium(playwright):
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        _missing(f"no Chromium at {CHROMIUM} (apt-get install chromium; scripts/test does)")
    if not AXE.exists():
        _missing(f"axe-core is not installed at {AXE} (npm ci; scripts/test does)")
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)


class StaffBrowser:
    """One member of staff in their own browser context, logged in through the login page."""

    def __init__(self, browser, base_url: str, email: str, password: str, *, viewport=DESKTOP) -> None:
        self.context = browser.new_context(base_url=base_url, viewport=viewport)
        # Init scripts run outside the page's CSP, so axe needs no hole in it; the page itself
        # still runs under the real policy, and any violation it reports fails the test.
        self.context.add_init_script(path=str(AXE))
        self.page = self.context.new_page()
        self.page.set_default_timeout(15_000)
        self.csp_violations: list[str] = []
        self.page.on("console", self._console)
        self.email, self.password, self.viewport = email, password, viewport

    def _console(self, message) -> None:
        if "Content Security Policy" in message.text:
            self.csp_violations.append(message.text)

    def log_in(self) -> StaffBrowser:
        self.page.goto("/console/login")
        self.page.get_by_label("E-mail").fill(self.email)
        self.page.get_by_label("Password").fill(self.password)
        self.page.get_by_role("button", name="Log in").click()
        self.page.wait_for_url(re.compile(r"/console/(?!login)"))
        return self

    def open(self, path: str) -> StaffBrowser:
        self.page.goto(path)
        return self

    def check_page(self, name: str) -> None:
        """No serious or critical axe violation, no CSP violation, and a screenshot to look at."""
        self.page.wait_for_load_state("load")
        violations = self.page.evaluate(
            """async () => (await axe.run(document, {resultTypes: ["violations"]})).violations
                 .map(v => ({id: v.id, impact: v.impact, help: v.help,
                             nodes: v.nodes.slice(0, 3).map(n => n.target.join(" "))}))""")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        suffix = "" if self.viewport == DESKTOP else f"-{self.viewport['width']}"
        self.page.screenshot(path=str(ARTIFACTS / f"{name}{suffix}.png"), full_page=True)
        blocking = [v for v in violations if v["impact"] in BLOCKING_IMPACTS]
        assert blocking == [], f"{name}: accessibility violations {blocking}"
        assert self.csp_violations == [], f"{name}: {self.csp_violations}"

    def close(self) -> None:
        self.context.close()
