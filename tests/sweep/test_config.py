"""Validation: every bad input gives a ConfigError with one sentence naming the field."""

from __future__ import annotations

import math
from dataclasses import fields

import numpy as np
import pytest

from sweep.config import (
    ConfigError,
    DataAxes,
    ModelAxes,
    TrainAxes,
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
    ({"grid": {"expect_reach": 1.5}}, "grid.expect_reach"),
    ({"grid": {"expect_reach": 0}}, "grid.expect_reach"),
    ({"grid": {"expect_reach": "high"}}, "grid.expect_reach"),
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


def test_grid_expect_reach_is_logged_on_the_parent_run_only_when_set() -> None:
    """``grid.expect_reach`` (the optimizer expectation ``python -m analysis --check`` reads
    back from the parent run) is a param of the parent run when set, absent when null."""
    from sweep.config import EXPECT_REACH_PARAM
    from sweep.runner import _start

    class Recorder:
        def start(self, *, params, **_) -> None:
            self.params = params

    logged = {}
    for expect in (0.9, None):
        sweep = load({"grid": {"expect_reach": expect}})
        assert sweep.expect_reach == expect
        tracker = Recorder()
        _start(tracker, sweep, expand(sweep), [], [], "")
        logged[expect] = tracker.params
    assert logged[0.9][EXPECT_REACH_PARAM] == 0.9
    assert EXPECT_REACH_PARAM not in logged[None]


def test_defaults_are_valid_and_give_one_trial() -> None:
    specs = expand(load({}))
    assert len(specs) == 1
    assert specs[0].data == DataSpec() and specs[0].model == ModelSpec()


def test_one_class_per_name_across_the_packages() -> None:
    """One ``TrainConfig`` (solvers.options, the trainer's options; the sweep's open schema is
    ``TrainAxes``): no class or alias name is defined twice in solvers/ and sweep/."""
    import ast

    where: dict[str, list[str]] = {}
    for package in ("solvers", "sweep"):
        for path in sorted((REPO / package).rglob("*.py")):
            for node in ast.parse(path.read_text()).body:
                names = [node.name] if isinstance(node, ast.ClassDef) else []
                if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
                    names = [t.id for t in node.targets if isinstance(t, ast.Name)]
                for name in names:
                    if name[:1].isupper() and not name.isupper():
                        where.setdefault(name, []).append(str(path.relative_to(REPO)))
    assert where["TrainConfig"] == ["solvers/options.py"]
    assert {k: v for k, v in where.items() if len(v) > 1} == {}


def test_trainer_options_have_the_trainers_defaults() -> None:
    """A TrainSpec field named like a trainer option has that option's default (lr, init …
    written once, in solvers.options.TrainConfig); only beta and steps are the sweep's own."""
    from solvers.sgd import TrainConfig as Trainer

    trainer = {f.name: f.default for f in fields(Trainer)}
    own = [f.name for f in fields(TrainSpec) if f.name not in trainer]
    assert own == ["beta"]
    for f in fields(TrainSpec):
        if f.name in trainer and f.name != "steps":  # the trainer's steps has no default
            assert f.default == trainer[f.name], f.name


def test_schemas_mirror_trial_spec_field_for_field() -> None:
    for schema, spec in (
        (DataAxes, DataSpec),
        (ModelAxes, ModelSpec),
        (TrainAxes, TrainSpec),
    ):
        assert [f.name for f in fields(schema)] == [f.name for f in fields(spec)]
        assert [f.default for f in fields(schema)] == [
            getattr(spec(), f.name) for f in fields(spec)
        ]


GROUP_SCHEMAS = ("data", "model", "train", "runner", "tracking")


def restated_defaults(conf) -> list[str]:
    """``"FILE: FIELD"`` for every value a config file under ``conf`` sets to the schema's own
    default (a group file, or ``config.yaml`` outside ``defaults``/``hydra``), and for every
    field set without a comment or naming no schema field: files state only what differs."""
    import yaml

    from sweep import config as c

    schemas = {
        "data": DataSpec,
        "model": ModelSpec,
        "train": TrainSpec,
        "runner": c.RunnerConfig,
        "tracking": c.TrackingConfig,
    }
    files = [(p, schemas[g]) for g in GROUP_SCHEMAS for p in sorted((conf / g).glob("*.yaml"))]
    files.append((conf / "config.yaml", c.SweepConfig))
    out = []
    for path, schema in files:
        name = str(path.relative_to(conf))
        defaults = {f.name: f.default for f in fields(schema)}
        for key, value in (yaml.safe_load(path.read_text()) or {}).items():
            if key in ("defaults", "hydra") and schema is c.SweepConfig:
                continue
            if key not in defaults:
                out.append(f"{name}: {key} (no field of {schema.__name__})")
            elif type(value) is type(defaults[key]) and value == defaults[key]:
                out.append(f"{name}: {key} (restates the default {value!r})")
        for line in path.read_text().splitlines():
            key = line.split(":")[0]
            if line.strip() and not line.startswith((" ", "#")) and "#" not in line:
                if key not in ("defaults", "hydra"):  # config.yaml's sections, not fields
                    out.append(f"{name}: {key} (set without a comment)")
    return out


def test_no_config_file_restates_a_schema_default() -> None:
    assert restated_defaults(CONF) == []


def test_a_restated_default_is_found(tmp_path) -> None:
    """The check above fails on a copy of conf/ with defaults restated (train.init = he,
    runner.address = null, seed = 0) and on a field set without its comment."""
    import shutil

    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf)
    for name, line in (
        ("train/sgd.yaml", "init: he  # restated"),
        ("runner/inline.yaml", "address: null  # restated"),
        ("config.yaml", "seed: 0  # restated"),
        ("model/relu.yaml", "width: 12"),
    ):
        with open(conf / name, "a") as f:
            f.write(line + "\n")
    assert restated_defaults(conf) == [
        "model/relu.yaml: width (set without a comment)",
        "train/sgd.yaml: init (restates the default 'he')",
        "runner/inline.yaml: address (restates the default None)",
        "config.yaml: seed (restates the default 0)",
    ]


