"""The HTML report in a real headless browser: Debian's chromium driven by Playwright.

Set-up (CI): ``apt-get install -y chromium`` and ``pip install -e .[browser-test]``; never
``playwright install`` (it downloads its own browser). Skips, saying why, when either is missing.
Set REDRAFT_SCREENSHOT=path.png to keep a screenshot of the page with a run opened.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from report_fixtures import TEST_REFINE, run_experiment, small_spec

from redraft.report import build_report, write_report

CHROMIUM = os.environ.get("REDRAFT_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]

sync_playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed "
                                      "(pip install -e .[browser-test])").sync_playwright
if not Path(CHROMIUM).exists():
    pytest.skip(f"chromium not found at {CHROMIUM} (apt-get install -y chromium)", allow_module_level=True)


def test_report_page_loads_renders_its_charts_and_opens_a_trace(tmp_path):
    oracle_cell = {"name": TEST_REFINE, "options": {"rounds": 1, "verifier": "oracle"}, "matched_baselines": False}
    store, runs, _ = run_experiment(tmp_path / "runs.db",
                                    small_spec(strategies=[*small_spec()["strategies"], oracle_cell]))
    page_file = write_report(build_report(store, experiment="scripted"), tmp_path / "report.html", "html")
    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.on("request", lambda request: problems.append(f"network: {request.url}")
                    if not request.url.startswith(("file:", "data:")) else None)
            page.goto(page_file.as_uri())

            # the accuracy-vs-tokens chart: one mark per run, the oracle run drawn apart, a Pareto front
            assert page.locator("svg.acc-tokens .point").count() == len(runs)
            assert page.locator("svg.acc-tokens path.point").count() == 1  # the oracle run's diamond
            assert page.locator("svg.acc-tokens path.front").count() == 1
            assert page.locator("svg.acc-rounds path").count() >= 2
            assert page.locator("#runs tbody tr.oracle").count() == 1

            # sorting by accuracy puts the rows in descending order
            page.click("#runs th[data-key=accuracy]")
            column = page.eval_on_selector_all("#runs th", "ths => ths.findIndex(th => th.dataset.key === 'accuracy')")
            shown = page.locator(f"#runs tbody tr td:nth-child({column + 1}) b").all_inner_texts()
            values = [float(text.rstrip("%")) for text in shown]
            assert len(values) == len(runs) and values == sorted(values, reverse=True) and values[0] > values[-1]

            # a row opens its problems; a problem opens its full trace, with the key and the grade
            refine = next(r.run.id for r in runs if r.run.strategy == TEST_REFINE and not r.run.uses_oracle)
            page.click(f"#runs tbody tr[data-run='{refine}']")
            assert page.locator("table.problems tbody tr").count() == 12
            page.click("table.problems tbody tr[data-problem='3']")
            page.wait_for_selector("#trace .event.round")
            trace = page.inner_text("#trace")
            assert "key" in trace and "Round 2" in trace and "Final answer" in trace
            assert page.locator("#trace .badge").count() > 3
            if os.environ.get("REDRAFT_SCREENSHOT"):
                page.keyboard.press("Escape")
                page.screenshot(path=os.environ["REDRAFT_SCREENSHOT"], full_page=False)
        finally:
            browser.close()
    assert problems == []
