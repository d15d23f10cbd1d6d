"""sweep.trial.run_batch: one batch of grid points → results, failures isolated per trial."""

from __future__ import annotations

import dataclasses
import math

import pytest

from sweep.schema import DataSpec, ModelSpec, TrainSpec, TrialResult, TrialSpec
from sweep.trial import run_batch
from tests.conftest import assert_close


def spec(*, seed: int = 0, **groups: dict) -> TrialSpec:
    base = TrialSpec(
        data=DataSpec(kind="whitened", n=8, d=12, outputs=1),
        model=ModelSpec(depth=3, width=4, activation="linear"),
        train=TrainSpec(beta=0.2, steps=400, lr=0.05, momentum=0.9, polish=60, log_every=50),
        seed=seed,
    )
    return dataclasses.replace(
        base, **{g: dataclasses.replace(getattr(base, g), **kw) for g, kw in groups.items()}
    )


def test_deep_linear_batch_reaches_exact_optimum_and_certificate_is_tight() -> None:
    specs = [spec(seed=s, train={"beta": b}) for s in (0, 1) for b in (0.1, 0.5)]
    results = run_batch(specs)
    assert [r.key for r in results] == [s.key for s in specs]
    for r in results:
        assert r.status == "finished", r.error
        assert r.family == "linear_whitened"
        # THEORY §8: float64 GD + polish reaches the closed form; 1e-6 relative is the bar
        assert abs(r.polished_rel_gap) <= 1e-6, r.polished_rel_gap
        assert r.rel_gap >= r.polished_rel_gap  # rel_gap is SGD alone, before the polish
        assert r.certificate <= r.exact_objective * (1 + 1e-12)
        assert_close(r.certificate, r.exact_objective, rtol=1e-10)
        assert r.extra["dual_bound"] <= r.exact_objective * (1 + 1e-9)
        assert r.extra["predicted_rank"] == 1.0
        assert [ls.rank for ls in r.layers] == [1, 1, 1]
        assert all(ls.norm_ratio > 1 - 1e-6 for ls in r.layers)
        assert r.w1_alignment > 1 - 1e-6
        assert r.curve_steps[0] == 0 and r.curve_steps[-1] >= 400
        assert len(r.curves["objective"]) == len(r.curve_steps)


def test_diverging_lr_marks_only_that_trial() -> None:
    specs = [spec(seed=0), spec(seed=1, train={"lr": 1e4})]
    ok, bad = run_batch(specs)
    assert ok.status == "finished" and math.isfinite(ok.sgd_objective)
    assert bad.status == "diverged"
    assert bad.exact_objective is None and bad.layers == []


def test_failing_trial_is_recorded_with_traceback_and_others_run() -> None:
    # whitened data needs n <= d: this point cannot make its data
    specs = [spec(seed=0), spec(seed=1, data={"n": 8, "d": 12, "kind": "whitened", "outputs": 1})]
    specs[1] = dataclasses.replace(
        specs[1], data=dataclasses.replace(specs[1].data, kind="nonsense")
    )
    good, failed = run_batch(specs)
    assert good.status == "finished"
    assert failed.status == "failed"
    assert "nonsense" in failed.error and "Traceback" in failed.error


def test_not_covered_problems_report_reason_and_a_valid_certificate() -> None:
    s = spec(data={"kind": "gaussian", "n": 10, "d": 6, "outputs": 3}, model={"activation": "relu"})
    (r,) = run_batch([s])
    assert r.status == "finished"
    assert r.exact_objective is None and r.not_covered
    assert r.certificate is not None and r.certificate <= r.sgd_objective
    assert "rel_gap" not in r.metrics() and "certified_gap" in r.metrics()


def test_deep_relu_trial_logs_the_relaxation_limit_inside_its_bracket() -> None:
    """Deep ReLU, K = 1, raw data: the bracket [certificate, network] and the optimised bound's
    limit between its ends (solvers.dual.deep_relu_dual; what the relaxation can give at most)."""
    s = spec(data={"kind": "gaussian", "n": 10, "d": 6}, model={"activation": "relu"})
    (r,) = run_batch([s])
    assert r.status == "finished", r.error
    assert r.exact_objective is None and r.bracket_rel_width is not None
    assert r.lower_bound == r.certificate == r.extra["dual_bound"]
    assert r.lower_bound * (1 - 1e-7) <= r.extra["deep_dual_limit"] <= r.upper_bound


