"""The ``data.whiten`` transform (solvers.data.whiten_inputs / make_dataset(whiten=...)).

Properties checked against the definition, not against stored numbers: zca is a partial
isometry with X's row space; pca is a rotation of zca (same Gram matrix, same P* of a
rotation-invariant problem solved independently); exact makes X Xᵀ = I_n even for
rank-deficient X; for one seed every whiten value transforms the same raw X; ``auto`` keeps
the data every existing trial was made with.
"""

from __future__ import annotations

import numpy as np
import pytest

from solvers import Problem, solve
from solvers.data import (
    WHITEN_KINDS,
    _load_digits,
    digits,
    make_dataset,
    rank_one_X,
    whiten_inputs,
    zca,
)

METHODS = ("none", "zca", "pca", "exact")
SHAPES = [(6, 10), (10, 10), (12, 5)]


def _sv(X: np.ndarray) -> np.ndarray:
    return np.linalg.svd(X, compute_uv=False)


def _row_projector(X: np.ndarray, tol: float = 1e-10) -> np.ndarray:
    U, s, _ = np.linalg.svd(X, full_matrices=False)
    r = int(np.count_nonzero(s > tol * s[0]))
    return U[:, :r] @ U[:, :r].T


def test_whiten_kinds_are_the_documented_ones() -> None:
    assert set(METHODS) | {"auto"} == set(WHITEN_KINDS)


