"""``sweep.dry_run=true`` on big grids: the header, the first ``sweep.dry_run_lines`` trials,
the last few, one line counting the rest; every point checked; 0 lists them all."""

from __future__ import annotations

import itertools
import re
import subprocess
import sys

import pytest

from sweep.__main__ import DRY_RUN_TAIL
from sweep.config import ConfigError, load
from sweep.grid import check_points, count, expand, iter_specs, tail_specs
from tests.sweep.conftest import compose, run_cli, sweep_env
from tests.sweep.test_grid import SHAPED

MILLION_BETAS = [round(0.001 * (i + 1), 3) for i in range(1000)]
MILLION = {
    "grid": {"name": "million"},
    "train": {"beta": MILLION_BETAS},
    "seed": list(range(1001)),
    "sweep": {"max_trials": 2_000_000},
}
LINE = re.compile(r"^[0-9a-f]{20} ")
SUMMARY = re.compile(
    r"^\.\.\. (\d+) of the (\d+) trials not listed \(the first (\d+) and the last (\d+)"
)


def _cli(args: list[str], tmp_path) -> subprocess.CompletedProcess:
    return run_cli(args, tmp_path, ("torch", "mlflow", "ray", "scipy"))


def _keys(stdout: str) -> list[str]:
    return [ln.split()[0] for ln in stdout.splitlines() if LINE.match(ln)]


def _million_yaml(tmp_path) -> str:
    grid = tmp_path / "searchpath" / "grid"
    grid.mkdir(parents=True)
    (grid / "million.yaml").write_text(
        "# @package _global_\n"
        "grid:\n  name: million\n"
        f"train:\n  beta: [{','.join(map(str, MILLION_BETAS))}]\n"
        f"seed: [{','.join(map(str, MILLION['seed']))}]\n"
        "sweep:\n  max_trials: 2000000\n"
    )
    return f"hydra.searchpath=[file://{tmp_path / 'searchpath'}]"


# ---------------------------------------------------------------- the pieces, in process


@pytest.mark.parametrize(
    "cfg", [*SHAPED, None], ids=["axes", "two-overlap", "three-overlap", "paper"]
)
def test_tail_is_the_end_of_the_expansion(cfg) -> None:
    """tail_specs walks blocks and products backwards and skips points an earlier block
    holds: it must equal the expansion's last k trials, overlapping blocks included."""
    sweep = load(cfg if cfg is not None else compose(["+grid=paper"]))
    keys = [s.key for s in expand(sweep)]
    for k in (1, DRY_RUN_TAIL, len(keys) - 1, len(keys), len(keys) + 3):
        assert [s.key for s in tail_specs(sweep, k)] == keys[max(len(keys) - k, 0) :], k


def test_tail_of_a_million_point_grid_is_its_last_points() -> None:
    sweep = load(MILLION)
    assert count(sweep) == 1_001_000
    last = expand(load({"train": {"beta": 1.0}, "seed": [996, 997, 998, 999, 1000]}))
    assert [s.key for s in tail_specs(sweep, 5)] == [s.key for s in last]


def test_check_points_finds_a_bad_point_that_neither_end_shows() -> None:
    """data.n=20 > data.d=12 on whitened data is refused; it sits only in the middle."""
    cfg = {"data": {"kind": "whitened", "d": 12, "n": [4, 20, 5]}, "seed": list(range(10))}
    sweep = load(cfg)
    assert [s.data.n for s in itertools.islice(iter_specs(sweep), 3)] == [4, 4, 4]
    assert {s.data.n for s in tail_specs(sweep, DRY_RUN_TAIL)} == {5}
    with pytest.raises(ConfigError, match=r"data\.n must be <= data\.d"):
        check_points(sweep)
    check_points(load({**cfg, "data": {**cfg["data"], "n": [4, 12, 5]}}))  # all fine: silent


def test_check_points_makes_one_trial_per_distinct_point(monkeypatch) -> None:
    import sweep.grid as grid

    made = []
    monkeypatch.setattr(grid, "check_spec", made.append)
    check_points(load(MILLION))
    assert len(made) == 1000 and {s.train.beta for s in made} == set(MILLION_BETAS)


@pytest.mark.parametrize("value", [-2, 1.5, True, "10", None])
def test_dry_run_lines_must_be_a_whole_number_from_minus_one(value) -> None:
    with pytest.raises(ConfigError, match=r"^sweep\.dry_run_lines must be a whole number") as exc:
        load({"sweep": {"dry_run_lines": value}})
    assert str(exc.value).count(". ") == 0 and str(exc.value).endswith(".")
    for ok in (-1, 0, 1, 1000):
        assert load({"sweep": {"dry_run_lines": ok}}).options.dry_run_lines == ok


