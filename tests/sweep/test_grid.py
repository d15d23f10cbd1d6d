"""Grid expansion, keys and batching (pure functions, no Ray, no MLflow)."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys

import pytest

from sweep.config import load
from sweep.grid import batches, expand, varying_fields
from sweep.schema import TrialSpec
from tests.sweep.conftest import CONF, compose, sweep_env

GRIDS = sorted(p.stem for p in (CONF / "grid").glob("*.yaml"))
REQUIRED = ["smoke", "deep_linear", "deep_relu", "rank_one", "spline_1d", "two_layer_rank", "paper"]


def test_expansion_is_the_cartesian_product() -> None:
    cfg = {
        "model": {"depth": [2, 3, 4], "width": 7},
        "train": {"beta": [0.1, 1.0]},
        "seed": [0, 1],
    }
    specs = expand(load(cfg))
    assert len(specs) == 3 * 2 * 2
    got = {(s.model.depth, s.train.beta, s.seed) for s in specs}
    assert got == set(itertools.product([2, 3, 4], [0.1, 1.0], [0, 1]))
    assert {s.model.width for s in specs} == {7}
    assert all(isinstance(s, TrialSpec) for s in specs)
    with pytest.raises(AttributeError):
        specs[0].seed = 5  # frozen
    assert varying_fields(specs) == ["model.depth", "train.beta", "seed"]


def test_expansion_is_deterministic_and_deduplicated() -> None:
    cfg = {
        "model": {"depth": [2, 2, 3]},  # a repeated value
        "grid": {
            "name": "g",
            "blocks": {
                "A": {"model": {"depth": [2, 3]}, "experiment": "X"},
                "B": {"model": {"depth": [3, 4]}, "experiment": "X"},  # depth 3 repeats A's point
                "C": {"model": {"depth": 4}},  # same point but experiment "C": a different trial
            },
        },
    }
    a, b = expand(load(cfg)), expand(load(cfg))
    assert [s.key for s in a] == [s.key for s in b]
    assert len({s.key for s in a}) == len(a)
    assert [(s.experiment, s.model.depth) for s in a] == [("X", 2), ("X", 3), ("X", 4), ("C", 4)]
    assert expand(load({"model": {"depth": [2, 2, 3]}})) == expand(
        load({"model": {"depth": [2, 3]}})
    )


def test_blocks_merge_over_the_top_level_and_win() -> None:
    cfg = {
        "train": {"beta": [0.5, 0.7], "steps": 11},
        "grid": {"name": "g", "blocks": {"E1": {"train": {"beta": 2.0}}, "E2": {}}},
    }
    specs = expand(load(cfg))
    e1 = [s for s in specs if s.experiment == "E1"]
    e2 = [s for s in specs if s.experiment == "E2"]
    assert [s.train.beta for s in e1] == [2.0] and {s.train.steps for s in e1} == {11}
    assert sorted(s.train.beta for s in e2) == [0.5, 0.7]


def test_key_is_a_function_of_the_resolved_point() -> None:
    base = TrialSpec()
    assert TrialSpec().key == base.key
    for cfg in (
        {"model": {"depth": 3}},
        {"train": {"beta": 0.2}},
        {"seed": 1},
        {"data": {"n": 21}},
    ):
        assert expand(load(cfg))[0].key != base.key
    # int given as a float, and the point reached through a block: same key
    assert (
        expand(load({"model": {"depth": 3.0}}))[0].key
        == expand(load({"model": {"depth": 3}}))[0].key
    )


def test_keys_are_stable_across_processes() -> None:
    cfg = compose(["+grid=smoke"])
    here = [s.key for s in expand(load(cfg))]
    code = (
        "import json\n"
        "from sweep.config import load\nfrom sweep.grid import expand\n"
        f"cfg = json.loads({json.dumps(json.dumps(cfg))})\n"
        "print(json.dumps([s.key for s in expand(load(cfg))]))\n"
    )
    env = sweep_env(PYTHONHASHSEED="12345")
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(out.stdout) == here
    assert len(set(here)) == 8


def test_batches_group_equal_shapes_with_a_size_limit() -> None:
    specs = expand(
        load({"model": {"depth": [2, 3]}, "train": {"beta": [0.1, 0.2, 0.3]}, "seed": [0, 1, 2]})
    )
    groups = batches(specs, 4)
    assert sorted(s.key for g in groups for s in g) == sorted(s.key for s in specs)
    assert all(1 <= len(g) <= 4 for g in groups)
    assert all(len({s.batch_shape() for s in g}) == 1 for g in groups)
    # 9 trials per depth -> 4 + 4 + 1 for each of the two shapes
    assert sorted(len(g) for g in groups) == [1, 1, 4, 4, 4, 4]
    assert [[s.key for s in g] for g in groups] == [[s.key for s in g] for g in batches(specs, 4)]
    assert len(batches(specs, 100)) == 2
    with pytest.raises(ValueError, match="max_batch"):
        batches(specs, 0)


def test_required_grids_and_smoke_siblings_exist() -> None:
    for name in REQUIRED:
        assert name in GRIDS
    for name in GRIDS:
        if not name.endswith(("_smoke", "_full")) and name not in ("smoke", "paper"):
            assert f"{name}_smoke" in GRIDS, name
    assert "paper_full" in GRIDS


@pytest.mark.parametrize("name", GRIDS)
def test_every_grid_composes_validates_and_opens_with_its_command(name: str) -> None:
    lines = (CONF / "grid" / f"{name}.yaml").read_text().splitlines()
    assert lines[0] == "# @package _global_"  # Hydra reads the package header before any comment
    assert lines[1].startswith(f"# python -m sweep +grid={name}")
    cfg = compose([f"+grid={name}"])
    sweep = load(cfg)
    assert sweep.grid == name
    specs = expand(sweep)
    assert 1 <= len(specs) <= 400


def test_paper_grids_cover_every_experiment() -> None:
    for name in ("paper_smoke", "paper", "paper_full"):
        specs = expand(load(compose([f"+grid={name}"])))
        experiments = {s.experiment for s in specs}
        # E1..E10 of THEORY.md, plus R1 (rank-one data, §4) in the full-size grids
        assert experiments - {"R1"} == {f"E{i}" for i in range(1, 11)}
        assert ("R1" in experiments) == (name != "paper_smoke")


def test_block_fields_are_overridable_from_the_command_line() -> None:
    cfg = compose(["+grid=paper", "grid.blocks.E4.train.steps=7", "grid.blocks.E4.seed=[5]"])
    e4 = [s for s in expand(load(cfg)) if s.experiment == "E4"]
    assert e4 and {s.train.steps for s in e4} == {7} and {s.seed for s in e4} == {5}


def test_axis_list_is_overridable_from_the_command_line() -> None:
    cfg = compose(["+grid=smoke", "model.depth=[2,3,4,5]", "seed=[7]"])
    specs = expand(load(cfg))
    assert {s.model.depth for s in specs} == {2, 3, 4, 5} and {s.seed for s in specs} == {7}
    grown = {s.key for s in specs}
    before = {
        s.key for s in expand(load(compose(["+grid=smoke", "model.depth=[2,3,4]", "seed=[7]"])))
    }
    assert before < grown  # growing an axis only adds points: old keys are unchanged
