"""The contract between ``sweep`` (writer) and ``analysis`` (reader).

A trial is one point of a grid: a frozen :class:`TrialSpec` (data × model × train × seed)
with a stable ``key``; running it gives a :class:`TrialResult` (plain data, picklable, no
MLflow or Ray inside). The names under which results are stored in MLflow live here and
nowhere else: params are the flattened spec (``data.n``, ``model.depth``, ``train.lr`` …),
metrics are :meth:`TrialResult.metrics`, tags are the ``TAG_*`` constants.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from solvers.options import TrainConfig

__all__ = [
    "DataSpec",
    "LayerStats",
    "ModelSpec",
    "TrainSpec",
    "TrialResult",
    "TrialSpec",
    "EXTRA_METRICS",
    "FIELD_METRICS",
    "KEY_V1",
    "LAYER_METRICS",
    "LEGACY_METRICS",
    "PER_NETWORK",
    "STATUSES",
    "declared_metric",
]

# ---------------------------------------------------------------- trial specification


@dataclass(frozen=True)
class DataSpec:
    kind: str = "gaussian"  # inputs X: gaussian | whitened | rank_one | spline_1d | digits
    targets: str = "gaussian"  # targets Y: gaussian | onehot | signed (digits: two-class ±1)
    n: int = 20  # samples
    d: int = 10  # input dimension (1 for spline_1d; 64 for digits)
    outputs: int = 1  # K, columns of Y
    # transform of the raw X drawn from the seed (solvers.data.whiten): auto (the kind's own:
    # digits zca, others none) | none | zca | pca | exact (X Xᵀ = I_n, needs n ≤ d)
    whiten: str = "auto"


@dataclass(frozen=True)
class ModelSpec:
    depth: int = 2  # L, number of weight layers (>= 2)
    width: int = 10  # m, hidden width
    activation: str = "linear"  # linear | relu
    bias: bool = False  # unregularised hidden biases (THEORY §5)
    batchnorm: bool = False  # BN before the last hidden activation (THEORY §6)
    ball: str = "none"  # rescaled problem of THEORY §9: none | operator | frobenius


def _trainer(name: str) -> Any:
    """The default of ``solvers.sgd.TrainConfig`` option ``name``: a trainer option's default
    is written once, there (``solvers.options``), and is the sweep's default too."""
    return _TRAINER_FIELDS[name].default


_TRAINER_FIELDS = {f.name: f for f in fields(TrainConfig)}


@dataclass(frozen=True)
class TrainSpec:
    """The optimiser of a trial. Every field but ``beta`` is an option of
    ``solvers.sgd.TrainConfig`` of the same name, with its default (``sweep.trial`` passes
    each one on by name); ``steps`` has none there, so the sweep's is set here."""

    beta: float = 0.1  # weight decay β of THEORY §0 (sum objective)
    steps: int = 2000  # optimiser steps
    lr: float = _trainer("lr")  # learning rate (on the sum objective)
    momentum: float = _trainer("momentum")  # heavy-ball momentum, in [0, 1)
    batch_size: int = _trainer("batch_size")  # minibatch size; 0 = full batch (GD)
    lr_decay: float = _trainer("lr_decay")  # multiply lr by this ...
    lr_decay_every: int = _trainer("lr_decay_every")  # ... every this many steps (0 = never)
    init: str = _trainer("init")  # he | gaussian
    init_scale: float = _trainer("init_scale")  # multiplies the init's standard deviation
    polish: int = _trainer("polish")  # L-BFGS iterations after SGD (0 = none), float64 only
    dtype: str = _trainer("dtype")  # float64 | float32
    log_every: int = _trainer("log_every")  # record the objective (and layer ratios) this often
    track_layers: bool = _trainer("track_layers")  # record ‖W_l‖₂/‖W_l‖_F curves (E2) too


# The trial fields that may differ between the networks of one batch, and how each reaches
# ``solvers.sgd.train`` per network: "problem" (each network's own ``Problem``: its X, Y and
# β), "seed" (``train(seeds=...)``: init and sample order derive from the trial's key), a
# keyword of ``train`` taking one value per network, or "analysis" (not used by training at
# all, only by the per-trial analysis). Every other data/model/train field is shared by a
# batch (:meth:`TrialSpec.batch_shape`), so a new field is batch-safe by default.
PER_NETWORK: dict[str, str] = {
    "data.kind": "problem",
    "data.targets": "problem",
    "data.whiten": "problem",
    "train.beta": "problem",
    "train.lr": "lr",
    "train.momentum": "momentum",
    "train.init_scale": "init_scale",
    "model.ball": "analysis",
}
_GROUPS = ("data", "model", "train")
# data fields applied to the raw data after it is drawn: part of the key, not of the data seed
DATA_TRANSFORMS = frozenset({"data.whiten"})


