"""Validation: every bad input gives a ConfigError with one sentence naming the field."""

from __future__ import annotations

import math
from dataclasses import fields

import pytest

from sweep.config import (
    ConfigError,
    DataConfig,
    ModelConfig,
    TrainConfig,
    load,
)
from sweep.grid import expand
from sweep.schema import DataSpec, ModelSpec, TrainSpec
from tests.sweep.conftest import CONF, REPO, compose, run_cli

# (config mapping, field the message must name)
BAD = [
    ({"model": {"width": -3}}, "model.width"),
    ({"model": {"width": 0}}, "model.width"),
    ({"model": {"depth": 1}}, "model.depth"),
    ({"model": {"depth": 2.5}}, "model.depth"),
    ({"train": {"beta": 0.0}}, "train.beta"),
    ({"train": {"beta": [0.1, -1.0]}}, "train.beta"),
    ({"train": {"lr": math.nan}}, "train.lr"),
    ({"model": {"activation": "tanh"}}, "model.activation"),
    ({"model": {"ball": "l1"}}, "model.ball"),
    ({"model": {"bias": "yes"}}, "model.bias"),
    ({"data": {"outputs": 30, "n": 20}}, "data.outputs"),
    ({"data": {"kind": "whitened", "n": 20, "d": 10}}, "data.n"),
    ({"data": {"kind": "spline_1d", "d": 3}}, "data.d"),
    ({"data": {"kind": "digits", "d": 10}}, "data.d"),
    ({"data": {"targets": "signed", "outputs": 2}}, "data.outputs"),
    ({"data": {"kind": "digits", "d": 64, "targets": "onehot", "outputs": 12}}, "data.outputs"),
    ({"data": {"kind": "mnist"}}, "data.kind"),
    ({"data": {"targets": "binary"}}, "data.targets"),
    ({"data": {"n": "twenty"}}, "data.n"),
    ({"model": {"dept": [2, 3]}}, "model.dept"),
    ({"grid": {"blocks": {"E1": {"model": {"widht": 5}}}}}, "grid.blocks.E1.model.widht"),
    ({"grid": {"blocks": {"E1": {"optimizer": {"lr": 1}}}}}, "grid.blocks.E1.optimizer"),
    ({"grid": {"blocks": {"E1": [1, 2]}}}, "grid.blocks.E1"),
    ({"grid": {"name": "bad name/x"}}, "grid.name"),
    ({"train": {"beta": []}}, "train.beta"),
    ({"seed": []}, "seed"),
    ({"seed": -1}, "seed"),
    ({"train": {"steps": 0}}, "train.steps"),
    ({"train": {"momentum": 1.0}}, "train.momentum"),
    ({"train": {"lr_decay": 1.5}}, "train.lr_decay"),
    ({"train": {"dtype": "float16"}}, "train.dtype"),
    ({"train": {"init": "xavier"}}, "train.init"),
    ({"train": {"polish": 10, "dtype": "float32"}}, "train.polish"),
    ({"train": {"batch_size": 50}, "data": {"n": 20}}, "train.batch_size"),
    ({"train": {"log_every": 0}}, "train.log_every"),
    ({"tracking": {"uri": "localhost:5000"}}, "tracking.uri"),
    ({"tracking": {"uri": "sqlite:/relative.db"}}, "tracking.uri"),
    ({"tracking": {"uri": "htp://127.0.0.1:5000"}}, "tracking.uri"),
    ({"tracking": {"bucket": "s3://x"}}, "tracking.bucket"),
    ({"runner": {"kind": "slurm"}}, "runner.kind"),
    ({"runner": {"gpus_per_task": 1.5}}, "runner.gpus_per_task"),
    ({"runner": {"gpus_per_task": -0.25}}, "runner.gpus_per_task"),
    ({"runner": {"cpus_per_task": 0}}, "runner.cpus_per_task"),
    ({"runner": {"num_cpus": 0}}, "runner.num_cpus"),
    ({"runner": {"batch_size": 0}}, "runner.batch_size"),
    ({"runner": {"max_retries": -1}}, "runner.max_retries"),
    ({"runner": {"device": "tpu"}}, "runner.device"),
    ({"sweep": {"rerun": "maybe"}}, "sweep.rerun"),
    ({"sweep": {"max_trials": 3}, "seed": [0, 1, 2, 3]}, "sweep.max_trials"),
    ({"optimizer": {"lr": 1}}, "optimizer"),
]


