"""Fixtures for the analysis tests: REAL trials, REAL MLflow stores (never fakes).

- ``mini``: tiny trials of every paper experiment (E1–E11 and rank-one data, plus one trial
  made to diverge) run in-process by ``sweep.trial.run_batch`` and recorded by the sweep's
  own MLflow writer (``sweep.tracking.Tracker``) into a temporary SQLite store — once per
  session.
- ``smoke``: ``python -m sweep +grid=smoke runner=inline`` run as a subprocess into another
  temporary store — once per session.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Store:
    uri: str
    experiment: str
    root: Path
    specs: list  # TrialSpec, in recording order (for the smoke store: the grid's expansion)
    results: list  # TrialResult, same order (empty for the smoke store)

    def by_key(self) -> dict:
        return {s.key: (s, r) for s, r in zip(self.specs, self.results, strict=True)}


def _spec(experiment: str, data: dict, model: dict, train: dict, seed: int = 0):
    from sweep.schema import DataSpec, ModelSpec, TrainSpec, TrialSpec

    return TrialSpec(
        data=DataSpec(**data),
        model=ModelSpec(**model),
        train=TrainSpec(**train),
        seed=seed,
        experiment=experiment,
    )


def mini_specs() -> list:
    """Tiny versions of every block of conf/grid/paper.yaml (seconds, not minutes)."""
    w = dict(kind="whitened", n=8, d=12, outputs=1)
    specs = []
    for beta in (0.3, 1.0, 2.5):  # E1: K = 3, 2-layer linear
        specs.append(
            _spec(
                "E1",
                dict(w, outputs=3),
                dict(depth=2, width=6),
                dict(beta=beta, steps=300, lr=0.01, polish=200),
            )
        )
    for seed in (0, 1):  # E2: curves of a 3-layer linear net, K = 1
        specs.append(
            _spec(
                "E2",
                dict(kind="gaussian", n=20, d=6),
                dict(depth=3, width=5),
                dict(beta=0.1, steps=600, lr=0.005, log_every=50),
                seed,
            )
        )
    for depth in (3, 4):  # E3
        specs.append(
            _spec(
                "E3",
                dict(kind="gaussian", n=12, d=5),
                dict(depth=depth, width=4),
                dict(beta=2.0, steps=400, lr=0.005, polish=100),
            )
        )
    # E3, made to diverge: a step size far too large
    specs.append(
        _spec(
            "E3",
            dict(kind="gaussian", n=12, d=5),
            dict(depth=3, width=4),
            dict(beta=2.0, steps=100, lr=50.0),
            7,
        )
    )
    for seed in (0, 1):  # E4: minibatch SGD, 3-layer ReLU
        specs.append(
            _spec(
                "E4",
                w,
                dict(depth=3, width=10, activation="relu"),
                dict(beta=0.2, steps=300, lr=0.005, batch_size=4),
                seed,
            )
        )
    specs.append(
        _spec(
            "E5",
            w,
            dict(depth=2, width=6, activation="relu"),
            dict(beta=0.1, steps=300, lr=0.01, polish=100),
        )
    )
    # E5, made to fail: whitened data needs n <= d (make_dataset raises; the trial records it)
    specs.append(
        _spec(
            "E5",
            dict(kind="whitened", n=12, d=5),
            dict(depth=2, width=6, activation="relu"),
            dict(beta=0.1, steps=300, lr=0.01),
        )
    )
    specs.append(
        _spec(
            "R1",
            dict(kind="rank_one", n=10, d=5),
            dict(depth=2, width=6, activation="relu"),
            dict(beta=0.5, steps=300, lr=0.005, polish=100),
        )
    )
    for depth in (2, 3):  # E6: 1-D spline
        specs.append(
            _spec(
                "E6",
                dict(kind="spline_1d", n=6, d=1),
                dict(depth=depth, width=12, activation="relu", bias=True),
                dict(beta=0.01, steps=500, lr=0.002, polish=100),
            )
        )
    specs.append(
        _spec(
            "E7",
            dict(kind="gaussian", targets="onehot", n=9, d=10, outputs=3),
            dict(depth=2, width=8, batchnorm=True),
            dict(beta=0.1, steps=300, lr=0.002, polish=100),
        )
    )
    for ball in ("operator", "frobenius"):  # E8
        specs.append(
            _spec(
                "E8",
                dict(w, outputs=3),
                dict(depth=3, width=6, ball=ball),
                dict(beta=0.5, steps=200, lr=0.002),
            )
        )
    specs.append(
        _spec(
            "E9",
            dict(kind="gaussian", n=10, d=5, outputs=3),
            dict(depth=2, width=6, activation="relu"),
            dict(beta=0.5, steps=200, lr=0.002),
        )
    )
    specs.append(
        _spec(
            "E10",
            dict(kind="digits", targets="signed", n=20, d=64),
            dict(depth=2, width=10, activation="relu"),
            dict(beta=0.5, steps=200, lr=0.002),
        )
    )
    specs.append(  # deep_relu: the card's grid, one raw-data trial (a bracket, no P*)
        _spec(
            "deep_relu",
            dict(kind="gaussian", n=10, d=5),
            dict(depth=3, width=6, activation="relu"),
            dict(beta=0.2, steps=300, lr=0.005, batch_size=5),
        )
    )
    for width in (1, 8):  # E11: 2-layer ReLU on general data, width below / above m* (§10)
        specs.append(
            _spec(
                "E11",
                dict(kind="gaussian", n=10, d=2),
                dict(depth=2, width=width, activation="relu"),
                dict(beta=0.1, steps=300, lr=0.01, polish=50),
            )
        )
    return specs


def run_specs(specs: list) -> list:
    """Results of ``specs`` in order, batched the way the sweep batches them."""
    from sweep.grid import batches
    from sweep.trial import run_batch

    by_key = {}
    for batch in batches(specs, 16):
        for spec, res in zip(batch, run_batch(batch), strict=True):
            by_key[spec.key] = res
    return [by_key[s.key] for s in specs]


def record(uri: str, artifacts: Path, experiment: str, specs: list, results: list) -> None:
    """Write the trials with the sweep's own MLflow writer (parent run + child runs)."""
    from sweep.tracking import Store as TrackingStore
    from sweep.tracking import Tracker

    tracker = Tracker(TrackingStore(uri=uri, artifacts=artifacts.as_uri()), experiment)
    tracker.start(params={"grid": experiment, "trials": len(specs)})
    for spec, res in zip(specs, results, strict=True):
        tracker.record(spec, res)
    tracker.finish("FINISHED")


