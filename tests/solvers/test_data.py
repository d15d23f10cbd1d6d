"""Data makers: shapes, dtypes, seeded reproducibility, whitening accuracy, errors."""

from __future__ import annotations

import numpy as np
import pytest

from solvers import data


def _svals(X: np.ndarray) -> np.ndarray:
    return np.linalg.svd(X, compute_uv=False)


def test_gaussian_x_shape_scale_and_seed() -> None:
    X = data.gaussian_X(400, 30, seed=3)
    assert X.shape == (400, 30) and X.dtype == np.float64
    # entries N(0, 1/n): the mean squared entry is 1/n to within a few percent at 12000 entries
    assert abs(np.mean(X**2) * 400 - 1.0) < 0.05
    assert np.array_equal(X, data.gaussian_X(400, 30, seed=3))
    assert not np.array_equal(X, data.gaussian_X(400, 30, seed=4))


@pytest.mark.parametrize(("n", "d"), [(1, 1), (5, 5), (20, 50), (64, 200)])
def test_whitened_rows_orthonormal(n: int, d: int) -> None:
    X = data.whitened_X(n, d, seed=1)
    assert X.shape == (n, d)
    assert np.linalg.norm(X @ X.T - np.eye(n)) < 1e-12
    assert np.array_equal(X, data.whitened_X(n, d, seed=1))


def test_whitened_needs_n_at_most_d() -> None:
    with pytest.raises(ValueError, match="n must be <= d"):
        data.whitened_X(6, 5, seed=0)


def test_zca_is_partial_isometry_with_same_row_space(rng: np.random.Generator) -> None:
    for n, d in [(8, 20), (30, 6)]:
        X = rng.standard_normal((n, d)) @ np.diag(np.linspace(0.1, 10, d))
        Z = data.zca(X)
        s = _svals(Z)
        r = min(n, d)
        assert np.max(np.abs(s[:r] - 1.0)) < 1e-12
        # same row space: projecting Z's rows onto X's row space changes nothing
        P = np.linalg.pinv(X) @ X
        assert np.linalg.norm(Z @ P - Z) < 1e-10
    Z = data.zca(rng.standard_normal((8, 20)))
    assert np.linalg.norm(Z @ Z.T - np.eye(8)) < 1e-12


def test_zca_drops_null_directions(rng: np.random.Generator) -> None:
    X = rng.standard_normal((10, 3)) @ rng.standard_normal((3, 7))  # rank 3
    s = _svals(data.zca(X))
    assert np.allclose(s[:3], 1.0, atol=1e-12, rtol=0) and np.all(s[3:] < 1e-12)
    with pytest.raises(ValueError, match="zero"):
        data.zca(np.zeros((3, 4)))


def test_rank_one_x() -> None:
    X = data.rank_one_X(12, 7, seed=5)
    s = _svals(X)
    assert s[1] < 1e-14 * s[0]
    c = X @ np.linalg.svd(X)[2][0]
    assert np.any(c > 0) and np.any(c < 0)  # mixed signs: both ReLU paths of THEORY §4 exist


def test_zigzag() -> None:
    x, y = data.zigzag_1d(8, seed=2)
    assert x.shape == (8, 1) and y.shape == (8,)
    assert x[0, 0] == -1.0 and x[-1, 0] == 1.0 and np.all(np.diff(x[:, 0]) > 0)
    assert np.all(np.sign(y[:-1]) == -np.sign(y[1:]))
    assert np.all((np.abs(y) >= 0.5) & (np.abs(y) <= 1.0))
    with pytest.raises(ValueError, match="n must be >= 2"):
        data.zigzag_1d(1, seed=0)


def test_targets() -> None:
    Y = data.onehot_Y(7, 7, seed=0)
    assert Y.shape == (7, 7) and np.all(Y.sum(axis=0) >= 1) and np.all(Y.sum(axis=1) == 1)
    y = data.signed_y(2, seed=9)
    assert set(y) == {-1.0, 1.0}
    assert data.gaussian_Y(5, 3, seed=0).shape == (5, 3)
    with pytest.raises(ValueError, match="outputs must be <= n"):
        data.onehot_Y(3, 4, seed=0)


def test_digits_signed_and_onehot() -> None:
    X, y = data.digits(40, classes=(3, 8), targets="signed", seed=0)
    assert X.shape == (40, 64) and set(y) == {-1.0, 1.0}
    assert X.min() >= 0 and X.max() <= 1  # raw pixels; whitening is whiten_inputs' job
    Z = data.whiten_inputs(X, "zca")
    assert np.linalg.norm(Z @ Z.T - np.eye(40)) < 1e-12  # n ≤ 64: whitened exactly
    Xr, Y = data.digits(300, classes=(0, 1, 2), targets="onehot", seed=1)
    assert Xr.min() >= 0 and Xr.max() <= 1 and Y.shape == (300, 3)
    assert np.all(Y.sum(axis=0) >= 1) and np.all(Y.sum(axis=1) == 1)
    # one-hot columns follow the requested classes: raw samples of class k are that digit's
    from sklearn.datasets import load_digits

    raw = load_digits()
    row = np.flatnonzero(np.all(np.isclose(raw.data / 16.0, Xr[0]), axis=1))
    assert raw.target[row[0]] == (0, 1, 2)[int(np.argmax(Y[0]))]
    with pytest.raises(ValueError, match="exactly two"):
        data.digits(10, classes=(1, 2, 3), targets="signed", seed=0)


