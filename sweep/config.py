"""Structured configs of ``python -m sweep`` and their validation.

The config tree (``conf/``) is typed by the dataclasses below, registered in Hydra's
ConfigStore as ``base_config``:

- ``data`` / ``model`` / ``train`` (:data:`DataAxes`, :data:`ModelAxes`, :data:`TrainAxes`)
  mirror :class:`sweep.schema.DataSpec`, ``ModelSpec`` and ``TrainSpec`` field for field,
  defaults included (they are generated from those dataclasses, so each field and default
  lives in one place; a ``conf/`` group file sets only what differs). Each field holds a value
  **or a list of values**: a list is a sweep axis (``'train.beta=[0.01,0.1]'`` sweeps β).
  (``TrainAxes`` is the sweep's view of the optimiser; ``solvers.sgd.TrainConfig`` is the
  trainer's own options, of which ``TrainSpec`` takes its defaults.)
- ``seed``: the seed axis (an int or a list of ints).
- ``grid``: the grid's name (= the MLflow experiment), its experiment id, and optional
  ``blocks`` — named sub-grids (``E1`` … ``E10`` in ``paper``) whose values are merged
  over the top-level ``data``/``model``/``train``/``seed`` (a block's own values win).
- ``runner`` (where trials run), ``tracking`` (where they are recorded), ``sweep``
  (resume and display options).

:func:`load` turns the composed config (a plain mapping) into a typed :class:`Sweep`, and
:func:`check_spec` checks one trial point; both raise :class:`ConfigError` carrying one
sentence that names the field and what is allowed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, make_dataclass
from typing import Any

from solvers.data import DATA_KINDS, TARGET_KINDS, WHITEN_KINDS, data_problem
from solvers.options import BALLS, DTYPES, INITS
from solvers.problem import ACTIVATIONS
from sweep.schema import DataSpec, ModelSpec, TrainSpec, TrialSpec

__all__ = [
    "ConfigError",
    "DataAxes",
    "GridConfig",
    "ModelAxes",
    "RunnerConfig",
    "Block",
    "Sweep",
    "SweepConfig",
    "SweepOptions",
    "TrackingConfig",
    "TrainAxes",
    "EXPECT_REACH_PARAM",
    "check_expect_reach",
    "check_spec",
    "check_uri",
    "load",
    "register",
    "GROUP_SPECS",
]


class ConfigError(ValueError):
    """A user-caused configuration error; its message is one sentence naming the field."""


# ---------------------------------------------------------------- schemas


def _open_schema(spec: type, name: str) -> type:
    """A copy of a frozen spec dataclass whose fields accept a value or a list of values."""
    default = spec()
    return make_dataclass(
        name,
        [(f.name, Any, field(default=getattr(default, f.name))) for f in fields(spec)],
        namespace={"__doc__": f"{spec.__name__} of sweep.schema; a list value is a sweep axis."},
    )


DataAxes = _open_schema(DataSpec, "DataAxes")
ModelAxes = _open_schema(ModelSpec, "ModelAxes")
TrainAxes = _open_schema(TrainSpec, "TrainAxes")
GROUP_SPECS: dict[str, type] = {"data": DataSpec, "model": ModelSpec, "train": TrainSpec}


@dataclass
class RunnerConfig:
    # local: Ray tasks (a new local instance, or a cluster) | inline: in the driver, no Ray
    kind: str = "local"
    # Ray cluster to join ("auto", "ray://HOST:10001"); None: $RAY_ADDRESS, else a new local instance
    address: str | None = None
    # CPUs of a new local Ray instance (None: all cores); ignored when joining a cluster
    num_cpus: int | None = None
    # GPUs of a new local Ray instance (None: detected); ignored when joining a cluster
    num_gpus: int | None = None
    # CPUs reserved by each task (one task trains one batch of trials)
    cpus_per_task: float = 1.0
    # GPUs reserved by each task; a fraction shares a GPU; > 0 trains on CUDA
    gpus_per_task: float = 0.0
    # times Ray re-runs a task whose worker process died
    max_retries: int = 2
    # at most this many trials of equal shape are trained together in one task
    batch_size: int = 16
    # auto: CUDA when the task got a GPU (inline: when torch sees one) | cpu | cuda
    device: str = "auto"


@dataclass
class TrackingConfig:
    # MLflow tracking URI; None: $MLFLOW_TRACKING_URI, else sqlite:///<cwd>/mlruns.db
    uri: str | None = None
    # artifact directory of new experiments on an embedded store (None: <cwd>/mlartifacts)
    artifacts: str | None = None


@dataclass
class GridConfig:
    # the grid's name = the MLflow experiment its trials are recorded in
    name: str = "default"
    # experiment id (docs/theory.md E1..E10) given to the trials outside blocks
    experiment: str = ""
    # sub-grids: id -> {data: {..}, model: {..}, train: {..}, seed: .., experiment: ..}
    blocks: dict[str, Any] = field(default_factory=dict)
    # an optimizer expectation for `python -m analysis --check`: SGD alone within 1e-4 of P* in
    # at least this fraction of each experiment's trials with P* (0 < x <= 1; null: none).
    # Logged on the sweep's parent run; `--expect-reach` on the command line wins over it.
    expect_reach: float | None = None


@dataclass
class SweepOptions:
    # run every trial again, even those that already have a FINISHED run
    rerun: bool = False
    # validate, expand and print the trials; run and record nothing
    dry_run: bool = False
    # show the live progress bar
    progress: bool = True
    # refuse grids that expand to more trials than this (a guard against typos)
    max_trials: int = 100_000
    # a dry run lists the first this many trials and the last few (0 or -1: every trial)
    dry_run_lines: int = 1000
    # after a sweep that ran to its end, run `python -m analysis` on its store and log the
    # experiments' verdicts on its parent run (report/verdicts.md, verdicts.json, README.md)
    verdicts: bool = False


@dataclass
class SweepConfig:
    # how X and Y are made (fields of sweep.schema.DataSpec)
    data: Any = field(default_factory=DataAxes)
    # the network (fields of sweep.schema.ModelSpec)
    model: Any = field(default_factory=ModelAxes)
    # the optimiser (fields of sweep.schema.TrainSpec)
    train: Any = field(default_factory=TrainAxes)
    # seed axis: data and init seeds derive from it (an int or a list of ints)
    seed: Any = 0
    # the grid's name, experiment id and blocks
    grid: GridConfig = field(default_factory=GridConfig)
    # where trials run
    runner: RunnerConfig = field(default_factory=RunnerConfig)
    # where they are recorded
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    # resume and display options
    sweep: SweepOptions = field(default_factory=SweepOptions)


def register() -> None:
    """Register the schemas in Hydra's ConfigStore (``base_config`` and one per group)."""
    from hydra.core.config_store import ConfigStore

    cs = ConfigStore.instance()
    cs.store(name="base_config", node=SweepConfig)
    cs.store(group="data", name="base_data", node=DataAxes)
    cs.store(group="model", name="base_model", node=ModelAxes)
    cs.store(group="train", name="base_train", node=TrainAxes)
    cs.store(group="runner", name="base_runner", node=RunnerConfig)
    cs.store(group="tracking", name="base_tracking", node=TrackingConfig)


