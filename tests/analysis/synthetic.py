"""Hand-made trials that satisfy every claim of THEORY.md exactly: the "ideal store".

:func:`ideal` returns ``(specs, results)`` — three or more finished trials per experiment
(E1–E10, R1) whose logged numbers are what theory predicts (gaps 1e-12, ratios and cosines 1,
NC2 = −1/(K−1), operator-ball gap 0 …). Every verdict of :mod:`analysis.experiments` is PASS on
it; the tests in ``test_verdicts.py`` perturb one number at a time and watch the matching
verdict turn FAIL (or INCONCLUSIVE). Nothing here is trained: these are numbers a trial could
log, chosen to sit on either side of each threshold.
"""

from __future__ import annotations

from sweep.schema import DataSpec, LayerStats, ModelSpec, TrainSpec, TrialResult, TrialSpec

GAP = 1e-12  # the "reached it" relative gap of the ideal trials


def _layer(rank: int = 1, ratio: float = 1.0, align: float | None = 1.0) -> LayerStats:
    return LayerStats(
        rank=rank, stable_rank=1.0 / ratio**2, norm_ratio=ratio, fro_norm=1.0, top_sv=[1.0],
        align_next=align,
    )  # fmt: skip


def _result(
    spec: TrialSpec,
    p_star: float | None,
    *,
    gap: float = GAP,
    null: float | None = None,
    layers: list[LayerStats] | None = None,
    polish: bool = True,
    **kw,
) -> TrialResult:
    objective = (p_star if p_star is not None else 1.0) * (1 + gap)
    extra = dict(kw.pop("extra", {}))
    if p_star is not None:
        extra.setdefault("null_objective", null if null is not None else 2.0 * p_star)
    return TrialResult(
        key=spec.key,
        status="finished",
        sgd_objective=objective,
        polished_objective=(p_star if p_star is not None else 1.0) * (1 + GAP / 10) if polish else None,
        exact_objective=p_star,
        certificate=p_star if p_star is not None else objective * 0.5,
        layers=layers or [],
        extra=extra,
        **kw,
    )  # fmt: skip


def _spec(eid: str, data: dict, model: dict, train: dict | None = None, seed: int = 0) -> TrialSpec:
    return TrialSpec(
        data=DataSpec(**data), model=ModelSpec(**model), train=TrainSpec(**(train or {})),
        seed=seed, experiment=eid,
    )  # fmt: skip


