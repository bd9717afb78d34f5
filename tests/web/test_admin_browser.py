"""The admin pages in real headless Chromium (Playwright, Debian's chromium): an admin signs in, finds "my bill is
wrong" in the inbox from a simulated failed call, adds it to the billing question, sees the test console route it,
publishes; the next simulated call with that phrase routes without a restart, the analytics page shows both calls,
and rollback restores the previous version. Screenshots for the README."""
from __future__ import annotations

import pytest

from ivr.testing.stream_simulator import LiveServer
from tests.web.conftest import ADMIN_PASSWORD, in_a_browser
from tests.web.test_admin import call

playwright = pytest.importorskip("playwright.sync_api")
pytestmark = in_a_browser


def test_an_admin_teaches_the_bot_a_phrase_from_the_inbox_publishes_and_rolls_back(admin_app, browser, screenshots):
    failed = call(admin_app, "my bill is wrong", "no")
    assert failed.queue == "general"  # not understood: an agent had to ask again
    expect = playwright.expect
    with LiveServer(admin_app) as live:
        page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        requested: list[str] = []
        page.on("request", lambda request: requested.append(request.url))

        page.goto(live.url + "/admin/")
        page.fill("input[name=name]", "ada")
        page.fill("input[name=password]", ADMIN_PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url("**/admin/analytics")

        page.click("text=Inbox")
        row = page.locator("#inbox tr", has_text="my bill is wrong")
        expect(row).to_contain_text("denied")
        screenshots(page, "admin-inbox.png")
        row.locator("select[name=intent]").select_option("billing_question")
        row.locator("button[value=promote]").click()
        expect(page.locator(".flash")).to_contain_text("Added “my bill is wrong” to billing_question in the draft")

        page.click("text=Test console")
        page.fill("input[name=utterance]", "my bill is wrong")
        page.click("#console button.primary")
        draft = page.locator(".trial").first
        expect(draft.locator(".intent")).to_have_text("billing_question")
        expect(draft.locator(".does")).to_have_text("transfer to queue billing (intent)")
        expect(page.locator(".trial").nth(1).locator(".does")).to_have_text("listen for yes_no")
        screenshots(page, "admin-test-console.png")

        page.click("text=Grammar en-US")
        page.click("#check")
        expect(page.locator("#verdict")).to_contain_text("Valid.")
        expect(page.locator("#draft-figures")).to_contain_text("accuracy on 4 labelled utterances")
        screenshots(page, "admin-publish-check.png")
        page.fill("input[name=note]", "my bill is wrong → billing question")
        page.click("#publish")
        expect(page.locator(".flash")).to_contain_text("Published en-US version 2")

        routed = call(admin_app, "my bill is wrong")
        assert routed.queue == "billing" and routed.context["intent"] == "billing_question"

        page.click("text=Analytics")
        expect(page.locator("[data-metric=calls]")).to_contain_text("2")
        expect(page.locator("#intents")).to_contain_text("billing_question")
        page.wait_for_function("document.querySelector('#days').width > 0")
        screenshots(page, "admin-analytics.png")

        page.click("text=Grammar en-US")
        version_one = page.locator("#versions tr", has_text="seed file")
        version_one.locator("button", has_text="Roll back to this").click()
        expect(page.locator(".flash")).to_contain_text("Version 1 is back in service as version 3")
        screenshots(page, "admin-grammar-versions.png")
    assert all(url.startswith(live.url) for url in requested), "a page loaded something from elsewhere"
    assert call(admin_app, "my bill is wrong", "no").queue == "general"  # the seed grammar serves again