@pytest.mark.parametrize("group", GROUP_SCHEMAS)
def test_every_group_option_composes_and_validates(group: str) -> None:
    files = sorted((CONF / group).glob("*.yaml"))
    assert files
    for path in files:
        extra = ["model=relu_bias"] if path.stem == "spline_1d" else []
        load(compose([f"{group}={path.stem}", *extra]))


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
        # issue 20's defect: the generator refused it in a running trial, the config took it
        (["data.targets=onehot_balanced", "data.n=10", "data.outputs=3"], {}, "data.n"),
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


def test_beta_follows_the_problems_rule() -> None:
    """train.beta is checked by the config (before any trial) and by solvers.Problem (the
    rule's owner): both accept exactly the same values."""
    import numpy as np

    from solvers import Problem

    for value in (-1.0, 0.0, 1e-300, 1e-12, 0.5, 3.0, math.inf, math.nan):
        try:
            load({"train": {"beta": value}})
            config = True
        except ConfigError:
            config = False
        try:
            Problem(X=np.eye(2), Y=np.ones((2, 1)), depth=2, beta=value)
            problem = True
        except ValueError:
            problem = False
        assert config == problem, value


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


# ---------------------------------------------------------------- one data-validity rule

# (data fields, the field the config error names): each is refused by solvers.data.make_dataset
GENERATOR_REFUSES = [
    ({"targets": "onehot_balanced", "n": 10, "outputs": 3}, "data.n"),
    (
        {"targets": "onehot_balanced", "kind": "digits", "d": 64, "n": 12, "outputs": 3},
        "data.targets",
    ),
    ({"targets": "onehot_balanced", "kind": "spline_1d", "d": 1, "n": 8}, "data.targets"),
    ({"kind": "digits", "targets": "signed", "d": 64, "n": 400}, "data.n"),  # 2 classes: < 1797
    ({"kind": "digits", "targets": "onehot", "d": 64, "n": 400, "outputs": 2}, "data.n"),
    ({"kind": "digits", "targets": "gaussian", "d": 64, "n": 1798}, "data.n"),
    ({"kind": "digits", "targets": "onehot", "d": 64, "n": 20, "outputs": 12}, "data.outputs"),
    ({"kind": "digits", "d": 10}, "data.d"),
    ({"kind": "whitened", "n": 20, "d": 10}, "data.n"),
    ({"kind": "gaussian", "whiten": "exact", "n": 20, "d": 10}, "data.n"),
    ({"kind": "spline_1d", "d": 3}, "data.d"),
    ({"kind": "spline_1d", "d": 1, "targets": "onehot"}, "data.targets"),
    ({"kind": "spline_1d", "d": 1, "outputs": 2}, "data.outputs"),
    ({"targets": "signed", "outputs": 2}, "data.outputs"),
    ({"targets": "signed", "n": 1}, "data.n"),
    ({"outputs": 30, "n": 20}, "data.outputs"),
    ({"targets": "onehot", "outputs": 4, "n": 3}, "data.outputs"),
    ({"kind": "moons"}, "data.kind"),
    ({"whiten": "exactly"}, "data.whiten"),
    ({"n": 0}, "data.n"),
]


