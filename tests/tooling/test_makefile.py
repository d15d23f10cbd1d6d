"""The Makefile's install step, run for real with a stand-in ``pip`` that logs its calls:

- ``make install`` installs with the constraints file (the versions CI tested);
- ``make run``/``make test`` do not install again while nothing changed, and do once
  ``pyproject.toml`` or ``constraints.txt`` is newer than the last install;
- ``make lock`` writes every installed package but the project and torch's build.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    for name in ("Makefile", "pyproject.toml", "constraints.txt"):
        shutil.copy(ROOT / name, tmp_path / name)
    bindir = tmp_path / ".venv" / "bin"
    bindir.mkdir(parents=True)
    (bindir / "python").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    (bindir / "pip").write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> "{tmp_path}/pip.log"\n'
        'if [ "$1" = freeze ]; then\n'
        "  printf '# Editable install with no version control (dualsweep==0.1.0)\\n'\n"
        "  printf -- '-e /src/dualsweep\\nmlflow==3.17.2\\nnvidia-cublas-cu12==12.8.4.1\\n'\n"
        "  printf 'ray==2.60.0\\ntorch==2.13.0+cpu\\ntriton==3.5.0\\n'\n"
        "fi\n"
    )
    for exe in ("python", "pip"):
        (bindir / exe).chmod(0o755)
    return tmp_path


def _make(project: Path, *targets: str) -> list[str]:
    """Run make; return the pip calls it made (and clear the log)."""
    subprocess.run(
        ["make", "-s", *targets], cwd=project, check=True, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    log = project / "pip.log"
    calls = log.read_text().splitlines() if log.exists() else []
    log.unlink(missing_ok=True)
    return calls


def _later(path: Path, than: Path) -> None:
    """Set ``path``'s modification time one minute after ``than``'s (no waiting)."""
    t = than.stat().st_mtime + 60
    os.utime(path, (t, t))


def test_install_uses_the_constraints_and_run_does_not_reinstall(project: Path) -> None:
    calls = _make(project, "install")
    assert calls == ["install -q -c constraints.txt -e .[test]"], calls  # torch imports here
    stamp = project / ".venv" / ".dualsweep-installed"
    assert stamp.exists()
    # nothing changed: `make run` and `make test` would go straight to their commands
    for target in ("run", "test-fast"):
        dry = subprocess.run(
            ["make", "-n", target], cwd=project, capture_output=True, text=True, check=True
        ).stdout
        assert "pip install" not in dry and "python -m" in dry, dry
    assert _make(project, "install") == []
    for changed in ("pyproject.toml", "constraints.txt"):
        _later(project / changed, stamp)
        dry = subprocess.run(
            ["make", "-n", "run"], cwd=project, capture_output=True, text=True, check=True
        ).stdout
        assert "pip install -q -c constraints.txt -e '.[test]'" in dry, (changed, dry)
        assert _make(project, "install") == ["install -q -c constraints.txt -e .[test]"]


def test_lock_pins_everything_but_the_project_and_torch(project: Path) -> None:
    assert _make(project, "lock") == ["freeze --exclude-editable"]
    lines = (project / "constraints.txt").read_text().splitlines()
    pins = [ln for ln in lines if not ln.startswith("#")]
    assert pins == ["mlflow==3.17.2", "ray==2.60.0"], lines
    assert any("make upgrade && make test && make lock" in ln for ln in lines)


def test_the_shipped_constraints_pin_what_pyproject_names() -> None:
    pins = dict(
        ln.split("==", 1)
        for ln in (ROOT / "constraints.txt").read_text().splitlines()
        if ln and not ln.startswith("#")
    )
    for name in ("mlflow", "ray", "hydra-core", "numpy", "scipy", "pandas", "clarabel"):
        assert name in pins, name
    assert not [n for n in pins if n == "torch" or n.startswith(("nvidia-", "triton"))]
    assert int(pins["mlflow"].split(".")[0]) < 4  # pyproject: mlflow<4