@pytest.mark.parametrize("n,d", SHAPES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_zca_and_pca_are_partial_isometries_of_the_same_data(n: int, d: int, seed: int) -> None:
    X = np.random.default_rng(seed).standard_normal((n, d)) * np.linspace(0.1, 3.0, d)
    r = min(n, d)
    for method in ("zca", "pca"):
        W = whiten_inputs(X, method)
        assert W.shape == X.shape
        s = _sv(W)
        np.testing.assert_allclose(s[:r], 1.0, atol=1e-12)
        assert np.all(s[r:] < 1e-12)
        # same column space (range in R^n) as X: the samples keep their geometry up to a map
        np.testing.assert_allclose(_row_projector(W), _row_projector(X), atol=1e-10)
    Z, P = whiten_inputs(X, "zca"), whiten_inputs(X, "pca")
    # pca = zca · V with V orthogonal: same Gram matrix, and zca's column space rotated
    np.testing.assert_allclose(P @ P.T, Z @ Z.T, atol=1e-12)
    Q, *_ = np.linalg.lstsq(Z, P, rcond=None)
    np.testing.assert_allclose(Z @ Q, P, atol=1e-10)
    assert np.all(P[:, r:] == 0)  # principal coordinates: the first r columns only
    assert np.all(P[np.argmax(np.abs(P[:, :r]), axis=0), np.arange(r)] > 0)  # sign convention


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_pca_and_zca_give_the_same_optimum_of_a_rotation_invariant_problem(seed: int) -> None:
    """Two-layer linear net, n > d (general data: nuclear-norm program, not a closed form on
    whitened data since zca of a tall X is a partial isometry only column-wise) and a deep
    linear K=1 net: P* of X·V equals P* of X for orthogonal V, solved independently."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((15, 4)) * np.array([3.0, 1.0, 0.5, 0.2])
    Y = rng.standard_normal((15, 2))
    for depth, K in ((2, 2), (3, 1)):
        values = [
            solve(Problem(whiten_inputs(X, m), Y[:, :K], depth=depth, beta=0.3)).objective
            for m in ("zca", "pca")
        ]
        assert values[0] == pytest.approx(values[1], rel=1e-9)
    raw = solve(Problem(X, Y, depth=2, beta=0.3)).objective
    white = solve(Problem(whiten_inputs(X, "zca"), Y, depth=2, beta=0.3)).objective
    assert abs(raw - white) > 1e-3 * abs(raw)  # whitening changes the problem (the test can fail)


@pytest.mark.parametrize("seed", [0, 1])
def test_exact_gives_orthonormal_rows_even_for_rank_deficient_data(seed: int) -> None:
    rng = np.random.default_rng(seed)
    full = rng.standard_normal((6, 9))
    deficient = [rank_one_X(6, 9, seed=seed), np.vstack([full[:4], full[:2]])]  # rank 1, rank 4
    for X in deficient:
        E = whiten_inputs(X, "exact")
        np.testing.assert_allclose(E @ E.T, np.eye(6), atol=1e-12)
        Z = whiten_inputs(X, "zca")
        assert np.linalg.norm(Z @ Z.T - np.eye(6)) > 0.5  # zca is only a partial isometry here
        # exact keeps zca's part: the projection of E's rows onto X's row space is zca
        U, s, Vt = np.linalg.svd(X)
        r = int(np.count_nonzero(s > 1e-10 * s[0]))
        np.testing.assert_allclose(E @ Vt[:r].T @ Vt[:r], Z, atol=1e-10)
    # full row rank: exact is zca (to rounding)
    np.testing.assert_allclose(whiten_inputs(full, "exact"), whiten_inputs(full, "zca"), atol=1e-12)


def test_exact_whitening_makes_theory_3_apply() -> None:
    """Rank-one data with n ≤ d is not whitened; after ``exact`` solve() uses §3's closed form,
    whose value is g_2(‖y+‖) + g_2(‖y−‖) = h_β(‖y+‖) + h_β(‖y−‖) (THEORY §3)."""
    X = rank_one_X(6, 9, seed=4)
    y = np.random.default_rng(4).standard_normal(6)
    opt = solve(Problem(whiten_inputs(X, "exact"), y, depth=2, beta=0.2, activation="relu"))
    assert opt.family == "relu_whitened"

    def huber(r: float, g: float) -> float:
        return 0.5 * r * r if r <= g else g * r - 0.5 * g * g

    want = huber(np.linalg.norm(np.maximum(y, 0)), 0.2) + huber(
        np.linalg.norm(np.minimum(y, 0)), 0.2
    )
    assert opt.objective == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize(
    "kind,targets,n,d,K",
    [
        ("gaussian", "gaussian", 8, 12, 1),
        ("gaussian", "signed", 15, 4, 1),
        ("rank_one", "gaussian", 6, 9, 2),
        ("digits", "signed", 20, 64, 1),
        ("digits", "gaussian", 12, 64, 1),
        ("digits", "onehot", 30, 64, 3),
        ("whitened", "gaussian", 5, 8, 1),
    ],
)
def test_every_whiten_value_transforms_the_same_raw_data(kind, targets, n, d, K) -> None:
    raw, Y0 = make_dataset(kind, targets, n=n, d=d, outputs=K, seed=7, whiten="none")
    for method in METHODS:
        if method == "exact" and n > d:
            continue
        X, Y = make_dataset(kind, targets, n=n, d=d, outputs=K, seed=7, whiten=method)
        np.testing.assert_array_equal(X, whiten_inputs(raw, method))  # bit for bit
        np.testing.assert_array_equal(Y, Y0)  # whitening never touches the targets
    other, _ = make_dataset(kind, targets, n=n, d=d, outputs=K, seed=8, whiten="none")
    assert not np.array_equal(other, raw)


def test_auto_keeps_the_data_of_existing_trials() -> None:
    """``auto`` = what make_dataset returned before the option existed: digits ZCA-whitened
    (built here by the old path: zca of the drawn pixels), every other
    kind as generated."""
    seed = 11
    x_seed, _ = (int(s) for s in np.random.SeedSequence(seed).generate_state(2))
    X, y = make_dataset("digits", "signed", n=30, d=64, outputs=1, seed=seed)
    X_old, y_old = digits(30, classes=(0, 1), targets="signed", seed=x_seed)
    X_old = zca(X_old)
    np.testing.assert_array_equal(X, X_old)
    np.testing.assert_array_equal(y[:, 0], y_old)
    X, _ = make_dataset("digits", "gaussian", n=25, d=64, outputs=1, seed=seed)
    pixels = _load_digits()[0]
    idx = np.random.default_rng(x_seed).choice(len(pixels), size=25, replace=False)
    np.testing.assert_array_equal(X, zca(pixels[idx]))
    X, _ = make_dataset("digits", "onehot", n=30, d=64, outputs=3, seed=seed)
    X_old = zca(digits(30, classes=(0, 1, 2), targets="onehot", seed=x_seed)[0])
    np.testing.assert_array_equal(X, X_old)
    for kind, d in (("gaussian", 10), ("rank_one", 10), ("whitened", 10), ("spline_1d", 1)):
        targets = "signed" if kind == "spline_1d" else "gaussian"
        a, _ = make_dataset(kind, targets, n=8, d=d, outputs=1, seed=seed)
        b, _ = make_dataset(kind, targets, n=8, d=d, outputs=1, seed=seed, whiten="none")
        np.testing.assert_array_equal(a, b)
    raw, _ = make_dataset("digits", "signed", n=30, d=64, outputs=1, seed=seed, whiten="none")
    assert raw.min() >= 0 and raw.max() <= 1 and np.linalg.norm(raw @ raw.T - np.eye(30)) > 1


def test_bad_input_names_the_reason() -> None:
    X = np.random.default_rng(0).standard_normal((5, 3))
    with pytest.raises(ValueError, match="whiten must be one of"):
        whiten_inputs(X, "ZCA")
    with pytest.raises(ValueError, match="whiten must be one of"):
        whiten_inputs(X, "auto")  # resolved by make_dataset only (depends on the kind)
    with pytest.raises(ValueError, match=r"n <= d.*n=5, d=3"):
        whiten_inputs(X, "exact")
    with pytest.raises(ValueError, match="X is zero"):
        whiten_inputs(np.zeros((3, 4)), "pca")
    with pytest.raises(ValueError, match="NaN or inf"):
        whiten_inputs(np.array([[1.0, np.nan]]), "zca")
    with pytest.raises(ValueError, match="whiten must be one of"):
        make_dataset("gaussian", "gaussian", n=4, d=3, outputs=1, seed=0, whiten="white")
    with pytest.raises(ValueError, match=r"n <= d"):
        make_dataset("gaussian", "gaussian", n=5, d=3, outputs=1, seed=0, whiten="exact")
    np.testing.assert_array_equal(whiten_inputs(np.zeros((3, 4)), "none"), np.zeros((3, 4)))


# ---------------------------------------------------------------- the data.whiten field


def _spec(kind: str = "gaussian", whiten: str = "auto", seed: int = 0, **data):
    from sweep.schema import DataSpec, ModelSpec, TrainSpec, TrialSpec

    fields = {"kind": kind, "targets": "gaussian", "n": 8, "d": 12, "outputs": 1, **data}
    return TrialSpec(
        data=DataSpec(**fields, whiten=whiten),
        model=ModelSpec(depth=2, width=6, activation="relu"),
        train=TrainSpec(beta=0.2, steps=60, lr=0.02, log_every=20),
        seed=seed,
    )


def _v1_key(spec) -> str:
    import hashlib
    import json

    params = {k: v for k, v in spec.params().items() if k != "data.whiten"}
    canon = json.dumps(params, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canon.encode()).hexdigest()[:20]


@pytest.mark.parametrize("kind,d", [("gaussian", 12), ("digits", 64), ("whitened", 12)])
def test_whiten_at_its_default_changes_no_key_and_whitening_never_changes_the_raw_data(
    kind: str, d: int
) -> None:
    from sweep.schema import TrialSpec
    from sweep.trial import make_problem

    auto = _spec(kind, d=d)
    assert auto.key == _v1_key(auto)  # the key of a store written before the field existed
    old_params = {k: v for k, v in auto.params().items() if k != "data.whiten"}
    assert TrialSpec.from_params(old_params).key == auto.key
    raw = make_problem(_spec(kind, "none", d=d)).X
    for method in ("none", "zca", "pca", "exact"):
        s = _spec(kind, method, d=d)
        assert s.data_seed == auto.data_seed  # one raw X for every whitening ...
        assert (s.key == auto.key) == (method == "auto")  # ... but each is its own trial
        np.testing.assert_array_equal(make_problem(s).X, whiten_inputs(raw, method))
    other_seed = _spec(kind, "zca", seed=1, d=d)
    assert other_seed.data_seed != auto.data_seed


def test_config_validates_whiten_with_the_solvers_choices() -> None:
    from sweep.config import ConfigError, check_spec, load

    sweep = load({"data": {"whiten": ["none", "zca", "pca", "exact", "auto"]}})
    assert set(sweep.blocks[0].values["data.whiten"]) == set(WHITEN_KINDS)
    with pytest.raises(ConfigError, match=r"data\.whiten must be one of auto, none, zca"):
        load({"data": {"whiten": "white"}})
    with pytest.raises(ConfigError, match=r"data\.n must be <= data\.d for data\.whiten=exact"):
        check_spec(_spec("gaussian", "exact", n=20, d=5))
    check_spec(_spec("gaussian", "exact", n=5, d=5))


def test_a_whitening_axis_trains_in_one_batch_and_alone_equals_batched() -> None:
    from sweep.trial import run_batch

    specs = [_spec("gaussian", w, seed=s) for w in ("none", "zca", "pca") for s in (0, 1)]
    assert len({s.batch_shape() for s in specs}) == 1
    batched = run_batch(specs)
    for s, b in zip(specs, batched, strict=True):
        (alone,) = run_batch([s])
        assert alone.status == b.status == "finished", alone.error
        assert alone.sgd_objective == b.sgd_objective
        assert alone.certificate == b.certificate
        assert alone.exact_objective == b.exact_objective
    by = {(s.data.whiten, s.seed): r for s, r in zip(specs, batched, strict=True)}
    # zca and pca are rotations of each other: same P* (a §3 closed form here, n ≤ d) ...
    for seed in (0, 1):
        assert by[("zca", seed)].exact_objective == pytest.approx(
            by[("pca", seed)].exact_objective, rel=1e-12
        )
        assert by[("zca", seed)].family == "relu_whitened"
        # ... raw Gaussian data is another problem
        assert by[("none", seed)].family != "relu_whitened"