class _once:  # noqa: N801 (used as a decorator, like functools.cached_property)
    """``functools.cached_property`` without its per-access lock (Python 3.11 takes an RLock
    on every first access; a 10^5-point resume reads 10^5 keys): the value is computed once
    and stored in the instance ``__dict__`` under the same name, which later reads find first.
    Computing twice in a race is harmless here: every value is a pure function of the spec."""

    def __init__(self, func: Callable[[Any], Any]) -> None:
        self.func = func
        self.__doc__ = func.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, inst: object, owner: type | None = None) -> Any:
        if inst is None:
            return self
        value = inst.__dict__[self.name] = self.func(inst)
        return value


@dataclass(frozen=True)
class TrialSpec:
    data: DataSpec = field(default_factory=DataSpec)
    model: ModelSpec = field(default_factory=ModelSpec)
    train: TrainSpec = field(default_factory=TrainSpec)
    seed: int = 0  # the seed axis: data and init seeds derive from it (and the key)
    experiment: str = ""  # paper experiment id (E1..E10 of docs/theory.md); "" outside paper grids

    def params(self) -> dict[str, object]:
        """Flattened resolved config: ``{"data.n": 20, "model.depth": 3, ..., "seed": 0}``."""
        return dict(self._params)

    @_once
    def _params(self) -> dict[str, object]:
        return {
            **_group_params("data", self.data),
            **_group_params("model", self.model),
            **_group_params("train", self.train),
            "seed": self.seed,
            "experiment": self.experiment,
        }

    def key_params(self) -> dict[str, object]:
        """The params that identify the trial: every param of key version 1 (:data:`KEY_V1`,
        the schema when keys were introduced), plus every field added since whose value
        differs from its schema default.

        So a field added with a default changes no key: a store written before the field
        existed resumes after it with nothing re-run (its trials were, implicitly, at the
        default), and today's stores keep their keys. A field added later must keep, as its
        default, the behaviour of the code before it existed.
        """
        return {
            name: value
            for name, value in self.params().items()
            if name in KEY_V1 or value != _default_of(self, name)
        }

    @_once
    def key(self) -> str:
        """Stable hash of :meth:`key_params` (same point → same key, any process, any later
        version of the schema that only added fields with defaults). Computed once per spec."""
        # == _canonical_json(self.key_params()): sorted names put the groups in the order
        # data.*, experiment, model.*, seed, train.*; each group's part is cached per value
        data, model, train = self.data, self.model, self.train
        parts = (  # the cache read inline first: 10^5 keys of a resume share a few groups
            data.__dict__.get("_key_json_cache") or _group_json("data", data),
            f'"experiment":{_encode(self.experiment)}',
            model.__dict__.get("_key_json_cache") or _group_json("model", model),
            f'"seed":{_encode(self.seed)}',
            train.__dict__.get("_key_json_cache") or _group_json("train", train),
        )
        canon = "{" + ",".join(p for p in parts if p) + "}"
        return hashlib.sha256(canon.encode()).hexdigest()[:20]

    @_once
    def data_seed(self) -> int:
        """Seed of the data: depends on the data spec and the seed axis only, so every model
        and optimiser of a grid sees the same dataset for the same seed. Like :attr:`key`,
        a data field added after key version 1 enters only when it differs from its default.
        Fields that transform the drawn data (:data:`DATA_TRANSFORMS`: ``whiten``) never enter:
        every whitening of one point and seed transforms the same raw X."""
        data = {}
        for qualified, k in _qualified("data", type(self.data)):
            v = getattr(self.data, k)
            if qualified not in DATA_TRANSFORMS and (
                qualified in KEY_V1 or v != _default_of(self, qualified)
            ):
                data[k] = v
        canon = json.dumps([data, self.seed], sort_keys=True)
        return int(hashlib.sha256(canon.encode()).hexdigest()[:8], 16)

    @property
    def init_seed(self) -> int:
        """Seed of the initialisation and minibatch order: derived from the full key."""
        return int(self.key[:8], 16)

    def batch_shape(self) -> tuple:
        """Trials with equal batch_shape train together in one batched call.

        Derived, not listed: every data/model/train param that is NOT in :data:`PER_NETWORK`
        (``(name, value)`` pairs in :meth:`params` order). A field added later is therefore
        shared by a batch — batches split on it — unless it is put in ``PER_NETWORK``, the one
        place that says what the batched trainer takes per network.
        """
        return self._batch_shape

    @_once
    def _batch_shape(self) -> tuple:
        return tuple(
            (name, value)
            for name, value in self.params().items()
            if name.split(".", 1)[0] in _GROUPS and name not in PER_NETWORK
        )

    @classmethod
    def from_params(cls, params: dict[str, object]) -> TrialSpec:
        """Inverse of :meth:`params`; values may be strings (as MLflow returns them)."""
        groups = {}
        for group, typ in (("data", DataSpec), ("model", ModelSpec), ("train", TrainSpec)):
            kwargs = {}
            for f in fields(typ):
                name = f"{group}.{f.name}"
                if name in params:
                    kwargs[f.name] = _cast(params[name], type(getattr(typ(), f.name)))
            groups[group] = typ(**kwargs)
        return cls(
            **groups,
            seed=int(float(params.get("seed", 0))),
            experiment=str(params.get("experiment", "")),
        )


