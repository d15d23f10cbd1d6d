"""The MLflow UI over a finished sweep, in headless Chromium (``slow``), opened exactly with the
command the sweep prints (in its directory, without an activated venv):

- the child runs are named by what varies (``L=2 linear s0`` …), under their parent;
- their durations are the trials' own: each child starts when its batch started on the Ray
  worker (``trial.json``'s ``started_at``; the four batches of the smoke grid queue behind one
  CPU, so a start at dispatch would add the queue) and the UI shows end − start;
- the Source column says ``python -m sweep`` and the run page shows the git commit;
- the parent run's artifacts hold the sweep's ``summary.md``.

Skipped, with the reason, when Chromium or Playwright is missing (``make system-deps``).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from sweep.schema import TAG_KIND, TrialResult
from tests.analysis.test_browser import browser  # noqa: F401 (the fixture)
from tests.cluster.harness import free_port
from tests.sweep.conftest import sweep_env

pytestmark = pytest.mark.slow

NAMES = {f"L={d} {a} s{s}" for d in (2, 3) for a in ("linear", "relu") for s in (0, 1)}


def _seconds(text: str) -> float:
    """MLflow's duration text (``45.8s``, ``2.1min``, ``1.0h``, ``350ms``) in seconds."""
    m = re.fullmatch(r"([\d.]+)\s*(ms|s|min|h)", text.strip())
    assert m, text
    return float(m.group(1)) * {"ms": 1e-3, "s": 1.0, "min": 60.0, "h": 3600.0}[m.group(2)]


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A finished smoke sweep on local Ray with one CPU (its batches queue), in its own
    directory with the default store; returns the directory and the printed UI command."""
    d = tmp_path_factory.mktemp("ui")
    proc = subprocess.run(
        [sys.executable, "-m", "sweep", "+grid=smoke", "runner.num_cpus=1", "runner.batch_size=2",
         "sweep.progress=false", f"hydra.run.dir={d / 'hydra'}"],
        cwd=d, env=sweep_env(), capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    (line,) = [ln for ln in proc.stdout.splitlines() if ln.startswith("open the UI: ")]
    return d, line.removeprefix("open the UI: ")


@pytest.fixture(scope="module")
def ui(sweep_dir: tuple[Path, str]):
    """The printed command, run as printed in the sweep's directory by bash with a PATH that
    has no venv on it (plus ``--port``, to stay off 5000); yields its URL."""
    d, command = sweep_dir
    assert (
        command.startswith(".venv/bin/python -m mlflow ui ")
        or Path(command.split()[0]).is_absolute()
    ), command
    port = free_port()
    env = {k: v for k, v in sweep_env().items() if k not in ("VIRTUAL_ENV",)}
    env["PATH"] = "/usr/bin:/bin"
    log = (d / "ui.log").open("w")
    proc = subprocess.Popen(
        ["bash", "-c", f"{command} --port {port}"], cwd=d, env=env, stdout=log,
        stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300  # generous: a loaded machine
        while True:
            assert proc.poll() is None, (d / "ui.log").read_text()[-3000:]
            try:
                with urllib.request.urlopen(url + "/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the UI did not answer /health in 300 s"
            time.sleep(0.3)  # poll interval of a readiness wait
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
        log.close()


def test_the_ui_shows_named_trials_honest_durations_the_commit_and_the_summary(
    browser,  # noqa: F811
    ui: str,
    sweep_dir: tuple[Path, str],
) -> None:
    from mlflow.tracking import MlflowClient

    d, _ = sweep_dir
    client = MlflowClient(f"sqlite:///{d / 'mlruns.db'}")
    exp = client.get_experiment_by_name("smoke")
    runs = client.search_runs([exp.experiment_id])
    (parent,) = [r for r in runs if r.data.tags[TAG_KIND] == "sweep"]
    children = {r.info.run_name: r for r in runs if r.data.tags[TAG_KIND] == "trial"}
    assert set(children) == NAMES
    commit = parent.data.tags["mlflow.source.git.commit"]

    page = browser.new_page(viewport={"width": 2400, "height": 1200})
    try:
        page.goto(f"{ui}/#/experiments/{exp.experiment_id}/runs", timeout=90_000)
        page.locator(".ag-row").first.wait_for(timeout=90_000)
        close = page.get_by_role("button", name="Close")  # the assistant side panel, if shown
        if close.count():
            close.first.click()
        page.locator('button[data-component-id*="runnamecellrenderer"]').first.click()
        page.wait_for_function(
            "n => document.querySelectorAll('.ag-row').length >= n", arg=9, timeout=60_000
        )
        # ag-grid draws a row once per container (pinned columns, the rest): merge by row-index
        cells = page.eval_on_selector_all(
            ".ag-row",
            """rows => rows.map(r => [r.getAttribute('row-index'), Object.fromEntries(
                [...r.querySelectorAll('[col-id]')]
                .map(c => [c.getAttribute('col-id'), c.innerText.trim()]))])""",
        )
        merged: dict[str, dict[str, str]] = {}
        for index, part in cells:
            merged.setdefault(index, {}).update(part)
        rows = list(merged.values())
        shown = {}
        for row in rows:
            name = row.get("attributes.`Run Name`", "").splitlines()[-1:]
            if name and name[0] in NAMES:
                shown[name[0]] = row
        assert set(shown) == NAMES, rows  # every child, by name
        for name, row in shown.items():
            run = children[name]
            res = TrialResult.from_json(
                Path(client.download_artifacts(run.info.run_id, "trial.json", str(d / "dl")))
                .read_text()
            )  # fmt: skip
            # the child starts when its batch started on the worker, and the UI shows
            # end - start of the run (rounded as MLflow rounds)
            assert run.info.start_time == int(res.started_at * 1000)
            assert run.info.end_time >= int(res.ended_at * 1000)
            store_seconds = (run.info.end_time - run.info.start_time) / 1000
            assert abs(_seconds(row["duration"]) - store_seconds) <= 0.051 * max(1, store_seconds)
            assert row["attributes.`Source`"] == "python -m sweep"
        # the run page: Source with the git commit
        any_child = next(iter(children.values()))
        page.goto(
            f"{ui}/#/experiments/{exp.experiment_id}/runs/{any_child.info.run_id}",
            timeout=90_000,
        )
        page.get_by_text("python -m sweep").first.wait_for(timeout=60_000)
        assert commit[:7] in page.locator("body").inner_text()
        # the parent's summary artifact
        page.goto(
            f"{ui}/#/experiments/{exp.experiment_id}/runs/{parent.info.run_id}/artifacts",
            timeout=90_000,
        )
        page.get_by_text("summary.md").first.click(timeout=60_000)
        page.get_by_text("sweep 'smoke': FINISHED").first.wait_for(timeout=60_000)
        page.screenshot(path=str(d / "summary.png"))
    finally:
        page.close()
