"""The command line as a Hydra user meets it: ``--help`` is the project's page, and Hydra's
multirun is refused in one sentence that gives the same sweep with lists (exit 2, before Ray,
MLflow or any store)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.sweep.conftest import run_cli


def test_help_is_the_projects_page(tmp_path: Path) -> None:
    r = run_cli(["--help"], tmp_path)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    for section in (
        "== A grid ==",
        "== Lists are axes ==",
        "== Dry run ==",
        "== Resume ==",
        "== Stores ==",
        "== Examples ==",
    ):
        assert section in out, section
    assert "powered by Hydra" not in out  # Hydra's generic page
    examples = out.split("== Examples ==")[1].split("==")[0].strip().splitlines()
    assert len(examples) == 3 and all(e.strip().startswith("python -m sweep") for e in examples)
    assert "grid: deep_linear" in out and "smoke" in out  # Hydra's list of the grid configs
    assert "IMPORTED False False" in out  # neither Ray nor MLflow for a help page
    assert not list(tmp_path.iterdir())  # no store, no outputs/


def test_the_help_examples_are_valid_commands(tmp_path: Path) -> None:
    out = run_cli(["--help"], tmp_path).stdout
    examples = out.split("== Examples ==")[1].split("==")[0].strip().splitlines()
    import shlex

    for example in examples:
        args = shlex.split(example)[3:]
        r = run_cli([*args, "sweep.dry_run=true", "sweep.dry_run_lines=1"], tmp_path)
        assert r.returncode == 0, (example, r.stderr)
        assert "trials in" in r.stdout, example


@pytest.mark.parametrize(
    ("argv", "suggested"),
    [
        (
            ["-m", "+grid=smoke", "model.depth=2,3"],
            "`python -m sweep +grid=smoke 'model.depth=[2,3]'`.",
        ),
        (
            ["+grid=smoke", "--multirun", "seed=0,1,2", "model.width=[4,8]", "train.lr=0.1"],
            "`python -m sweep +grid=smoke 'seed=[0,1,2]' 'model.width=[4,8]' train.lr=0.1`.",
        ),
        (["hydra.mode=MULTIRUN", "seed=range(3)"], "`python -m sweep 'seed=range(3)'`."),
    ],
)
def test_multirun_is_refused_in_one_sentence_pointing_to_lists(
    tmp_path: Path, argv: list[str], suggested: str
) -> None:
    r = run_cli(argv, tmp_path)
    assert r.returncode == 2, r.stdout + r.stderr
    err = r.stderr.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("config error: Hydra's multirun (-m) would launch a separate sweep")
    assert "write the values as lists" in err
    assert err.endswith(suggested), err
    assert "IMPORTED False False" in r.stdout
    assert not list(tmp_path.iterdir())  # nothing was started or written


def test_the_suggested_command_runs_the_same_trials_as_one_sweep(tmp_path: Path) -> None:
    import shlex

    err = run_cli(["-m", "+grid=smoke", "model.depth=2,3", "seed=0"], tmp_path).stderr
    command = err.strip().split("`")[1]
    args = shlex.split(command)[3:]
    r = run_cli([*args, "sweep.dry_run=true", "sweep.dry_run_lines=0"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "sweep 'smoke': 4 trials" in r.stdout  # depth 2 and 3 x activation linear, relu