# Key version 1: the param names of the schema when keys were introduced. These are always
# hashed (so keys of stores written since then never change); a field added after them is
# hashed only when it differs from its default (TrialSpec.key_params). Never edit this set.
KEY_V1 = frozenset(
    {
        *(f"data.{k}" for k in ("kind", "targets", "n", "d", "outputs")),
        *(f"model.{k}" for k in ("depth", "width", "activation", "bias", "batchnorm", "ball")),
        *(
            f"train.{k}"
            for k in (
                "beta",
                "steps",
                "lr",
                "momentum",
                "batch_size",
                "lr_decay",
                "lr_decay_every",
                "init",
                "init_scale",
                "polish",
                "dtype",
                "log_every",
            )
        ),
        "seed",
        "experiment",
    }
)


def _default_of(spec: TrialSpec, name: str) -> object:
    """Schema default of param ``name`` (of the group class ``spec`` actually holds)."""
    group, _, field_name = name.partition(".")
    if not field_name:
        return getattr(TrialSpec, group, None)
    return getattr(_default_instance(type(getattr(spec, group))), field_name)


def _canonical_json(params: dict[str, object]) -> str:
    """``json.dumps(params, sort_keys=True, separators=(",", ":"), default=str)``, written out
    for the scalar values of params (bit-identical; 10× faster, which a 10^6-point grid needs)."""
    return "{" + ",".join(f'"{name}":{_encode(params[name])}' for name in sorted(params)) + "}"


def _encode(v: object) -> str:
    """``json.dumps(v, default=str)`` of one param value."""
    if v is True or v is False or v is None:
        return "true" if v is True else ("false" if v is False else "null")
    if type(v) is int:
        return int.__repr__(v)
    if type(v) is float and math.isfinite(v):
        return float.__repr__(v)
    if type(v) is str and v.isascii() and v.isprintable() and '"' not in v and "\\" not in v:
        return f'"{v}"'
    return json.dumps(v, default=str)


def _memo(inst: object, attr: str, make: Callable[[], object]) -> object:
    """``make()`` computed once per (frozen, immutable) group instance and kept on it: grid
    points share their group instances, so a 10^6-point grid computes each part once."""
    value = inst.__dict__.get(attr)
    if value is None:
        value = make()
        object.__setattr__(inst, attr, value)  # not a field: eq, hash, asdict ignore it
    return value


def _group_params(group: str, inst: object) -> dict[str, object]:
    """``{"data.n": 20, ...}`` of one group instance (cached on it; do not mutate)."""
    return _memo(
        inst,
        "_params_cache",
        lambda: {q: getattr(inst, name) for q, name in _qualified(group, type(inst))},
    )


def group_params(group: str, inst: object) -> dict[str, object]:
    """``{"data.n": 20, ...}`` of one group instance (``group`` in data/model/train), as in
    :meth:`TrialSpec.params`; cached on the instance, so read it, never mutate it."""
    return _group_params(group, inst)


def _group_json(group: str, inst: object) -> str:
    """The key's JSON members of one group instance (no braces): KEY_V1 fields always, later
    fields off their default, sorted by name (cached on the instance)."""

    def make() -> str:
        default = _default_instance(type(inst))
        members = {
            qualified: getattr(inst, name)
            for qualified, name in _qualified(group, type(inst))
            if qualified in KEY_V1 or getattr(inst, name) != getattr(default, name)
        }
        return _canonical_json(members)[1:-1]

    return _memo(inst, "_key_json_cache", make)


