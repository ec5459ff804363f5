"""Forgot your password? in a real Chromium: from the login page's link to a new password that logs in, the
emailed link read from the app's console mail backend (its log), with the CSP watched."""

from __future__ import annotations

import re

import pytest

from codingagent.tests.browser.conftest import OUTSIDER_EMAIL, OUTSIDER_PASSWORD, log_in
from codingagent.tests.browser.test_security import violations, watch

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

NEW_PASSWORD = "chosen-in-chromium-58"
LINK = re.compile(r"https?://\S+(/accounts/password-reset/[^/\s]+/[^/\s]+/)")


def _emailed_links(live_app) -> list[str]:
    return LINK.findall((live_app.data_dir / "daphne.log").read_text())


def test_forgot_your_password_from_the_login_page_to_a_new_password(page, live_app):
    problems = watch(page)
    page.goto("/accounts/login/")

    page.click("text=Forgot your password?")
    page.wait_for_url("**/accounts/password-reset/")
    page.fill("input[name=email]", OUTSIDER_EMAIL)
    page.click("form[action='/accounts/password-reset/'] button[type=submit]")
    page.wait_for_url("**/accounts/password-reset/sent/")
    sent_page = page.locator("main").inner_text()
    # The console backend wrote (and flushed) the mail to the server's log before it answered.
    links = _emailed_links(live_app)
    page.goto(links[-1])
    page.fill("input[name=new_password1]", NEW_PASSWORD)
    page.fill("input[name=new_password2]", NEW_PASSWORD)
    page.click("main form button[type=submit]")
    page.wait_for_url("**/accounts/password-reset/done/")
    page.click("main a:has-text('Log in')")
    log_in(page, email=OUTSIDER_EMAIL, password=NEW_PASSWORD)

    assert "Check your email" in sent_page and len(links) == 1
    assert page.url == f"{live_app.url}/"
    page.context.clear_cookies()
    page.goto("/accounts/login/")
    page.fill("input[name=username]", OUTSIDER_EMAIL)
    page.fill("input[name=password]", OUTSIDER_PASSWORD)
    page.click("form[action='/accounts/login/'] button[type=submit]")
    page.wait_for_selector("main .form-error")
    assert "/accounts/login/" in page.url  # the old password no longer works
    assert violations(page) == []
    assert problems == []