# ---------------------------------------------------------------- typed sweep


@dataclass(frozen=True)
class Block:
    """One sub-grid: every field of a trial with its list of values (length 1 = fixed)."""

    experiment: str
    values: dict[str, tuple]  # "model.depth" -> (2, 3, 4), "seed" -> (0, 1), ...


@dataclass(frozen=True)
class Sweep:
    """A validated sweep: what to run (``blocks``), where, and where to record it."""

    grid: str
    blocks: tuple[Block, ...]
    runner: RunnerConfig
    tracking: TrackingConfig
    options: SweepOptions
    expect_reach: float | None = None  # grid.expect_reach (the optimizer expectation)


# ---------------------------------------------------------------- field rules

# allowed values: the names the solvers accept, taken from them (never copied here)
_CHOICES: dict[str, tuple[str, ...]] = {
    "data.kind": DATA_KINDS,
    "data.targets": TARGET_KINDS,
    "data.whiten": WHITEN_KINDS,
    "model.activation": ACTIVATIONS,
    "model.ball": ("none", *BALLS),
    "train.init": INITS,
    "train.dtype": DTYPES,
}
# (lower bound, inclusive?, upper bound, inclusive?) for numbers
_RANGES: dict[str, tuple[float, bool, float, bool]] = {
    "data.n": (1, True, math.inf, False),
    "data.d": (1, True, math.inf, False),
    "data.outputs": (1, True, math.inf, False),
    "model.depth": (2, True, math.inf, False),
    "model.width": (1, True, math.inf, False),
    "train.beta": (0, False, math.inf, False),
    "train.steps": (1, True, math.inf, False),
    "train.lr": (0, True, math.inf, False),  # the trainer's rule: lr = 0 keeps the init
    "train.momentum": (0, True, 1, False),
    "train.batch_size": (0, True, math.inf, False),
    "train.lr_decay": (0, False, 1, True),
    "train.lr_decay_every": (0, True, math.inf, False),
    "train.init_scale": (0, False, math.inf, False),
    "train.polish": (0, True, math.inf, False),
    "train.log_every": (1, True, math.inf, False),
    "seed": (0, True, math.inf, False),
}


