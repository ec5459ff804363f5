"""The project page's Export menu opens as the same popover as on the session page (no unstyled list)."""

from __future__ import annotations

import pytest

from codingagent.tests.browser.conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

MENU = "details.export-menu"


def test_the_project_export_menu_opens_as_a_popover_beside_edit_and_delete(page, live_app, tmp_path):
    log_in(page, email=live_app.demo_email, password=live_app.demo_password)
    page.goto(f"/projects/{live_app.demo_project_pk}/")
    edit = page.locator(".project-actions a", has_text="Edit")
    before = edit.bounding_box()

    page.click(f"{MENU} > summary")
    page.locator(f"{MENU} .export-menu-items a", has_text="PDF report").wait_for()
    page.screenshot(path=str(tmp_path / "project-export-menu.png"))

    items = page.locator(f"{MENU} .export-menu-items")
    assert items.evaluate("e => getComputedStyle(e).position") == "absolute"
    assert items.evaluate("e => getComputedStyle(e).listStyleType") == "none"
    assert edit.bounding_box() == before  # opening the menu moves nothing aside
    summary_box = page.locator(f"{MENU} > summary").bounding_box()
    assert abs(summary_box["y"] - before["y"]) < 8  # Export sits in the row with Edit and Delete
    menu_box = items.bounding_box()
    assert menu_box["y"] >= summary_box["y"] + summary_box["height"]  # drops below its button, over the page