def _one_sentence(message: str) -> None:
    assert "\n" not in message, message
    assert message.endswith("."), message
    assert len(message) < 300, message


@pytest.mark.parametrize(("cfg", "field_name"), BAD, ids=[f for _, f in BAD])
def test_bad_input_names_the_field(cfg: dict, field_name: str) -> None:
    with pytest.raises(ConfigError) as info:
        expand(load(cfg))
    message = str(info.value)
    assert field_name in message, message
    _one_sentence(message)


def test_there_are_at_least_twenty_distinct_bad_inputs() -> None:
    assert len({repr(c) for c, _ in BAD}) >= 20


def test_defaults_are_valid_and_give_one_trial() -> None:
    specs = expand(load({}))
    assert len(specs) == 1
    assert specs[0].data == DataSpec() and specs[0].model == ModelSpec()


def test_schemas_mirror_trial_spec_field_for_field() -> None:
    for schema, spec in (
        (DataConfig, DataSpec),
        (ModelConfig, ModelSpec),
        (TrainConfig, TrainSpec),
    ):
        assert [f.name for f in fields(schema)] == [f.name for f in fields(spec)]
        assert [f.default for f in fields(schema)] == [
            getattr(spec(), f.name) for f in fields(spec)
        ]


@pytest.mark.parametrize("group", ["data", "model", "train", "runner", "tracking"])
def test_every_group_option_sets_every_field_with_a_comment(group: str) -> None:
    from sweep import config as c

    schema = {
        "data": DataSpec,
        "model": ModelSpec,
        "train": TrainSpec,
        "runner": c.RunnerConfig,
        "tracking": c.TrackingConfig,
    }[group]
    names = {f.name for f in fields(schema)}
    files = sorted((CONF / group).glob("*.yaml"))
    assert files
    for path in files:
        keys = set()
        for line in path.read_text().splitlines():
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            assert "#" in line, f"{path.name}: field without a comment: {line!r}"
            keys.add(line.split(":")[0].strip())
        assert keys == names, f"{path.name} sets {sorted(keys)}, schema has {sorted(names)}"
        load(compose([f"{group}={path.stem}"]))  # and it composes and validates


def test_command_line_list_on_a_plain_field_is_an_axis() -> None:
    cfg = compose(["+grid=deep_linear", "model.width=100", "train.beta=[0.01,0.1]"])
    specs = expand(load(cfg))
    assert {s.train.beta for s in specs} == {0.01, 0.1}
    assert {s.model.width for s in specs} == {100}


@pytest.mark.parametrize(
    ("args", "env", "field_name"),
    [
        (["+grid=no_such_grid"], {}, "grid"),
        (["grid=smoke"], {}, "+grid=NAME"),
        (["model.depth=1"], {}, "model.depth"),
        (["model.dept=3"], {}, "model.dept"),
        (["+grid=smoke", "model.width=[]"], {}, "model.width"),
        (["runner=nowhere"], {}, "runner"),
        ([], {"MLFLOW_TRACKING_URI": "not a uri"}, "tracking.uri"),
    ],
)
def test_cli_config_error_exits_2_before_mlflow_or_ray(args, env, field_name, tmp_path) -> None:
    proc = run_cli(args, tmp_path, **env)
    assert proc.returncode == 2, proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(errors) == 1, proc.stderr
    assert errors[0].startswith("config error: ") and field_name in errors[0], errors[0]
    _one_sentence(errors[0])
    assert "IMPORTED False False" in proc.stdout
    assert not (tmp_path / "mlruns.db").exists() and not (tmp_path / "mlartifacts").exists()


def test_unknown_grid_lists_the_grids_that_exist(tmp_path) -> None:
    proc = run_cli(["+grid=deep_lineer"], tmp_path)
    assert proc.returncode == 2
    assert "deep_linear" in proc.stderr and "smoke" in proc.stderr