# ---------------------------------------------------------------- the command


def test_a_million_trial_dry_run_lists_the_ends_and_counts_the_rest(tmp_path) -> None:
    """Default sweep.dry_run_lines=1000: header, 1000 + DRY_RUN_TAIL trial lines, one summary
    line whose count is right; exit 0; torch, MLflow, Ray and scipy are not imported."""
    proc = _cli(["+grid=million", _million_yaml(tmp_path), "sweep.dry_run=true"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith(
        "sweep 'million': 1001000 trials in 62563 batches; axes: train.beta, seed"
    )
    keys = _keys(proc.stdout)
    assert len(keys) == 1000 + DRY_RUN_TAIL and all(
        LINE.match(ln) for ln in lines[1 : 1 + len(keys)]
    )
    summary = SUMMARY.match(lines[1 + len(keys)])
    assert summary, lines[1 + len(keys)]
    assert [int(g) for g in summary.groups()] == [
        1_001_000 - 1000 - DRY_RUN_TAIL,
        1_001_000,
        1000,
        DRY_RUN_TAIL,
    ]
    assert "sweep.dry_run_lines=0" in lines[1 + len(keys)]
    assert lines[2 + len(keys) :] == ["IMPORTED False False False False"]  # nor scipy
    composed = compose(["+grid=million", _million_yaml(tmp_path / "again")])
    first = itertools.islice(iter_specs(load(composed)), 1000)
    last_seeds = list(range(1001 - DRY_RUN_TAIL, 1001))
    last = expand(
        load({**composed, "train": {**composed["train"], "beta": 1.0}, "seed": last_seeds})
    )
    assert keys == [s.key for s in first] + [s.key for s in last]
    assert not (tmp_path / "mlruns.db").exists() and not (tmp_path / "mlartifacts").exists()


@pytest.mark.parametrize("limit", ["0", "-1"])
def test_dry_run_lines_0_lists_every_trial_in_the_grids_order(limit, tmp_path) -> None:
    args = ["+grid=paper", "sweep.dry_run=true"]
    keys = [s.key for s in expand(load(compose(["+grid=paper"])))]
    assert len(keys) > 100
    shown = _cli([*args, f"sweep.dry_run_lines={limit}"], tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert _keys(shown.stdout) == keys and " not listed " not in shown.stdout
    short = _cli([*args, "sweep.dry_run_lines=10"], tmp_path)
    assert short.returncode == 0, short.stderr
    assert _keys(short.stdout) == keys[:10] + keys[-DRY_RUN_TAIL:]
    assert (
        f"... {len(keys) - 10 - DRY_RUN_TAIL} of the {len(keys)} trials not listed" in short.stdout
    )


def test_a_bad_point_between_the_listed_ends_exits_2(tmp_path) -> None:
    args = ["data=whitened", "data.d=12", "data.n=[4,20,5]", "seed=[0,1,2,3,4,5,6,7,8,9]"]
    proc = _cli([*args, "sweep.dry_run=true", "sweep.dry_run_lines=3"], tmp_path)
    assert proc.returncode == 2, proc.stdout
    errors = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(errors) == 1 and errors[0].startswith("config error: data.n must be <= data.d"), (
        errors
    )
    assert len(_keys(proc.stdout)) == 3 and " not listed " not in proc.stdout


@pytest.mark.parametrize(
    "first", ["import solvers", "import solvers.solve", "from solvers.solve import closed_form"]
)
def test_solvers_names_are_what_they_were_whatever_is_imported_first(first) -> None:
    """solvers/__init__ imports on first use; the submodule solvers.solve must not replace
    the function solvers.solve, and the names of __all__ are the objects of their modules."""
    probe = (
        f"{first}\n"
        "import sys, types, solvers, solvers.dual, solvers.problem, solvers.solve\n"
        "mod = sys.modules['solvers.solve']\n"
        "from solvers import solve, data, Problem\n"
        "assert solve is solvers.solve is mod.solve and not isinstance(solve, types.ModuleType)\n"
        "assert isinstance(data, types.ModuleType) and Problem is solvers.problem.Problem\n"
        "assert solvers.certificate is solvers.dual.certificate\n"
        "assert set(solvers.__all__) <= set(dir(solvers))\n"
        "try:\n"
        "    solvers.no_such_name\n"
        "except AttributeError:\n"
        "    print('OK')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], env=sweep_env(), capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "OK", proc.stderr