@pytest.fixture(scope="session")
def mini_runs() -> tuple[list, list]:
    """(specs, results) of :func:`mini_specs`, run once per session."""
    specs = mini_specs()
    return specs, run_specs(specs)


@pytest.fixture(scope="session")
def mini(tmp_path_factory: pytest.TempPathFactory, mini_runs: tuple[list, list]) -> Store:
    """The mini trials recorded in a temporary SQLite store by ``sweep.tracking.Tracker``."""
    root = tmp_path_factory.mktemp("mini")
    specs, results = mini_runs
    uri = f"sqlite:///{root / 'mlruns.db'}"
    record(uri, root / "mlartifacts", "mini", specs, results)
    return Store(uri=uri, experiment="mini", root=root, specs=specs, results=results)


@pytest.fixture(scope="session")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """A real ``python -m sweep +grid=smoke runner=inline`` into a temporary store."""
    root = tmp_path_factory.mktemp("smoke")
    uri = f"sqlite:///{root / 'mlruns.db'}"
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"
    env.pop("MLFLOW_TRACKING_URI", None)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "sweep",
            "+grid=smoke",
            "runner=inline",
            f"tracking.uri={uri}",
            f"tracking.artifacts={root / 'mlartifacts'}",
            f"hydra.run.dir={root / 'hydra'}",
        ],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    from sweep.config import load
    from sweep.grid import expand
    from tests.sweep.conftest import compose

    specs = expand(load(compose(["+grid=smoke"])))  # what the sweep was asked to run
    return Store(uri=uri, experiment="smoke", root=root, specs=specs, results=[])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def mlflow_server(smoke: Store) -> Iterator[str]:
    """``mlflow server`` on 127.0.0.1 over the smoke store; stopped (by its process group) at
    the end of the session."""
    port = _free_port()
    log = open(smoke.root / "mlflow_server.log", "w")  # noqa: SIM115 - closed in the finally
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            smoke.uri,
            "--default-artifact-root",
            (smoke.root / "mlartifacts").as_uri(),
            "--workers",
            "1",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        cwd=smoke.root,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300  # generous: a loaded machine
        while True:
            if proc.poll() is not None:
                log.flush()
                pytest.fail(
                    f"mlflow server exited with {proc.returncode}: {(smoke.root / 'mlflow_server.log').read_text()[-2000:]}"
                )
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("mlflow server did not answer /health within 300 s")
            time.sleep(0.5)
        yield url
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        log.close()


@pytest.fixture(scope="session")
def mini_report(mini: Store, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``python -m analysis`` on the mini store (a real subprocess); returns the report dir."""
    out = tmp_path_factory.mktemp("report")
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "analysis",
            "--experiment",
            mini.experiment,
            "--out",
            str(out),
            "--tracking-uri",
            mini.uri,
        ],
        cwd=out,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (out / "stdout.txt").write_text(proc.stdout)
    return out