def test_conf_is_found_from_any_working_directory(tmp_path) -> None:
    proc = run_cli(["+grid=smoke", "sweep.dry_run=true"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "sweep 'smoke': 8 trials" in proc.stdout
    assert "IMPORTED False False" in proc.stdout  # a dry run touches neither Ray nor MLflow
    assert REPO.is_dir()


# ---------------------------------------------------------------- one rule per field

TRAIN_NUMBERS = (
    "lr",
    "momentum",
    "lr_decay",
    "init_scale",
    "steps",
    "batch_size",
    "lr_decay_every",
    "polish",
    "log_every",
)


@pytest.mark.parametrize("name", TRAIN_NUMBERS)
def test_config_accepts_no_value_the_trainer_refuses(name: str) -> None:
    from solvers.sgd import TrainConfig as Trainer

    integer = isinstance(getattr(TrainSpec(), name), int)
    accepted = 0
    for value in (-2, -1e-12, 0, 1e-12, 0.5, 1, 2, 7):
        if integer and not float(value).is_integer():
            continue
        value = int(value) if integer else float(value)
        try:
            load({"train": {name: value}})
        except ConfigError:
            continue
        accepted += 1
        Trainer(**{"steps": 10, name: value})  # must not raise
    assert accepted >= 3


def test_lr_follows_the_trainers_rule_everywhere() -> None:
    from solvers.sgd import TrainConfig as Trainer

    # lr = 0 (train nothing: the init's objective) is accepted by the config and the trainer ...
    assert load({"train": {"lr": 0}}).blocks[0].values["train.lr"] == (0.0,)
    Trainer(steps=1, lr=0.0)
    # ... and a negative one by neither
    with pytest.raises(ConfigError, match="train.lr"):
        load({"train": {"lr": -1e-9}})
    with pytest.raises(ValueError, match="lr"):
        Trainer(steps=1, lr=-1e-9)


def test_allowed_names_are_the_ones_the_solvers_accept() -> None:
    import numpy as np

    from solvers import Problem
    from solvers.data import make_dataset
    from solvers.sgd import TrainConfig as Trainer

    def allowed(name: str, values: list) -> list:
        ok = []
        for v in values:
            try:
                load({name.split(".")[0]: {name.split(".")[1]: v}})
                ok.append(v)
            except ConfigError:
                pass
        return ok

    probe = ["he", "gaussian", "xavier", "float64", "float32", "float16", "linear", "relu", "tanh"]
    for v in allowed("train.init", probe):
        Trainer(steps=1, init=v)
    for v in allowed("train.dtype", probe):
        Trainer(steps=1, dtype=v)
    for v in allowed("model.activation", probe):
        Problem(X=np.eye(2), Y=np.ones((2, 1)), depth=2, beta=0.1, activation=v)
    assert allowed("train.init", probe) == ["he", "gaussian"]
    assert allowed("model.activation", probe) == ["linear", "relu"]
    kinds = ["gaussian", "whitened", "rank_one", "spline_1d", "digits", "moons"]
    for v in allowed("data.kind", kinds):
        d = 64 if v == "digits" else (1 if v == "spline_1d" else 6)
        make_dataset(v, "gaussian", n=4, d=d, outputs=1, seed=0)
    assert "moons" not in allowed("data.kind", kinds)


def test_grid_file_with_a_yaml_syntax_error_names_file_line_and_column(tmp_path) -> None:
    grid = tmp_path / "extra" / "grid"
    grid.mkdir(parents=True)
    (grid / "broken.yaml").write_text("grid:\n  name: broken\nmodel:\n  depth: [2, 3\n  width: 4\n")
    search = f"hydra.searchpath=[file://{tmp_path / 'extra'}]"
    proc = run_cli(["+grid=broken", search, "sweep.dry_run=true"], tmp_path)
    assert proc.returncode == 2, proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(errors) == 1, proc.stderr
    _one_sentence(errors[0])
    assert str(grid / "broken.yaml") in errors[0]
    assert "line 5, column 8" in errors[0] and "line 4, column 10" in errors[0], errors[0]
    assert not (tmp_path / "mlruns.db").exists()


def test_unparsable_command_line_value_names_the_field(tmp_path) -> None:
    proc = run_cli(["model.depth=[2,3", "sweep.dry_run=true"], tmp_path)
    assert proc.returncode == 2, proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(errors) == 1 and errors[0].startswith("config error: model.depth"), proc.stderr
    _one_sentence(errors[0])
