"""Helpers for the sweep tests: compose the real conf/ tree with Hydra's compose API."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CONF = REPO / "conf"


def compose(overrides: list[str]) -> dict:
    """The composed config (plain dict, resolved, no ``hydra`` node) for ``overrides``."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from omegaconf import OmegaConf

    from sweep.config import register

    register()
    with initialize_config_dir(config_dir=str(CONF), version_base=None):
        cfg = hydra_compose(config_name="config", overrides=overrides)
    return OmegaConf.to_container(cfg, resolve=True)


def sweep_env(**extra: str) -> dict[str, str]:
    """Environment for a ``python -m sweep`` subprocess: the repo importable, one thread."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"
    env["MKL_NUM_THREADS"] = "1"
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("RAY_ADDRESS", None)
    env.update(extra)
    return env


def run_cli(
    args: list[str], cwd, modules: tuple[str, ...] = ("ray", "mlflow"), **env: str
) -> subprocess.CompletedProcess:
    """``python -m sweep ARGS`` in ``cwd``; its last line is ``IMPORTED`` and, for each of
    ``modules`` in order, whether the run imported it."""
    probe = (
        "import runpy, sys\n"
        f"sys.argv = ['sweep', *{args!r}]\n"
        "try:\n"
        "    runpy.run_module('sweep', run_name='__main__')\n"
        "except SystemExit as e:\n"
        "    code = e.code\n"
        "else:\n"
        "    code = 0\n"
        f"print('IMPORTED', *(m in sys.modules for m in {tuple(modules)!r}))\n"
        "sys.exit(code)\n"
    )
    return subprocess.run(
        [sys.executable, "-c", probe],
        cwd=cwd,
        env=sweep_env(**env),
        capture_output=True,
        text=True,
        timeout=600,  # seconds on a quiet machine; generous for a loaded one
    )


@pytest.fixture
def python() -> str:
    return sys.executable
