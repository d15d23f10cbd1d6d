"""Browser checks (``slow``): the MLflow UI over a finished smoke sweep, and the report.

Headless Debian ``chromium`` driven by Playwright (``.ci/install-chromium.sh`` installs it;
``playwright install`` is never run). Skipped, with the reason, when either is missing.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from analysis import load, load_parents

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
KEY_METRICS = ("sgd_objective", "exact_objective", "rel_gap", "certificate")
LEAD_COPY = Path("/tmp/mlflow_ui.png")


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip(
        "playwright.sync_api",
        reason="python package playwright is not installed (pip install -e '.[test]')",
    )
    path = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    if not path:
        pytest.skip("Debian chromium is not installed (run .ci/install-chromium.sh as root)")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=path, args=ARGS)
        try:
            yield b
        finally:
            b.close()


def test_mlflow_ui_lists_the_trials(browser, mlflow_server, smoke, tmp_path) -> None:
    frame = load(smoke.experiment, smoke.uri)
    parent = load_parents(smoke.experiment, smoke.uri)["run_name"].iloc[0]
    from mlflow.tracking import MlflowClient

    exp_id = MlflowClient(smoke.uri).get_experiment_by_name(smoke.experiment).experiment_id
    page = browser.new_page(viewport={"width": 2000, "height": 900})
    try:
        page.goto(f"{mlflow_server}/#/experiments/{exp_id}/runs", timeout=90_000)
        page.locator(".ag-row").first.wait_for(timeout=90_000)  # the runs table
        close = page.get_by_role("button", name="Close")  # the assistant side panel, if shown
        if close.count():
            close.first.click()
        # the key metrics as columns
        page.locator('[data-testid="column-selection-dropdown"]').first.click()
        search = page.get_by_placeholder("Search columns")
        for name in KEY_METRICS:
            search.fill(name)
            page.get_by_text(name, exact=True).first.click()
        page.keyboard.press("Escape")
        # parent/child nesting: one parent row; expanding it lists every trial
        names = page.locator(".ag-row [col-id*='Run Name']")
        assert any(parent in t for t in names.all_inner_texts())
        page.locator('button[data-component-id*="runnamecellrenderer"]').first.click()
        expected = set(frame["run_name"])
        page.wait_for_function(
            "n => document.querySelectorAll('.ag-row').length >= n",
            arg=len(expected) + 1,
            timeout=30_000,
        )
        shown = {line.strip() for t in names.all_inner_texts() for line in t.splitlines()}
        assert expected <= shown, expected - shown
        headers = " ".join(page.locator(".ag-header-cell").all_inner_texts())
        for name in KEY_METRICS:
            assert name in headers
        shot = tmp_path / "mlflow_ui.png"
        page.screenshot(path=str(shot))
        assert shot.stat().st_size > 10_000
        shutil.copy(shot, LEAD_COPY)
    finally:
        page.close()


def test_report_renders_with_every_image(browser, mini_report, tmp_path) -> None:
    index = mini_report / "index.html"
    n_img = len(re.findall(r"<img ", index.read_text()))
    assert n_img > 0
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    try:
        page.goto(index.as_uri())
        page.wait_for_load_state("load")
        widths = page.eval_on_selector_all(
            "img", "imgs => imgs.map(i => i.complete ? i.naturalWidth : 0)"
        )
        assert len(widths) == n_img and all(w > 0 for w in widths), widths
        assert page.title().startswith("dualsweep report")
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        shutil.copy(tmp_path / "report.png", "/tmp/analysis_report.png")
    finally:
        page.close()
