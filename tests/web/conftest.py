"""Fixtures of the admin pages: a small hotline the bot does not yet understand "my bill is wrong" in, an app that
serves it (its own catalog, so publishing never touches the other tests' shared one), signed-in clients, and
Debian's chromium driven headless by Playwright for the tests in a real browser."""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
import yaml
from werkzeug.security import generate_password_hash

from ivr.grammar.loader import FAST_LOADER
from ivr.store.admins import Admin, AdminAccounts
from tests.support import CLASSIFIER_CACHE, GRAMMARS, make_app

ADMIN_PASSWORD = "correct horse battery"
CHEAP_HASH = generate_password_hash(ADMIN_PASSWORD, method="pbkdf2:sha256:1000")  # scrypt in use; cheap in tests
KEEP = ("pay_bill", "billing_question", "internet_down", "speak_to_agent")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# the browser tests share one worker and one browser (~1.9 CPU s to start Playwright's driver and chromium)
in_a_browser = [pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"),
                pytest.mark.xdist_group("browser")]


class IndentedDumper(yaml.SafeDumper):
    """Block sequences indented under their key, as the shipped grammars are written."""

    def increase_indent(self, flow=False, indentless=False):
        return super().increase_indent(flow, False)


def small_hotline(folder: Path) -> Path:
    """The shipped en-US hotline with four intents, every queue open, "bill" and "wrong" gone from the billing
    question's phrases, and a confirmation asked below 0.7: "my bill is wrong" is guessed as paying a bill."""
    data = yaml.load((GRAMMARS / "en-US" / "hotline.yaml").read_text(), Loader=FAST_LOADER)
    data["intents"] = {name: intent for name, intent in data["intents"].items() if name in KEEP}
    question = data["intents"]["billing_question"]
    question["phrases"] = [p for p in question["phrases"] if "bill" not in p and "wrong" not in p]
    data["thresholds"]["confirm"] = 0.7
    for queue in data["queues"].values():
        queue.update(hours="always")
        queue.pop("timezone", None), queue.pop("holidays", None)
    (folder / "en-US").mkdir(parents=True)
    (folder / "en-US" / "hotline.yaml").write_text("# a small test hotline\n" + yaml.dump(
        data, Dumper=IndentedDumper, sort_keys=False, allow_unicode=True, width=1000))
    (folder / "en-US" / "regression.csv").write_text(
        "text,intent\nI'd like to pay now please,pay_bill\nthere's a fee I don't know,billing_question\n"
        "my internet doesn't work,internet_down\nI want a person,speak_to_agent\n")
    return folder


@pytest.fixture
def admin_app(settings, redis_client, clock, tmp_path):
    grammar_dir = small_hotline(tmp_path / "grammars")
    app = make_app(settings.replace(grammar_dir=str(grammar_dir), nlu_encoder=False, secret_key="k" * 32,
                           cache_dir=str(CLASSIFIER_CACHE)), redis_client, clock)
    accounts = AdminAccounts(app.extensions["ivr.store"].redis)
    accounts.save(Admin("ada", "admin", CHEAP_HASH))
    accounts.save(Admin("sam", "supervisor", CHEAP_HASH))
    return app


def csrf_token(client, path: str = "/admin/login") -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).get_data(as_text=True)).group(1)


def sign_in(client, name: str) -> str:
    """Sign in through the form; returns the session's CSRF token for the next forms."""
    response = client.post("/admin/login", data={"name": name, "password": ADMIN_PASSWORD,
                                                 "csrf_token": csrf_token(client)})
    assert response.status_code == 302, response.get_data(as_text=True)
    return csrf_token(client, "/admin/privacy")


@pytest.fixture
def ada(admin_app):
    client = admin_app.test_client()
    client.token = sign_in(client, "ada")
    return client


@pytest.fixture
def sam(admin_app):
    client = admin_app.test_client()
    client.token = sign_in(client, "sam")
    return client


@pytest.fixture
def screenshots():
    """Saves a page as one of the README's screenshots (`docs/screenshots/`) with IVR_TEST_SCREENSHOTS=1; otherwise
    does nothing (a test run leaves the work tree as it was, and a full-page capture costs the browser ~0.3 s)."""
    folder = Path(__file__).resolve().parents[2] / "docs" / "screenshots"

    def shoot(page, name: str) -> None:
        if os.environ.get("IVR_TEST_SCREENSHOTS"):
            folder.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(folder / name), full_page=True)

    return shoot


@pytest.fixture(scope="package")
def browser():
    """Headless Debian chromium (`playwright install` cannot download browsers here); each test opens its own
    context (cookies, storage)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield browser
        browser.close()