def test_spline_trial_reports_spline_statistics() -> None:
    s = spec(
        data={"kind": "spline_1d", "n": 6, "d": 1},
        model={"depth": 2, "width": 16, "activation": "relu", "bias": True},
        train={"beta": 0.01, "steps": 300, "lr": 0.01, "polish": 0},
    )
    (r,) = run_batch([s])
    assert r.status == "finished", r.error
    assert 0.0 <= r.extra["spline.share_near_data"] <= 1.0
    assert len(r.arrays["x"]) == 6 and len(r.arrays["grid"]) == len(r.arrays["f"])


def test_same_spec_same_numbers_and_json_round_trip() -> None:
    s = spec(seed=3, train={"batch_size": 4, "polish": 0, "lr": 0.005})
    (a,) = run_batch([s])
    (b,) = run_batch([s])
    assert a.status == "finished", a.status
    assert a.sgd_objective == b.sgd_objective
    assert a.curves == b.curves
    back = TrialResult.from_json(a.to_json())
    assert back.metrics() == a.metrics()


def test_mixed_shapes_are_rejected() -> None:
    with pytest.raises(ValueError, match="batch_shape"):
        run_batch([spec(), spec(model={"width": 5})])


# ---------------------------------------------------------------- alone == batched, per field

# a second valid value of every training field; a new TrainSpec field fails
# test_every_training_field_has_an_alternative until it is added here (and so gets tested)
ALTERNATIVE: dict[str, object] = {
    "beta": 0.5,
    "steps": 25,
    "lr": 0.02,
    "momentum": 0.5,
    "batch_size": 4,
    "lr_decay": 0.9,
    "lr_decay_every": 5,
    "init": "gaussian",
    "init_scale": 0.5,
    "polish": 5,
    "dtype": "float32",
    "log_every": 7,
    "track_layers": False,
}
BASE_TRAIN = dict(
    beta=0.2,
    steps=20,
    lr=0.01,
    momentum=0.9,
    polish=0,
    log_every=5,
    lr_decay=0.5,
    lr_decay_every=10,
)


