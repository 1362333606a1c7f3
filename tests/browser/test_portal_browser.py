"""The portal end to end in a real browser: Playwright driving Debian's headless Chromium.

Run alone with `pytest -m browser`. Skipped cleanly when /usr/bin/chromium (or Playwright) is
missing; never runs `playwright install`. The screenshot lands in test-artifacts/portal.png.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.db import connections

from cdp.actor import Actor
from cdp.demo import seed_traits
from cdp.models import Profile
from consent.enforcement import profiles_consented_for
from consent.models import ConsentRecord
from consent.services import consent_grant, consent_seed_purposes, portal_link_create
from privacy.audit.models import AuditEntry
from tests.factories import profile_with_traits

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"no Chromium at {CHROMIUM}"),
]


@pytest.fixture
def browser_page(monkeypatch):
    sync_api = pytest.importorskip("playwright.sync_api")
    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls between
    # browser steps are synchronous and safe, so let Django allow them.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        context = browser.new_context(locale="en-GB", viewport={"width": 1100, "height": 900})
        page = context.new_page()
        page.set_default_timeout(15_000)
        try:
            yield page
        finally:
            context.close()
            browser.close()
            # ORM calls made while Playwright's loop runs get their own (context-local)
            # connections; close them here or PostgreSQL cannot drop the test database.
            connections.close_all()


def test_customer_withdraws_sms_marketing_in_the_portal(live_server, browser_page):
    consent_seed_purposes()
    seed_traits()
    person = profile_with_traits(name="李雷", birth_date="1988-02-03", country="CN")
    consent_grant(actor=Actor.system("pos"), subject_id=person.id, purpose="marketing_sms", method="pos_signature")
    issued = portal_link_create(actor=Actor.system("crm"), subject_id=person.id)
    link = live_server.url + issued.path
    page = browser_page

    # Opening the link lands on a token-free URL.
    page.goto(link)
    assert page.url == live_server.url + "/portal/"
    sms = page.locator("#purpose-marketing_sms")
    assert sms.locator("[data-state]").inner_text() == "Consent given"
    assert sms.locator("table.history tbody tr").count() == 1

    # One click withdraws; the state and a new history row show at once.
    sms.get_by_role("button", name="Withdraw consent").click()
    page.wait_for_url("**/portal/#purpose-marketing_sms")
    assert "Saved: you withdrew consent for “Marketing by SMS”." in page.locator(".messages").inner_text()
    sms = page.locator("#purpose-marketing_sms")
    assert sms.locator("[data-state]").inner_text() == "Consent withdrawn"
    rows = sms.locator("table.history tbody tr")
    assert rows.count() == 2
    assert "Consent withdrawn" in rows.first.inner_text() and "This page" in rows.first.inner_text()

    # Keyboard only: focus the analytics toggle and press Enter.
    analytics_button = page.locator("#purpose-analytics button[type=submit]")
    analytics_button.focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/portal/#purpose-analytics")
    assert page.locator("#purpose-analytics [data-state]").inner_text() == "Consent given"

    # Switch to Chinese.
    page.get_by_role("button", name="简体中文").click()
    page.wait_for_load_state()
    assert page.locator("html").get_attribute("lang") == "zh-Hans"
    assert page.locator("#name-marketing_sms").inner_text() == "短信营销"
    assert page.locator("#purpose-marketing_sms [data-state]").inner_text() == "已撤回同意"
    assert "您的隐私选择" in page.locator("h1").inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "portal.png"), full_page=True)

    # The link works once: the second visit is refused, kindly and in the chosen language.
    response = page.goto(link)
    assert response is not None and response.status == 410
    assert page.locator("h1").inner_text() == "此链接无法使用"
    page.screenshot(path=str(ARTIFACTS / "portal-refused.png"))

    withdrawal = ConsentRecord.objects.filter(subject=person, event="withdrawn").get()
    assert withdrawal.method == "portal_toggle" and withdrawal.actor_kind == "portal"
    sms_audience = profiles_consented_for(Profile.objects.all(), purpose="marketing_sms", channel="sms")
    assert not sms_audience.filter(pk=person.pk).exists()
    assert AuditEntry.objects.filter(action="portal.refused", subject_id=person.id).count() == 1