@functools.cache
def _default_instance(cls: type) -> object:
    return cls()


@functools.cache
def _qualified(group: str, cls: type) -> tuple[tuple[str, str], ...]:
    """``(("data.n", "n"), ...)``: the param names of a group class, in field order."""
    return tuple((f"{group}.{f.name}", f.name) for f in fields(cls))


def _cast(value: object, typ: type) -> object:
    if not isinstance(value, str) or typ is str:
        return typ(value)
    if typ is bool:
        return value.strip().lower() in ("true", "1", "yes")
    return typ(float(value)) if typ is int else typ(value)


def param_types() -> dict[str, type]:
    """Python type of every param name (``analysis`` casts MLflow's strings with it)."""
    spec = TrialSpec()
    return {k: type(v) for k, v in spec.params().items()}


# ---------------------------------------------------------------- trial result

STATUSES = ("finished", "diverged", "failed")

TAG_TRIAL_KEY = "trial_key"
TAG_GRID = "grid"
TAG_STATUS = "trial_status"
TAG_SWEEP_ID = "sweep_id"
TAG_GIT_COMMIT = "git_commit"
TAG_VERSIONS = "versions"
TAG_NODE_ID = "ray_node_id"
TAG_DEVICE = "device"
TAG_FAMILY = "family"
TAG_NOT_COVERED = "not_covered"
TAG_KIND = "run_kind"  # "sweep" (parent) or "trial" (child)
TAG_DRIVER = "driver"  # "host:pid" of the driver process that owns a parent run
TAG_EXPERIMENT = "experiment"  # paper experiment id of a trial (also the param "experiment")
TAG_RESULT_REF = "trial_json"  # child run on a server: runs:/<parent>/results/<chunk>.jsonl

CURVE_PREFIX = (
    "curve."  # training curves: stepped metrics "curve.objective", "curve.norm_ratio.1" ...
)
ARTIFACT_RESULT = "trial.json"  # the full TrialResult (curves, arrays) as JSON
ARTIFACT_TRACEBACK = "traceback.txt"


# ---------------------------------------------------------------- declared metrics
# Every metric a trial logs is one of these names (TrialResult.metrics): a field or property of
# TrialResult (FIELD_METRICS), a statistic of layer i (``layer<i>.<LAYER_METRICS>``), or a
# family-specific scalar of TrialResult.extra (EXTRA_METRICS, each with its meaning).
# sweep.trial refuses to record an undeclared extra name; analysis reads declared names only.

FIELD_METRICS = (
    "sgd_objective",
    "polished_objective",
    "polished_rel_gap",
    "exact_objective",
    "abs_gap",
    "rel_gap",
    "certificate",
    "certified_gap",
    "rel_certified_gap",
    "wall_time",
    "w1_alignment",
    "m_star",
    "upper_bound",
    "lower_bound",
    "bracket_rel_width",
)
LAYER_METRICS = ("rank", "stable_rank", "norm_ratio", "fro_norm", "sv1", "align_next")