def ideal() -> tuple[list[TrialSpec], list[TrialResult]]:
    specs, results = [], []

    def add(spec: TrialSpec, res: TrialResult) -> None:
        specs.append(spec)
        results.append(res)

    w = dict(kind="whitened", n=20, d=50)
    for i, beta in enumerate((0.5, 1.0, 2.0, 9.0)):  # E1: rank 3, 2, 1, 0 (β > σ₁: zero optimum)
        rank = 3 - i
        s = _spec("E1", dict(w, outputs=5), dict(depth=2, width=10), dict(beta=beta, polish=100))
        p = 4.0 - i
        add(s, _result(s, p, null=p if rank == 0 else 2 * p, layers=[_layer(rank, 0.7, 0.9), _layer(rank, 0.7, None)],
                       extra={"predicted_rank": float(rank)}))  # fmt: skip
    for seed in range(3):  # E2
        s = _spec(
            "E2", dict(kind="gaussian", n=50, d=20), dict(depth=4, width=10), dict(beta=0.1), seed
        )
        add(
            s,
            _result(
                s, 2.0, polish=False, layers=[_layer(), _layer(), _layer(), _layer(align=None)]
            ),
        )
    for depth in (3, 4, 5):  # E3
        s = _spec(
            "E3",
            dict(kind="gaussian", n=30, d=10),
            dict(depth=depth, width=6),
            dict(beta=0.1, polish=100),
        )
        layers = [_layer() for _ in range(depth - 1)] + [_layer(align=None)]
        add(s, _result(s, 3.0, layers=layers, w1_alignment=1.0, extra={"predicted_rank": 1.0}))
    for seed in range(3):  # E4: minibatch SGD, 5e-4 above P* (under its noise floor 1e-3)
        s = _spec(
            "E4",
            dict(w),
            dict(depth=3, width=50, activation="relu"),
            dict(beta=0.2, batch_size=5),
            seed,
        )
        add(s, _result(s, 5.0, gap=5e-4, extra={"y_plus_norm": 3.0, "y_minus_norm": 2.5}))
    for seed in range(3):  # E5
        s = _spec("E5", dict(kind="whitened", n=16, d=40), dict(depth=2, width=8, activation="relu"),
                  dict(beta=0.1, polish=100), seed)  # fmt: skip
        add(s, _result(s, 1.5, w1_alignment=1.0))
    for act in ("linear", "relu"):  # R1
        for depth in (2, 3):
            s = _spec("R1", dict(kind="rank_one", n=10, d=5), dict(depth=depth, width=6, activation=act),
                      dict(beta=0.3, polish=100))  # fmt: skip
            add(s, _result(s, 2.5, w1_alignment=1.0))
    for seed in range(3):  # E6, L = 2: §10's exact optimum (kinks at data), trained net at it
        s = _spec("E6", dict(kind="spline_1d", n=8, d=1), dict(depth=2, width=20, activation="relu", bias=True),
                  dict(beta=0.01, polish=100), seed)  # fmt: skip
        sp = {"spline.share_near_data": 0.9999, "spline.max_deviation": 1e-4,
              "spline_opt.share_near_data": 1.0}  # fmt: skip
        add(s, _result(s, 0.05, extra=sp))
    for seed in range(3):  # E6, L = 3: no P*; the share is a measurement (reference 0.957)
        s = _spec("E6", dict(kind="spline_1d", n=8, d=1), dict(depth=3, width=20, activation="relu", bias=True),
                  dict(beta=0.01), seed)  # fmt: skip
        add(s, _result(s, None, polish=False,
                       extra={"spline.share_near_data": 0.9, "spline.max_deviation": 1e-3}))  # fmt: skip
    for targets, nc2, nc3 in (("onehot_balanced", -0.5, 1.0), ("onehot", -0.4913, 0.9904)):  # E7
        for seed in range(3):
            s = _spec("E7", dict(kind="gaussian", targets=targets, n=12, d=20, outputs=3),
                      dict(depth=2, width=16, batchnorm=True), dict(beta=0.1, polish=100), seed)  # fmt: skip
            nc = {"nc.nc1": 1e-12, "nc.nc2_cosine_mean": nc2, "nc.nc3_cosine_mean": nc3,
                  "nc_opt.nc1": 0.0, "nc_opt.nc2_cosine_mean": nc2, "nc_opt.nc3_cosine_mean": nc3}  # fmt: skip
            add(s, _result(s, 1.2, extra=nc))
    for seed in range(3):  # E8: both balls from one trial
        s = _spec(
            "E8", dict(w, outputs=3), dict(depth=3, width=10), dict(beta=0.5, polish=100), seed
        )
        ex = {"predicted_rank": 3.0, "rescaled.op_primal": 3.0, "rescaled.op_dual": 3.0, "rescaled.op_gap": 0.0,
              "rescaled.fro_primal": 3.5, "rescaled.fro_dual": 2.5, "rescaled.fro_gap": 1.0 / 3.5}  # fmt: skip
        add(s, _result(s, 3.5, extra=ex))
    for targets, K in (("signed", 1), ("onehot", 10)):  # E10
        for seed in range(3):
            s = _spec("E10", dict(kind="digits", targets=targets, n=40, d=64, outputs=K),
                      dict(depth=2, width=50, activation="relu"), dict(beta=0.1, polish=100), seed)  # fmt: skip
            add(s, _result(s, 4.0))
    return specs, results