def _field_types() -> dict[str, type]:
    spec = TrialSpec()
    return {k: type(v) for k, v in spec.params().items() if k != "experiment"}


_TYPES = _field_types()


def _describe(name: str, typ: type) -> str:
    if name in _CHOICES:
        return "one of " + ", ".join(_CHOICES[name])
    kind = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}[typ]
    if name not in _RANGES:
        return kind
    lo, lo_in, hi, hi_in = _RANGES[name]
    fmt = (lambda v: str(int(v))) if typ is int else (lambda v: f"{v:g}")
    if hi == math.inf:
        return f"{kind} {'>=' if lo_in else '>'} {fmt(lo)}"
    return f"{kind} in {'[' if lo_in else '('}{fmt(lo)}, {fmt(hi)}{']' if hi_in else ')'}"


def _coerce(name: str, value: object, typ: type) -> object:
    """One value of field ``name`` as ``typ``, or ``None`` when it is not allowed."""
    if typ is bool:
        out: object = value if isinstance(value, bool) else None
    elif typ is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        if isinstance(value, float) and value.is_integer():
            ok, value = True, int(value)
        out = value if ok else None
    elif typ is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        out = float(value) if ok and math.isfinite(float(value)) else None
    else:
        out = value if isinstance(value, str) else None
    if out is None:
        return None
    if name in _CHOICES and out not in _CHOICES[name]:
        return None
    if name in _RANGES:
        lo, lo_in, hi, hi_in = _RANGES[name]
        v = float(out)  # type: ignore[arg-type]
        if (v < lo or (v == lo and not lo_in)) or (v > hi or (v == hi and not hi_in)):
            return None
    return out


def _values(name: str, raw: object, where: str) -> tuple:
    """The tuple of allowed values of one field (a scalar or an axis list)."""
    typ = _TYPES[name]
    items = list(raw) if isinstance(raw, (list, tuple)) else [raw]
    label = f"{where}{name}"
    if not items:
        raise ConfigError(f"{label} is an empty axis; give at least one value.")
    out = []
    seen: set = set()  # values are scalars (hashable): a 10^4-value axis stays linear
    for item in items:
        v = _coerce(name, item, typ)
        if v is None:
            shown = f"{item!r} in {list(items)!r}" if isinstance(raw, (list, tuple)) else repr(item)
            raise ConfigError(f"{label} must be {_describe(name, typ)} (got {shown}).")
        if v not in seen:
            seen.add(v)
            out.append(v)
    return tuple(out)


def _flatten(section: Mapping, where: str) -> dict[str, object]:
    """``{"data": {"n": 5}, "seed": [0, 1]}`` -> ``{"data.n": 5, "seed": [0, 1]}``, checking names."""
    out: dict[str, object] = {}
    for key, value in section.items():
        if key == "seed":
            out["seed"] = value
        elif key in GROUP_SPECS:
            if not isinstance(value, Mapping):
                raise ConfigError(f"{where}{key} must be a mapping of {key} fields.")
            allowed = [f.name for f in fields(GROUP_SPECS[key])]
            for sub, v in value.items():
                if sub not in allowed:
                    raise ConfigError(
                        f"{where}{key}.{sub} names no field of {key}; allowed: {', '.join(allowed)}."
                    )
                out[f"{key}.{sub}"] = v
        else:
            raise ConfigError(
                f"{where}{key} names no trial field; allowed: data.*, model.*, train.*, seed."
            )
    return out


def _check_choice(name: str, value: object, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)} (got {value!r}).")
    return value  # type: ignore[return-value]


def _check_number(
    name: str, value: object, *, integer: bool, lo: float, optional: bool = False
) -> object:
    if value is None and optional:
        return None
    bad = isinstance(value, bool) or not isinstance(value, (int, float))
    if not bad:
        bad = not math.isfinite(value) or value < lo or (integer and float(value) != int(value))
    if bad:
        what = "an integer" if integer else "a number"
        extra = " or null" if optional else ""
        raise ConfigError(f"{name} must be {what} >= {lo:g}{extra} (got {value!r}).")
    return int(value) if integer else value