def _same(a: object, b: object, where: str) -> None:
    """Equal structure; floats bit for bit or within 1e-12 relative (float64 round-off)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for k in a:
            _same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and isinstance(b, float):
        if not (a == b or (math.isnan(a) and math.isnan(b))):
            assert abs(a - b) <= 1e-12 * max(abs(a), abs(b)), f"{where}: {a!r} != {b!r}"
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def _comparable(r: TrialResult) -> dict:
    d = dataclasses.asdict(r)
    d.pop("wall_time")
    return d


def test_every_training_field_has_an_alternative() -> None:
    assert set(ALTERNATIVE) == {f.name for f in dataclasses.fields(TrainSpec)}


def test_per_network_fields_reach_train_per_network_and_the_rest_is_shared() -> None:
    import inspect

    from solvers.sgd import TrainConfig, train
    from sweep.schema import PER_NETWORK

    keywords = set(inspect.signature(train).parameters)
    params = TrialSpec().params()
    for name, channel in PER_NETWORK.items():
        assert name in params, name
        assert channel in ("problem", "seed", "analysis") or channel in keywords, (name, channel)
    # every option of the trainer is a TrainSpec field (so _train_config copies it) ...
    shared = {f.name for f in dataclasses.fields(TrainConfig)}
    assert shared <= {f.name for f in dataclasses.fields(TrainSpec)}
    # ... and is either passed per network or part of the batch shape
    shape = dict(TrialSpec().batch_shape())
    for name in shared:
        assert f"train.{name}" in PER_NETWORK or f"train.{name}" in shape, name


@pytest.mark.parametrize("name", sorted(ALTERNATIVE))
def test_training_field_as_grid_axis_alone_equals_batched(name: str) -> None:
    from sweep.config import load
    from sweep.grid import batches, expand

    base = dict(BASE_TRAIN)
    cfg = {
        "data": {"kind": "whitened", "n": 8, "d": 12, "outputs": 2},
        "model": {"depth": 3, "width": 4, "activation": "linear"},
        "train": {**base, name: [base.get(name, getattr(TrainSpec(), name)), ALTERNATIVE[name]]},
        "seed": [0, 1],
    }
    specs = expand(load(cfg))
    assert len(specs) == 4
    groups = batches(specs, 16)
    # the axis and the seeds share one batch when the field is per network, else two batches
    assert len(groups) in (1, 2)
    batched = {}
    for group in groups:
        for s, r in zip(group, run_batch(group), strict=True):
            batched[s.key] = r
    for s in specs:
        (alone,) = run_batch([s])
        assert alone.status == "finished", alone.error
        _same(_comparable(alone), _comparable(batched[s.key]), f"{name}={getattr(s.train, name)}")
    # the field has an effect (else equality would prove nothing about it)
    by_value = {getattr(s.train, name): batched[s.key] for s in specs if s.seed == 0}
    a, b = by_value.values()
    assert _comparable(a) != _comparable(b)


def test_a_gaussian_init_trial_behind_a_he_init_trial_trains_with_gaussian() -> None:
    he, gauss = (
        spec(seed=0, train={"polish": 0}),
        spec(seed=0, train={"polish": 0, "init": "gaussian"}),
    )
    from sweep.grid import batches

    assert len(batches([he, gauss], 16)) == 2  # init is shared by a batch: never mixed
    with pytest.raises(ValueError, match="batch_shape"):
        run_batch([he, gauss])


def test_sgd_objective_is_sgd_alone_and_the_polish_is_reported_apart() -> None:
    # fewer steps than needed: SGD alone stops short of P*, the polish closes the gap
    short = {"steps": 60, "log_every": 20}
    from solvers import certificate, solve
    from solvers.sgd import TrainConfig, train
    from sweep.trial import make_problem

    s = spec(seed=2, train={**short, "polish": 60})
    (plain,) = run_batch([spec(seed=2, train={**short, "polish": 0})])
    (polished,) = run_batch([s])
    assert plain.status == polished.status == "finished"
    # sgd_objective and the certificate are those of the same SGD run without a polish
    p = make_problem(s)
    t = s.train
    alone = train(
        [p],
        TrainConfig(steps=t.steps, lr=t.lr, momentum=t.momentum, log_every=t.log_every, polish=0),
        seeds=[s.init_seed],
    )
    assert polished.sgd_objective == float(alone.objectives[0])
    assert polished.certificate == certificate(p, alone.networks[0], optimum=solve(p))
    assert polished.rel_gap > 1e-4 and plain.rel_gap > 1e-4  # 60 steps: SGD alone stops short
    assert polished.polished_objective < polished.sgd_objective
    assert abs(polished.polished_rel_gap) <= 1e-6
    assert plain.polished_objective is None and plain.polished_rel_gap is None
    m = plain.metrics()
    assert "polished_objective" not in m and "polished_rel_gap" not in m
    m = polished.metrics()
    assert m["sgd_objective"] == polished.sgd_objective
    assert m["polished_rel_gap"] == polished.polished_rel_gap
    assert (
        TrialResult.from_json(polished.to_json()).polished_objective == polished.polished_objective
    )


def test_rescaled_trial_logs_both_balls() -> None:
    """THEORY §9 / E8: a trial naming a ball measures BOTH (operator primal by direct network
    minimisation, Frobenius by the spectral reduction) and logs them under rescaled.{op,fro}_*."""
    s = spec(
        data={"outputs": 2, "n": 6, "d": 8},
        model={"ball": "operator"},
        train={"beta": 0.3, "steps": 20, "polish": 0},
    )
    (r,) = run_batch([s])
    assert r.status == "finished", r.error
    names = {f"rescaled.{b}_{w}" for b in ("op", "fro") for w in ("primal", "dual", "gap", "t")}
    assert names <= set(r.metrics())
    assert r.extra["rescaled.op_dual"] <= r.extra["rescaled.op_primal"] * (1 + 1e-6)
    assert abs(r.extra["rescaled.op_gap"]) <= 1e-6  # operator balls: dual-exact (measured)
    assert r.extra["rescaled.fro_gap"] > 0.01  # Frobenius balls, K = 2: a real gap
