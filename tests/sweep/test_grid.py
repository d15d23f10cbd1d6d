"""Grid expansion, keys and batching (pure functions, no Ray, no MLflow)."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys

import pytest

from sweep.config import ConfigError, load
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


def test_varying_fields_is_the_definition_on_shared_and_unshared_instances() -> None:
    """varying_fields reads each distinct group instance once; it must equal the definition
    (params with more than one value over the specs) whether instances are shared or not."""
    from sweep.schema import DataSpec, ModelSpec, TrainSpec

    def definition(specs: list[TrialSpec]) -> list[str]:
        seen: dict[str, set] = {}
        for spec in specs:
            for k, v in spec.params().items():
                seen.setdefault(k, set()).add(v)
        return [k for k in specs[0].params() if len(seen[k]) > 1]

    shared = expand(load({"model": {"depth": [2, 3]}, "seed": [0, 1, 2]}))
    unshared = [  # equal values in fresh instances, one field varying in one spec only
        TrialSpec(data=DataSpec(), model=ModelSpec(), train=TrainSpec(beta=b), seed=0)
        for b in (0.1, 0.1, 0.1, 0.5)
    ]
    single = [TrialSpec(experiment="E1"), TrialSpec(experiment="E1")]
    mixed = [*shared, TrialSpec(data=DataSpec(n=shared[0].data.n + 1), seed=0, experiment="E2")]
    for specs in (shared, unshared, single, mixed, shared[:1]):
        assert varying_fields(specs) == definition(specs), specs[:2]
    assert varying_fields(unshared) == ["train.beta"]
    assert varying_fields(mixed) == ["data.n", "model.depth", "seed", "experiment"]
    assert varying_fields([]) == []


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
        timeout=300,
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


# ---------------------------------------------------------------- keys survive a new field


def _with_new_fields(monkeypatch) -> None:
    """Simulate a later schema: DataSpec and TrainSpec each gain a field with a default."""
    import dataclasses

    from sweep.config import GROUP_SPECS
    from sweep.schema import DataSpec, TrainSpec

    def grown(cls: type, name: str, default: object) -> type:
        extra = [(name, type(default), dataclasses.field(default=default))]
        return dataclasses.make_dataclass(cls.__name__, extra, bases=(cls,), frozen=True)

    monkeypatch.setitem(GROUP_SPECS, "data", grown(DataSpec, "noise", "none"))
    monkeypatch.setitem(GROUP_SPECS, "train", grown(TrainSpec, "newopt", 0))


def test_a_new_field_at_its_default_changes_no_key_and_no_data_seed(monkeypatch) -> None:
    cfg = compose(["+grid=smoke"])
    before = expand(load(cfg))
    _with_new_fields(monkeypatch)
    after = expand(load(cfg))
    assert all(hasattr(s.data, "noise") and s.train.newopt == 0 for s in after)
    assert "data.noise" in after[0].params() and "data.noise" not in before[0].params()
    assert [s.key for s in after] == [s.key for s in before]
    assert [s.data_seed for s in after] == [s.data_seed for s in before]
    assert [s.init_seed for s in after] == [s.init_seed for s in before]
    # ... and away from its default the field does change them (the rule is not "ignore it")
    import dataclasses

    s = after[0]
    w = dataclasses.replace(s, data=dataclasses.replace(s.data, noise="zca"))
    o = dataclasses.replace(s, train=dataclasses.replace(s.train, newopt=3))
    assert w.key != s.key and w.data_seed != s.data_seed
    assert o.key != s.key and o.data_seed == s.data_seed
    assert TrialSpec.from_params(s.params()).key == s.key


def test_keys_of_stores_written_before_the_rule_are_unchanged() -> None:
    import hashlib

    from sweep.schema import KEY_V1

    # key version 1 hashed every param; all of today's params but the ones added since are V1
    for s in expand(load(compose(["+grid=smoke"]))):
        v1 = {k: v for k, v in s.params().items() if k in KEY_V1}
        canon = json.dumps(v1, sort_keys=True, separators=(",", ":"), default=str)
        assert s.key == hashlib.sha256(canon.encode()).hexdigest()[:20]
    # the default point's key and data seed as computed by the code of commit f0e8078
    assert TrialSpec().key == "877e2453f223d8a6bb4e"
    assert TrialSpec(seed=3).data_seed == _v1_data_seed()


def _v1_data_seed() -> int:
    import hashlib

    canon = json.dumps(
        [{"kind": "gaussian", "targets": "gaussian", "n": 20, "d": 10, "outputs": 1}, 3],
        sort_keys=True,
    )
    return int(hashlib.sha256(canon.encode()).hexdigest()[:8], 16)


def quick(specs: list[TrialSpec], *, device: str = "cpu") -> list:
    """Results made from the spec alone (the recording path, without training)."""
    from sweep.schema import TrialResult

    return [TrialResult(key=s.key, status="finished", sgd_objective=1.0 + s.seed) for s in specs]


@pytest.mark.slow
def test_a_store_written_before_a_new_field_resumes_after_it_with_nothing_rerun(
    tmp_path, monkeypatch
) -> None:
    from sweep.runner import run_sweep

    cfg = {
        "grid": {"name": "keys"},
        "model": {"depth": [2, 3]},
        "seed": [0, 1],
        "runner": {"kind": "inline", "device": "cpu"},
        "tracking": {"uri": f"sqlite:///{tmp_path / 'mlruns.db'}", "artifacts": str(tmp_path)},
        "sweep": {"progress": False},
    }
    sweep = load(cfg)
    first = run_sweep(sweep, expand(sweep), batch_fn=quick, out=open(os.devnull, "w"))
    assert first.count("finished") == 4
    _with_new_fields(monkeypatch)
    sweep = load(cfg)
    specs = expand(sweep)
    assert all(hasattr(s.data, "whiten") for s in specs)
    again = run_sweep(sweep, specs, batch_fn=quick, out=open(os.devnull, "w"))
    assert (again.total, again.skipped, len(again.results)) == (4, 4, 0)


# ---------------------------------------------------------------- counting and streaming

SHAPED = [
    {
        "model": {"depth": [2, 3]},
        "train": {"beta": [0.1, 0.2, 0.3], "steps": [5, 6]},
        "seed": [0, 1, 2],
    },
    {
        "model": {"depth": [2, 2, 3]},
        "grid": {
            "name": "g",
            "blocks": {
                "A": {"model": {"depth": [2, 3]}, "experiment": "X"},
                "B": {"model": {"depth": [3, 4]}, "experiment": "X"},
                "C": {"model": {"depth": 4}},
            },
        },
    },
    {
        "grid": {
            "name": "g",
            "blocks": {  # three mutually overlapping blocks of one experiment
                "A": {"model": {"depth": [2, 3]}, "experiment": "X"},
                "B": {"model": {"depth": [3, 4]}, "experiment": "X"},
                "C": {"model": {"depth": [2, 4]}, "experiment": "X"},
            },
        },
    },
]


@pytest.mark.parametrize(
    "cfg", SHAPED + [None], ids=["axes", "two-overlap", "three-overlap", "paper"]
)
def test_count_axes_and_batch_count_from_blocks_equal_the_expansion(cfg) -> None:
    from sweep.grid import axes, batch_count, count

    sweep = load(cfg if cfg is not None else compose(["+grid=paper"]))
    specs = expand(sweep)
    assert count(sweep) == len(specs)
    assert axes(sweep) == varying_fields(specs)
    for size in (1, 4, 16):
        assert batch_count(sweep, size) == len(batches(specs, size))


def test_a_million_point_grid_is_refused_before_any_point_is_made(monkeypatch) -> None:
    import sweep.grid as grid

    def no_point(spec):  # pragma: no cover - would mean the grid was expanded
        raise AssertionError("a point was expanded")

    monkeypatch.setattr(grid, "check_spec", no_point)
    cfg = {"train": {"beta": [0.001 * (i + 1) for i in range(1000)]}, "seed": list(range(1001))}
    sweep = load(cfg)
    assert grid.count(sweep) == 1_001_000
    with pytest.raises(ConfigError, match="1001000 trials.*sweep.max_trials=100000"):
        next(grid.iter_specs(sweep))


def test_a_million_point_grid_streams_lazily() -> None:
    import sweep.grid as grid

    cfg = {
        "train": {"beta": [0.001 * (i + 1) for i in range(1000)]},
        "seed": list(range(1001)),
        "sweep": {"max_trials": 2_000_000},
    }
    sweep = load(cfg)
    it = grid.iter_specs(sweep)
    first = [next(it) for _ in range(3)]
    assert [s.seed for s in first] == [0, 1, 2] and {s.train.beta for s in first} == {0.001}
    # beta and seed are per network: one batch shape, counted without expanding
    assert grid.batch_count(sweep, 16) == -(-1_001_000 // 16)


def test_fast_key_path_is_the_canonical_json_of_key_params(monkeypatch) -> None:
    import hashlib

    from sweep.schema import _canonical_json

    cfg = {
        "data": {"kind": ["gaussian", "whitened"], "n": [4, 5], "d": 6},
        "model": {"activation": ["linear", "relu"], "bias": [False, True]},
        "train": {"beta": [0.1, 1e-300, 3.0], "init": ["he", "gaussian"]},
        "seed": [0, 7],
    }
    specs = expand(load(cfg))
    _with_new_fields(monkeypatch)
    grown = expand(load(cfg))
    for s in specs + grown:
        canon = json.dumps(s.key_params(), sort_keys=True, separators=(",", ":"), default=str)
        assert _canonical_json(s.key_params()) == canon
        assert s.key == hashlib.sha256(canon.encode()).hexdigest()[:20]
    assert [s.key for s in grown] == [s.key for s in specs]


def test_track_layers_is_an_axis_from_one_schema_field() -> None:
    """``train.track_layers`` became an axis by one line in sweep/schema.py (docs/architecture.md,
    "a sweep axis"): the config validates it, the key of every existing point is unchanged (its
    default is the trainer's own, True), batches split on it, and sweep.trial passes it to the
    trainer by name (the layer curves are recorded or not)."""
    from sweep.trial import _train_config, run_batch

    sweep = load({"train": {"track_layers": [True, False], "steps": 30, "log_every": 10}})
    on, off = expand(sweep)
    assert on.key == TrialSpec(train=on.train.__class__(steps=30, log_every=10)).key
    assert "train.track_layers" not in on.key_params() and off.key != on.key
    assert len(batches([on, off], 16)) == 2
    with pytest.raises(ConfigError, match=r"^train\.track_layers must be true or false"):
        load({"train": {"track_layers": "no"}})
    assert _train_config(on).track_layers is True and _train_config(off).track_layers is False
    (r_on,), (r_off,) = run_batch([on]), run_batch([off])
    assert r_on.status == r_off.status == "finished"
    assert "norm_ratio.1" in r_on.curves and "norm_ratio.1" not in r_off.curves