def _check_bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{name} must be true or false (got {value!r}).")
    return value


_URI = re.compile(
    r"^(?:sqlite:///.+"
    r"|(?:http|https)://[A-Za-z0-9.\-\[\]:]+(?::\d+)?(?:/.*)?"
    r"|(?:postgresql|mysql|mssql)(?:\+\w+)?://.+"
    r"|file:///.+)$"
)


EXPECT_REACH_PARAM = "grid.expect_reach"  # the parent run's param that carries it


def check_expect_reach(value: object, name: str = "grid.expect_reach") -> float | None:
    """An optimizer expectation: null, or a fraction in (0, 1] (the share of an experiment's
    trials with P* whose SGD must end within 1e-4 of it)."""
    if value is None:
        return None
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not 0.0 < value <= 1.0:
        raise ConfigError(f"{name} must be a fraction in (0, 1] or null (got {value!r}).")
    return float(value)


def check_uri(uri: str) -> str:
    """A tracking URI MLflow accepts: ``sqlite:///PATH``, ``http(s)://HOST[:PORT]``, a
    database URL (postgresql/mysql/mssql) or ``file:///PATH``."""
    if not isinstance(uri, str) or not _URI.match(uri) or uri.startswith("sqlite:////:"):
        raise ConfigError(
            f"tracking.uri must be sqlite:///PATH, http(s)://HOST[:PORT], a postgresql/mysql/mssql "
            f"URL or file:///PATH (got {uri!r})."
        )
    return uri


def _runner(raw: Mapping) -> RunnerConfig:
    _known(raw, RunnerConfig, "runner")
    r = RunnerConfig(**raw)
    _check_choice("runner.kind", r.kind, ("local", "inline"))
    if r.address is not None and (not isinstance(r.address, str) or not r.address.strip()):
        raise ConfigError(f"runner.address must be a Ray address or null (got {r.address!r}).")
    r.num_cpus = _check_number("runner.num_cpus", r.num_cpus, integer=True, lo=1, optional=True)
    r.num_gpus = _check_number("runner.num_gpus", r.num_gpus, integer=True, lo=0, optional=True)
    r.cpus_per_task = _check_number("runner.cpus_per_task", r.cpus_per_task, integer=False, lo=0)
    if r.cpus_per_task <= 0:
        raise ConfigError(f"runner.cpus_per_task must be a number > 0 (got {r.cpus_per_task!r}).")
    g = r.gpus_per_task
    if (
        isinstance(g, bool)
        or not isinstance(g, (int, float))
        or not math.isfinite(g)
        or g < 0
        or (g > 1 and not float(g).is_integer())
    ):
        raise ConfigError(
            f"runner.gpus_per_task must be 0, a fraction of one GPU in (0, 1] or a whole number of GPUs (got {g!r})."
        )
    r.max_retries = _check_number("runner.max_retries", r.max_retries, integer=True, lo=0)
    r.batch_size = _check_number("runner.batch_size", r.batch_size, integer=True, lo=1)
    _check_choice("runner.device", r.device, ("auto", "cpu", "cuda"))
    return r


def _tracking(raw: Mapping) -> TrackingConfig:
    _known(raw, TrackingConfig, "tracking")
    t = TrackingConfig(**raw)
    if t.uri is not None:
        check_uri(t.uri)
    if t.artifacts is not None and (not isinstance(t.artifacts, str) or not t.artifacts.strip()):
        raise ConfigError(
            f"tracking.artifacts must be a directory path or null (got {t.artifacts!r})."
        )
    return t


def _options(raw: Mapping) -> SweepOptions:
    _known(raw, SweepOptions, "sweep")
    o = SweepOptions(**raw)
    for name in ("rerun", "dry_run", "progress", "verdicts"):
        _check_bool(f"sweep.{name}", getattr(o, name))
    o.max_trials = _check_number("sweep.max_trials", o.max_trials, integer=True, lo=1)
    lines = o.dry_run_lines
    if isinstance(lines, bool) or not isinstance(lines, int) or lines < -1:
        raise ConfigError(
            f"sweep.dry_run_lines must be a whole number of trials for a dry run to list, "
            f"0 or -1 for every trial (got {lines!r})."
        )
    return o


def _known(raw: object, schema: type, where: str) -> None:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where} must be a mapping (got {raw!r}).")
    allowed = [f.name for f in fields(schema)]
    for key in raw:
        if key not in allowed:
            raise ConfigError(
                f"{where}.{key} names no field of {where}; allowed: {', '.join(allowed)}."
            )


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