def _make(data: DataSpec, prefix: str = "") -> str | None:
    """``None`` when make_dataset generates ``data``, else its ValueError's text."""
    from solvers.data import data_problem, make_dataset

    try:
        make_dataset(
            data.kind, data.targets, n=data.n, d=data.d, outputs=data.outputs,
            seed=0, whiten=data.whiten,
        )  # fmt: skip
    except ValueError as exc:
        fields_of = {f.name: getattr(data, f.name) for f in fields(DataSpec)}
        assert data_problem(**fields_of) == str(exc)  # make_dataset refuses by the one rule
        return data_problem(**fields_of, prefix=prefix)
    return None


def _config(data: DataSpec) -> str | None:
    """``None`` when the config accepts ``data`` (with every other field at its default),
    else the ConfigError's text."""
    try:
        expand(load({"data": {f.name: getattr(data, f.name) for f in fields(DataSpec)}}))
    except ConfigError as exc:
        return str(exc)
    return None


@pytest.mark.parametrize(
    ("data", "field_name"), GENERATOR_REFUSES, ids=[repr(d) for d, _ in GENERATOR_REFUSES]
)
def test_every_data_spec_the_generator_refuses_is_a_config_error(
    data: dict, field_name: str
) -> None:
    spec = DataSpec(**data)
    assert _make(spec) is not None  # the generator refuses it (at trial time) ...
    message = _config(spec)  # ... so the config refuses it before any trial, naming the field
    assert message is not None and message.startswith(field_name + " "), message
    _one_sentence(message)


def test_generator_and_config_agree_on_random_data_specs() -> None:
    """600 random data specs (every kind, target and whitening; sizes around each rule's
    edge): make_dataset generates exactly those the config accepts, and both say the same."""
    from solvers.data import DATA_KINDS, TARGET_KINDS, WHITEN_KINDS

    rng = np.random.default_rng(20)
    refused = 0
    for _ in range(600):
        kind = str(rng.choice(DATA_KINDS))
        d = int(rng.choice([1, 2, 5, 12, 64, 70]))
        spec = DataSpec(
            kind=kind,
            targets=str(rng.choice(TARGET_KINDS)),
            n=int(rng.choice([1, 2, 3, 5, 6, 9, 12, 20, 64, 66, 361, 1798])),
            d=d,
            outputs=int(rng.choice([1, 2, 3, 4, 10, 11, 13])),
            whiten=str(rng.choice(WHITEN_KINDS)),
        )
        if spec.kind == "digits" and spec.n > 300 and rng.random() < 0.8:
            continue  # keep the large-digits draws few: each whitens a 64-column matrix
        made, config = _make(spec, prefix="data."), _config(spec)
        assert (made is None) == (config is None), (spec, made, config)
        if made is not None:
            refused += 1
            assert config.startswith(f"{made} at the trial point"), (made, config)
    assert 100 < refused < 500  # both outcomes are well sampled