_SPLINE = {  # THEORY §5 / E6: solvers.structure.spline_stats of the fitted 1-D function
    "max_deviation": "largest distance of the fit from the linear interpolant of the data",
    "tv": "total variation of the fit's slope",
    "share_near_data": "share of that variation at kinks near data points",
    "tv_interpolant": "total variation of the linear interpolant's slope",
    "tv_ratio": "tv / tv_interpolant",
    "n_kinks": "number of kinks of the fit",
}
_COLLAPSE = {  # THEORY §6 / E7: solvers.batchnorm.neural_collapse of the last hidden features
    "nc1": "within-class / between-class variability",
    "nc2_cosine_mean": "mean cosine between centred class means",
    "nc2_cosine_target": "the simplex ETF's cosine, -1/(K-1)",
    "nc2_cosine_max_dev": "largest deviation of those cosines from the target",
    "nc2_norm_cv": "coefficient of variation of the class-mean norms",
    "nc3_cosine_mean": "mean cosine of the last layer's (centred) columns with the class means",
    "nc3_cosine_min": "smallest such cosine",
    "nc3_cosine_uncentred_mean": "mean cosine of the uncentred columns with the class means",
}
_RESCALED = {  # THEORY §9 / E8: solvers.rescaled.rescaled_both, per ball (op | fro)
    "primal": "P_R at the ball's optimal radius",
    "dual": "D at that radius",
    "gap": "(P_R - D) / P_R",
    "t": "the optimal radius",
}
_POLISH = {  # the L-BFGS polish after SGD (train.polish > 0): solvers.sgd.TrainOutput.polish_info
    "iterations": "L-BFGS iterations kept (0 when the polish did not lower the objective)",
    "evaluations": "objective evaluations",
    "grad_norm": "gradient norm at the end",
}
EXTRA_METRICS: dict[str, str] = {
    "null_objective": "½‖Y‖², the zero network's objective (P* equal to it: nothing to test)",
    "whitening_error": "‖X Xᵀ − I‖_F of the inputs (whitened iff ≤ solvers.detect.WHITENED_TOL)",
    "y_plus_norm": "‖y₊‖ (K = 1; THEORY §3)",
    "y_minus_norm": "‖y₋‖ (K = 1; THEORY §3)",
    **{f"polish.{k}": v for k, v in _POLISH.items()},
    "dual_bound": "the dual lower bound of the SGD network (solvers.dual_bound)",
    "deep_dual_limit": (
        "deep ReLU (K = 1, no bias): the most the optimised dual bound of this relaxation can "
        "reach (solvers.dual.DeepDual.limit); upper_bound − it is the relaxation's looseness "
        "plus the network's distance from P*, it − lower_bound what more optimisation could gain"
    ),
    "optimum_rel_gap": "the exact/certified solver's own relative gap",
    "p_star_any_width": "P* of any width, where the trial's width is below m*",
    "width_search_objective": (
        "the best width-m network refit from the wide optimum's neurons, where the trial's "
        "width m is below m* (an upper bound on the width-m P*; not SGD)"
    ),
    "min_width": (
        "the smallest optimal width, proven (solvers.min_width: every optimal network has "
        "exactly this many neurons); absent where not proven"
    ),
    "min_width_lower": (
        "a proven lower bound on the width of every optimal network (solvers.min_width); a "
        "trial narrower than it has P* of its width strictly above P*"
    ),
    "predicted_rank": "rank of the closed-form optimum's W_1 (THEORY §1)",
    **{f"spline.{k}": f"{v} (trained network)" for k, v in _SPLINE.items()},
    **{f"spline_opt.{k}": f"{v} (the 1-D optimal network)" for k, v in _SPLINE.items()},
    **{f"nc.{k}": f"{v} (trained network)" for k, v in _COLLAPSE.items()},
    **{f"nc_opt.{k}": f"{v} (closed-form optimal network)" for k, v in _COLLAPSE.items()},
    **{
        f"rescaled.{ball}_{k}": f"{v}, {name} ball"
        for ball, name in (("op", "operator-norm"), ("fro", "Frobenius"))
        for k, v in _RESCALED.items()
    },
}
# spellings found in stores written before the names were declared -> the declared name
# (analysis.load renames them, once, so no reader tries several spellings)
LEGACY_METRICS: dict[str, str] = {
    old: name
    for name in EXTRA_METRICS
    if name.startswith("rescaled.")
    for old in (name.replace(".", "_", 1), name.replace("_", ".", 1))
}


def declared_metric(name: str) -> bool:
    """Whether ``name`` is a metric a trial may log (see :data:`EXTRA_METRICS`)."""
    if name in EXTRA_METRICS or name in FIELD_METRICS:
        return True
    layer, _, stat = name.partition(".")
    return layer.startswith("layer") and layer[5:].isdigit() and stat in LAYER_METRICS


@dataclass
class LayerStats:
    rank: int  # numerical rank, singular values > rank_tol * max(1, σ_1)
    stable_rank: float  # ‖W‖_F² / ‖W‖_2²
    norm_ratio: float  # ‖W‖_2 / ‖W‖_F (1 for rank one)
    fro_norm: float  # ‖W‖_F
    top_sv: list[float]  # leading singular values (up to 5)
    align_next: (
        float | None
    )  # cosine between this layer's top right and the next layer's top left singular vectors


