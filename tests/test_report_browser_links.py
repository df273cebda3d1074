"""The HTML report in a real headless browser, opened at a link to a problem the run does not have."""

from __future__ import annotations

from report_fixtures import TEST_REFINE, run_experiment, small_spec
from test_report_browser import CHROMIUM, CHROMIUM_ARGS, sync_playwright  # skips as that module does

from redraft.report import build_report, write_report


def test_a_link_to_a_problem_not_in_the_run_shows_a_message(tmp_path):
    store, runs, _ = run_experiment(tmp_path / "runs.db", small_spec(strategies=[{"name": TEST_REFINE}],
                                                                     limit=3))
    page_file = write_report(build_report(store, experiment="scripted"), tmp_path / "report.html", "html")
    refine = next(r.run.id for r in runs if r.run.strategy == TEST_REFINE)
    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.goto(f"{page_file.as_uri()}#run={refine}&problem=no-such-problem")
            page.wait_for_function("document.getElementById('trace').textContent !== 'loading…'")
            assert "no problem no-such-problem in run" in page.inner_text("#trace")
            page.keyboard.press("Escape")
            assert page.locator("#overlay").is_hidden()
            page.click("table.problems tbody tr[data-problem='1']")  # the page still works
            page.wait_for_selector("#trace .event.final")
        finally:
            browser.close()
    assert problems == []
