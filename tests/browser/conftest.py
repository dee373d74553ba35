"""Real headless Chromium (Debian's /usr/bin/chromium) driven by Playwright's sync API against
pytest-django's live_server. Every test here is marked `browser`; without Chromium they skip."""

import os
import shutil

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "tests/browser/" in str(item.path).replace(os.sep, "/"):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="module", autouse=True)
def _sync_orm_beside_playwright():
    # Playwright's sync API keeps an event loop running in the test thread; the ORM calls the tests
    # make there (setting up data, checking what was stored) are plain synchronous calls.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        yield


# Module scope: Playwright's loop must be gone before other tests use async_to_sync in this thread.
@pytest.fixture(scope="module")
def chromium(_sync_orm_beside_playwright):
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        pytest.skip("Chromium is not installed: apt-get install -y chromium chromium-driver")
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield browser
    browser.close()
    playwright.stop()


@pytest.fixture
def page(chromium, live_server):
    """A fresh browser tab; JavaScript dialogs (alert, confirm) are recorded in `page.dialogs` and
    dismissed, uncaught page errors in `page.errors`."""
    context = chromium.new_context(base_url=live_server.url)
    tab = context.new_page()
    tab.dialogs, tab.errors = [], []
    tab.on("dialog", lambda dialog: (tab.dialogs.append(dialog.message), dialog.dismiss()))
    tab.on("pageerror", lambda error: tab.errors.append(str(error)))
    tab.set_default_timeout(10_000)
    yield tab
    context.close()


@pytest.fixture
def login(page):
    """Logs in through the login form, keyboard only."""

    def as_user(username, password="pw-secret-123"):
        page.goto("/accounts/login/")
        page.keyboard.type(username)  # the username field has autofocus
        page.keyboard.press("Tab")
        page.keyboard.type(password)
        page.keyboard.press("Enter")
        page.wait_for_url(lambda url: "/accounts/login/" not in url)
        return page

    return as_user