@dataclass
class TrialResult:
    key: str
    status: str  # finished | diverged | failed
    sgd_objective: float = math.nan  # THEORY §0 objective after SGD ALONE (before any polish)
    polished_objective: float | None = None  # after the L-BFGS polish (None when train.polish=0)
    exact_objective: float | None = None  # P* where THEORY covers the case
    family: str | None = None  # closed-form family used by solvers.solve
    not_covered: str | None = None  # why there is no exact P* (solvers.NotCovered message)
    certificate: float | None = (
        None  # certified lower bound on P* (solvers.certificate of the SGD net)
    )
    wall_time: float = 0.0  # seconds for this trial (its share of the batch + its own solve)
    layers: list[LayerStats] = field(default_factory=list)
    w1_alignment: float | None = None  # cosine of W_1's active directions with the closed-form ones
    # THEORY §10 / brackets (sweep.trial): active neurons of the optimal network (exact/certified
    # optima); [lower_bound, upper_bound] ∋ P* where P* itself is not known (bracket_rel_width =
    # (upper − lower)/|upper|; not_covered then says why there is no exact value)
    m_star: int | None = None
    upper_bound: float | None = None
    lower_bound: float | None = None
    bracket_rel_width: float | None = None
    # "attained" (a finite network reaches P*) | "infimum" (hidden biases pay a constant offset
    # with a vanishing bias-only neuron: solvers.solve.p_star_kind) | None (P* unknown)
    p_star_kind: str | None = None
    curve_steps: list[int] = field(default_factory=list)
    curves: dict[str, list[float]] = field(default_factory=dict)  # "objective", "norm_ratio.1" ...
    # family-specific scalars (spline, NC, §9 ...): only the names of EXTRA_METRICS
    extra: dict[str, float] = field(default_factory=dict)
    arrays: dict[str, list] = field(
        default_factory=dict
    )  # data for figures (spline samples, kinks)
    error: str | None = None  # traceback when status == "failed"
    device: str = "cpu"
    node_id: str | None = None
    # unix time its batch started and ended on the worker (sweep.runner): the child run's start
    started_at: float | None = None
    ended_at: float | None = None

    @property
    def abs_gap(self) -> float | None:
        if self.exact_objective is None:
            return None
        return self.sgd_objective - self.exact_objective

    @property
    def rel_gap(self) -> float | None:
        if self.exact_objective is None:
            return None
        return self.abs_gap / max(abs(self.exact_objective), 1e-300)

    @property
    def polished_rel_gap(self) -> float | None:
        """(polished − P*)/|P*|: how far SGD + L-BFGS polish got (None without either)."""
        if self.exact_objective is None or self.polished_objective is None:
            return None
        return (self.polished_objective - self.exact_objective) / max(
            abs(self.exact_objective), 1e-300
        )

    @property
    def certified_gap(self) -> float | None:
        if self.certificate is None:
            return None
        return self.sgd_objective - self.certificate

    @property
    def rel_certified_gap(self) -> float | None:
        if self.certificate is None:
            return None
        return self.certified_gap / max(abs(self.sgd_objective), 1e-300)

    def metrics(self) -> dict[str, float]:
        """Every finite scalar, under the names ``analysis`` reads: :data:`FIELD_METRICS`,
        ``layer<i>.<LAYER_METRICS>`` and the declared keys of ``extra`` (:data:`EXTRA_METRICS`)."""
        m: dict[str, float | None] = {name: getattr(self, name) for name in FIELD_METRICS}
        for i, ls in enumerate(self.layers, start=1):
            m[f"layer{i}.rank"] = ls.rank
            m[f"layer{i}.stable_rank"] = ls.stable_rank
            m[f"layer{i}.norm_ratio"] = ls.norm_ratio
            m[f"layer{i}.fro_norm"] = ls.fro_norm
            m[f"layer{i}.sv1"] = ls.top_sv[0] if ls.top_sv else None
            m[f"layer{i}.align_next"] = ls.align_next
        m.update(self.extra)
        return {k: float(v) for k, v in m.items() if v is not None and math.isfinite(float(v))}

    def check_declared(self) -> None:
        """``ValueError`` naming the first key of ``extra`` that is no declared metric
        (:data:`EXTRA_METRICS`): ``sweep.trial`` calls it on every result before it is
        recorded, so a misspelt metric fails its trial instead of reaching the store."""
        bad = sorted(k for k in self.extra if k not in EXTRA_METRICS)
        if bad:
            raise ValueError(
                f"TrialResult.extra[{bad[0]!r}] is no declared metric: declare it in "
                f"sweep.schema.EXTRA_METRICS (analysis reads only declared names)."
            )

    def to_json(self) -> str:
        d = asdict(self)
        return json.dumps(d, default=float)

    @classmethod
    def from_json(cls, text: str) -> TrialResult:
        d = json.loads(text)
        d["layers"] = [LayerStats(**ls) for ls in d.get("layers", [])]
        return cls(**d)