@pytest.mark.parametrize(
    ("kind", "targets", "n", "d", "K"),
    [
        ("gaussian", "gaussian", 10, 4, 3),
        ("whitened", "onehot", 10, 20, 3),
        ("rank_one", "signed", 10, 4, 1),
        ("spline_1d", "signed", 8, 1, 1),
        ("digits", "signed", 30, 64, 1),
        ("digits", "onehot", 100, 64, 4),
        ("digits", "gaussian", 20, 64, 2),
    ],
)
def test_make_dataset_shapes_and_seeds(kind: str, targets: str, n: int, d: int, K: int) -> None:
    X, Y = data.make_dataset(kind, targets, n=n, d=d, outputs=K, seed=7)
    assert X.shape == (n, d) and Y.shape == (n, K)
    assert X.dtype == np.float64 and Y.dtype == np.float64
    X2, Y2 = data.make_dataset(kind, targets, n=n, d=d, outputs=K, seed=7)
    assert np.array_equal(X, X2) and np.array_equal(Y, Y2)
    X3, Y3 = data.make_dataset(kind, targets, n=n, d=d, outputs=K, seed=8)
    assert not (np.array_equal(X, X3) and np.array_equal(Y, Y3))
    if kind == "whitened" or (kind == "digits" and n <= 64):
        assert np.linalg.norm(X @ X.T - np.eye(n)) < 1e-12


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(kind="whitened", targets="gaussian", n=6, d=5, outputs=1), "n must be <= d"),
        (dict(kind="gaussian", targets="onehot", n=3, d=5, outputs=4), "outputs must be <= n"),
        (dict(kind="spline_1d", targets="signed", n=8, d=2, outputs=1), "d must be 1"),
        (dict(kind="digits", targets="signed", n=8, d=10, outputs=1), "d must be 64"),
        (dict(kind="gaussian", targets="signed", n=8, d=3, outputs=2), "outputs must be 1"),
        (dict(kind="cifar", targets="signed", n=8, d=3, outputs=1), "kind must be one of"),
        (
            dict(kind="gaussian", targets="regression", n=8, d=3, outputs=1),
            "targets must be one of",
        ),
        (dict(kind="gaussian", targets="gaussian", n=0, d=3, outputs=1), "n must be a positive"),
        (dict(kind="digits", targets="onehot", n=20, d=64, outputs=11), "outputs must be <= 10"),
    ],
)
def test_make_dataset_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        data.make_dataset(**kwargs, seed=0)
    # the refusal is data_problem's sentence, which begins with the parameter to change and,
    # given a prefix (the sweep's "data."), names every parameter with it
    assert str(info.value) == data.data_problem(**kwargs)
    assert str(info.value).split()[0] in data.DATA_FIELDS
    prefixed = data.data_problem(**kwargs, prefix="data.")
    assert prefixed.startswith("data.") and message.split()[0] in prefixed
    with pytest.raises(ValueError, match="seed"):
        data.make_dataset("gaussian", "gaussian", n=3, d=2, outputs=1, seed=-1)


def test_onehot_balanced_has_equal_class_sizes() -> None:
    """``onehot_balanced``: n/K samples per class (THEORY §6's ETF needs equal sizes); the
    random ``onehot`` stream is unchanged by the option; K not dividing n is refused."""
    X, Y = data.make_dataset("gaussian", "onehot_balanced", n=12, d=20, outputs=3, seed=5)
    assert Y.shape == (12, 3) and np.all(Y.sum(axis=1) == 1)
    assert Y.sum(axis=0).tolist() == [4.0, 4.0, 4.0]
    _, Yr = data.make_dataset("gaussian", "onehot", n=12, d=20, outputs=3, seed=5)
    assert np.array_equal(
        Yr, data.onehot_Y(12, 3, seed=int(np.random.SeedSequence(5).generate_state(2)[1]))
    )
    with pytest.raises(ValueError, match="multiple of outputs"):
        data.make_dataset("gaussian", "onehot_balanced", n=10, d=20, outputs=3, seed=0)
    with pytest.raises(ValueError, match="not available for digits"):
        data.make_dataset("digits", "onehot_balanced", n=12, d=64, outputs=3, seed=0)