def load(cfg: Mapping) -> Sweep:
    """Validate a composed config (plain mapping, e.g. ``OmegaConf.to_container(cfg)``).

    Raises :class:`ConfigError` with one sentence naming the first bad field.
    """
    if not isinstance(cfg, Mapping):
        raise ConfigError(f"the config must be a mapping (got {type(cfg).__name__}).")
    top = {k: cfg[k] for k in ("data", "model", "train", "seed") if k in cfg}
    unknown = set(cfg) - {
        "data",
        "model",
        "train",
        "seed",
        "grid",
        "runner",
        "tracking",
        "sweep",
        "hydra",
    }
    if unknown:
        raise ConfigError(
            f"{sorted(unknown)[0]} names no config section; allowed: data, model, train, seed, grid, runner, tracking, sweep."
        )
    base = _flatten(top, "")
    grid_raw = cfg.get("grid", {})
    _known(grid_raw, GridConfig, "grid")
    grid = GridConfig(**grid_raw)
    if not isinstance(grid.name, str) or not _NAME.match(grid.name):
        raise ConfigError(
            f"grid.name must be a name of letters, digits, '_', '.' or '-' (got {grid.name!r})."
        )
    if not isinstance(grid.experiment, str):
        raise ConfigError(f"grid.experiment must be a string (got {grid.experiment!r}).")
    if not isinstance(grid.blocks, Mapping):
        raise ConfigError(
            f"grid.blocks must be a mapping of block name -> settings (got {grid.blocks!r})."
        )

    raw_blocks: list[tuple[str, dict[str, object], str, set[str]]] = []
    if not grid.blocks:
        raw_blocks.append((grid.experiment, dict(base), "", set()))
    for bname, braw in grid.blocks.items():
        where = f"grid.blocks.{bname}."
        if braw is None:
            braw = {}
        if not isinstance(braw, Mapping):
            raise ConfigError(
                f"grid.blocks.{bname} must be a mapping of data/model/train/seed settings."
            )
        braw = dict(braw)
        exp = braw.pop("experiment", bname)
        if not isinstance(exp, str):
            raise ConfigError(f"{where}experiment must be a string (got {exp!r}).")
        own = _flatten(braw, where)
        raw_blocks.append((exp, {**base, **own}, where, set(own)))

    blocks = []
    for exp, flat, where, own in raw_blocks:
        values = {
            name: _values(name, flat[name], where if name in own else "")
            for name in _TYPES
            if name in flat
        }
        for name in _TYPES:  # fields missing from a plain mapping take the schema default
            values.setdefault(name, (TrialSpec().params()[name],))
        blocks.append(Block(experiment=exp, values=values))

    return Sweep(
        grid=grid.name,
        blocks=tuple(blocks),
        runner=_runner(cfg.get("runner", {})),
        tracking=_tracking(cfg.get("tracking", {})),
        options=_options(cfg.get("sweep", {})),
        expect_reach=check_expect_reach(grid.expect_reach),
    )


def check_spec(spec: TrialSpec) -> None:
    """Checks that involve several fields of one trial point: the data fields by the data
    generator's own rule (:func:`solvers.data.data_problem`: every spec ``make_dataset``
    refuses is refused here, naming the field), then the rules that tie train and model
    fields to the data."""
    d, m, t = spec.data, spec.model, spec.train

    def at() -> str:  # only when raising: a grid of 10^6 points is checked point by point
        return f" at the trial point {_point(spec)}"

    problem = data_problem(
        d.kind, d.targets, n=d.n, d=d.d, outputs=d.outputs, whiten=d.whiten, prefix="data."
    )
    if problem is not None:  # the generator's own rule (solvers.data), so no trial meets it
        raise ConfigError(f"{problem}{at()}.")
    if t.batch_size > d.n:
        raise ConfigError(
            f"train.batch_size must be 0 (full batch) or <= data.n (got batch_size={t.batch_size}, n={d.n}){at()}."
        )
    if t.polish > 0 and t.dtype != "float64":
        raise ConfigError(
            f"train.polish must be 0 when train.dtype is {t.dtype} (polish is float64 only){at()}."
        )
    if m.batchnorm and d.n < 2:
        raise ConfigError(f"data.n must be >= 2 with model.batchnorm (got n={d.n}){at()}.")


def _point(spec: TrialSpec) -> str:
    p = spec.params()
    keep = ("data.kind", "data.n", "data.d", "data.outputs", "model.depth", "model.width", "seed")
    return "(" + ", ".join(f"{k}={p[k]}" for k in keep) + ")"
