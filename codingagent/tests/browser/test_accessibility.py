"""axe-core (vendored, no network) on the main pages in both themes: no serious or critical violation."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from codingagent.tests.browser.conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

AXE = (Path(__file__).parent / "vendor" / "axe.min.js").read_text()
# Evaluated through the DevTools protocol, so the page's CSP does not apply to the checker itself.
RUN_AXE = """async () => {
  const result = await axe.run(document, {resultTypes: ['violations']});
  return result.violations
    .filter(v => v.impact === 'serious' || v.impact === 'critical')
    .map(v => v.id + ' (' + v.impact + '): ' + v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(' | '));
}"""


def axe_violations(page) -> list[str]:
    page.wait_for_load_state("networkidle")
    page.evaluate(AXE)
    return page.evaluate(RUN_AXE)


def test_the_main_pages_have_no_serious_or_critical_accessibility_violations(page, live_app):
    log_in(page, email=live_app.demo_email, password=live_app.demo_password)
    project = f"/projects/{live_app.demo_project_pk}/"
    page.goto(project)
    page.wait_for_selector("#project-sessions .project-sessions")
    page.keyboard.press("Control+j")
    page.wait_for_url(re.compile(r"/sessions/\d+/$"))
    session = page.url.removeprefix(live_app.url)
    page.fill("#question-input", "show me a bar chart of revenue by region")
    page.keyboard.press("Enter")
    page.wait_for_selector("#session-runs .run-meta[data-status='succeeded']", timeout=90_000)
    pages = ["/", project, session, f"{project}gallery/", "/accounts/password_change/"]

    found = {}
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        page.evaluate("localStorage.removeItem('theme')")
        for path in pages:
            page.goto(path)
            assert page.evaluate("document.documentElement.dataset.theme") == scheme
            found[f"{scheme} {path}"] = axe_violations(page)
    page.context.clear_cookies()
    page.goto("/accounts/login/")
    found["login"] = axe_violations(page)

    assert {where: issues for where, issues in found.items() if issues} == {}
