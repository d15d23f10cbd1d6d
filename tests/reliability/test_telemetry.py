"""MLflow's telemetry thread raced ``requests`` over ``os.environ`` and killed a driver with a
traceback (issue 19, defect 3). pytest's own ``PYTEST_CURRENT_TEST`` (and CI's ``CI``) turn
MLflow's telemetry off, so these tests take them out of the driver's environment: a real
``python -m sweep`` must have no telemetry client, and a store call that fails the way the
race failed (``RuntimeError`` out of ``log_batch`` in ``Tracker.start``) is the sweep's one
sentence, not a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sweep.store import Store, StoreFault
from sweep.tracking import Tracker
from tests.reliability import helpers as h

# what MLflow's telemetry reads as "a CI run or a test" (mlflow/telemetry/utils.py)
_CI_VARS = ("PYTEST_CURRENT_TEST", "GITHUB_ACTIONS", "CI", "GITLAB_CI", "JENKINS_URL", "TRAVIS",
            "BUILDKITE", "TF_BUILD", "CIRCLECI", "DO_NOT_TRACK")  # fmt: skip

_PROBE = """
import json, os, runpy, sys, threading
started = []  # names of every thread the driver starts (MLflow's telemetry: GetTelemetryConfig,
_start = threading.Thread.start  # MLflowTelemetryConsumer-N)
def start(self, *a, **k):
    started.append(self.name)
    return _start(self, *a, **k)
threading.Thread.start = start
sys.argv = ['sweep', *json.loads(os.environ['PROBE_ARGS'])]
try:
    runpy.run_module('sweep', run_name='__main__')
except SystemExit as e:
    code = e.code
else:
    code = 0
print('TELEMETRY', sorted({n for n in started if 'Telemetry' in n}), 'mlflow' in sys.modules)
sys.exit(code)
"""


def _driver_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in h.env(**extra).items() if k not in _CI_VARS}
    return env


def _probe(tmp_path: Path, **env: str) -> str:
    """The last line of a real sweep (2 tiny trials) run under :data:`_PROBE` (``env``: more
    environment variables)."""
    cmd = h.command("tele", 2, uri=f"sqlite:///{tmp_path / 'mlruns.db'}", artifacts=None,
                    hydra=tmp_path / "hy")  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE],
        cwd=tmp_path,
        env=_driver_env(PROBE_ARGS=json.dumps(cmd[cmd.index("sweep") + 1 :]), **env),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.strip().splitlines()[-1]


@pytest.mark.slow
def test_a_driver_runs_without_mlflow_telemetry(tmp_path: Path) -> None:
    assert _probe(tmp_path) == "TELEMETRY [] True"


@pytest.mark.slow
def test_telemetry_asked_for_runs_in_that_environment(tmp_path: Path) -> None:
    """The check above can fail: in the same environment, with MLFLOW_DISABLE_TELEMETRY=false
    (the user's choice wins over the driver's default), the same sweep starts MLflow's
    telemetry thread."""
    line = _probe(tmp_path, MLFLOW_DISABLE_TELEMETRY="false")
    assert line.startswith("TELEMETRY ['GetTelemetryConfig'"), line


def test_a_store_call_failing_as_the_race_did_is_one_sentence(tmp_path: Path) -> None:
    store = Store(uri=f"sqlite:///{tmp_path / 'mlruns.db'}", artifacts=(tmp_path / "a").as_uri())
    tracker = Tracker(store, "race")

    def racing(*args, **kwargs):
        raise RuntimeError("dictionary changed size during iteration")

    tracker.client.log_batch = racing  # what requests raised when telemetry unset its variable
    with pytest.raises(StoreFault) as info:
        tracker.start(params={"grid": "race"})
    text = str(info.value)
    assert len(text.splitlines()) == 1 and text.endswith("."), text
    assert "RuntimeError: dictionary changed size during iteration" in text, text
    assert "run the same command to resume" in text, text
    with pytest.raises(StoreFault):  # the sweep's cleanup says the same, touching nothing
        tracker.finish("FAILED")
