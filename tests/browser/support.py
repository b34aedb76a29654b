"""Browser-test support. The `browser` and `page` fixtures are imported into tests/conftest.py
so the whole run shares one Playwright session (a second sync session in the same process
refuses to start inside the first one's event loop).

Browser tests: Playwright for Python driving Debian's Chromium, headless, against Django's
live test server (a real server thread on loopback, the test database behind it).

- Chromium comes from the system (`apt-get install -y chromium`, which `.ci/run` ensures);
  Playwright never downloads a browser. Without it the tests skip locally and fail in CI.
- Screenshots land in `artifacts/screenshots/` (CI keeps the folder as the run's artifacts).
- Playwright's sync API runs an event loop in the test thread; Django would refuse ORM calls
  from it, so `DJANGO_ALLOW_ASYNC_UNSAFE` is set for these tests only. The tests still use the
  ORM only before and after the browser acts, never concurrently with it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import require_service

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-gpu",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="session")
def browser():
    path = chromium_path()
    require_service(
        None if path else "Debian's chromium is not installed (apt-get install chromium)"
    )
    from playwright.sync_api import sync_playwright

    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=path, headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    tab = context.new_page()
    yield tab
    context.close()


def screenshot(tab, name: str) -> Path:
    """Save a full-page screenshot as a test artifact and return its path."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    target = ARTIFACTS / f"{name}.png"
    tab.screenshot(path=str(target), full_page=True)
    return target


def sign_in(tab, email: str, password: str) -> None:
    tab.goto("/login/")
    tab.get_by_label("Email").fill(email)
    tab.get_by_label("Password").fill(password)
    tab.get_by_role("button", name="Sign in").click()
    tab.wait_for_load_state("networkidle")
