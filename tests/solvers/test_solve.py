"""The dispatcher: family detection over the hand-checked zoo and the NotCovered messages."""

from __future__ import annotations

import numpy as np
import pytest

from solvers import NotCovered, Optimum, Problem, Status, data, objective, solve
from solvers.detect import is_onehot, is_partial_isometry, is_whitened, rank_one_factor
from tests.conftest import assert_close
from tests.problems import ZOO


@pytest.mark.parametrize("case", ZOO, ids=lambda c: c.name)
def test_zoo_family_value_and_weights(case) -> None:  # noqa: ANN001
    opt = solve(case.problem)
    assert opt.family == case.family
    assert_close(opt.objective, case.expected, rtol=1e-12)
    assert_close(objective(case.problem, opt.network), opt.objective, rtol=1e-10)


@pytest.mark.parametrize(
    ("kind", "targets", "K", "activation", "depth", "family"),
    [
        ("whitened", "gaussian", 3, "linear", 3, "linear_whitened"),
        ("gaussian", "gaussian", 3, "linear", 2, "linear_l2_general"),
        ("gaussian", "signed", 1, "linear", 4, "linear_deep_k1"),
        ("rank_one", "signed", 1, "linear", 3, "linear_rank_one"),
        ("whitened", "signed", 1, "relu", 3, "relu_whitened"),
        ("whitened", "onehot", 3, "relu", 2, "relu_whitened_onehot"),
        ("rank_one", "gaussian", 1, "relu", 2, "relu_rank_one"),
        ("digits", "signed", 1, "relu", 2, "relu_whitened"),
    ],
)
def test_random_instances_dispatch(
    kind: str, targets: str, K: int, activation: str, depth: int, family: str
) -> None:
    d = 64 if kind == "digits" else 12
    X, Y = data.make_dataset(kind, targets, n=10, d=d, outputs=K, seed=4)
    p = Problem(X, Y, depth, 0.2, activation)
    opt = solve(p)
    assert opt.family == family
    # rank-one solutions are built for c aᵀ: the given X differs by O(σ_2) ≤ 1e-10 σ_1
    assert_close(objective(p, opt.network), opt.objective, rtol=1e-10)


def test_batchnorm_families() -> None:
    X, Y = data.make_dataset("gaussian", "onehot", n=8, d=12, outputs=3, seed=0)
    assert solve(Problem(X, Y, 2, 0.3, batchnorm=True)).family == "bn_linear"
    assert solve(Problem(X, Y, 3, 0.3, "relu", batchnorm=True)).family == "bn_relu_onehot"
    y = data.signed_y(8, seed=0)
    assert solve(Problem(X, y, 2, 0.3, "relu", batchnorm=True)).family == "bn_relu"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: Problem(
                *data.make_dataset("whitened", "gaussian", n=6, d=9, outputs=3, seed=0),
                3,  # L = 2 with K > 1 has solvers.vector_relu
                0.1,
                "relu",
            ),
            "^relu depth 3 with K=3 outputs: relu with K=3 signed targets: not covered.*"
            "vector-output program .* is for depth 2",
        ),
        (
            lambda: Problem(np.eye(3), np.ones((3, 2)), 3, 0.1, "relu"),
            "^relu depth 3 with K=2 outputs: relu with K=2 non-negative overlapping targets",
        ),
        (
            lambda: Problem(np.eye(3), np.ones((3, 2)), 2, 0.1, "relu", bias=True),
            "^K=2 outputs with bias=True: two-layer ReLU nets with biases are covered for K = 1",
        ),
        (
            lambda: Problem(  # depth 3 with bias: L = 2 with bias has THEORY §10's program
                *data.make_dataset("gaussian", "signed", n=6, d=3, outputs=1, seed=0),
                3,
                0.1,
                "relu",
                bias=True,
            ),
            "^relu depth 3 with bias=True: THEORY §10's pattern program .* is for depth 2, and no "
            "finite exact program is known for L ≥ 3",
        ),
        (
            lambda: Problem(
                *data.make_dataset("whitened", "gaussian", n=6, d=9, outputs=3, seed=0),
                4,
                0.1,
                "relu",
                bias=True,
            ),
            "^relu depth 4 and K=3 outputs with bias=True: .* is for depth 2 and K = 1",
        ),
        (
            lambda: Problem(
                *data.make_dataset("gaussian", "signed", n=6, d=3, outputs=1, seed=0),
                2,
                0.1,
                bias=True,
            ),
            "bias=True: no closed form except the 1-D spline limit",
        ),
        (
            lambda: Problem(
                *data.make_dataset("gaussian", "gaussian", n=6, d=3, outputs=2, seed=0), 3, 0.1
            ),
            "Schatten-2/3",
        ),
        (
            lambda: Problem(  # depth 3: L = 2 has THEORY §10's program (solvers.two_layer)
                *data.make_dataset("gaussian", "signed", n=6, d=3, outputs=1, seed=0),
                3,
                0.1,
                "relu",
            ),
            "relu depth 3 on general data: no finite exact program.*neither whitened .* nor rank one",
        ),
        (
            lambda: Problem(
                *data.make_dataset("rank_one", "gaussian", n=6, d=3, outputs=2, seed=0),
                3,
                0.1,
                "relu",
            ),
            "^relu depth 3 with K=2 outputs: relu on rank-one data with K=2 outputs",
        ),
    ],
)
def test_not_covered_messages(make, message: str) -> None:  # noqa: ANN001
    with pytest.raises(NotCovered, match=message):
        solve(make())


def test_bad_argument() -> None:
    with pytest.raises(ValueError, match="p must be a solvers.Problem"):
        solve((np.eye(2), np.ones(2)))  # type: ignore[arg-type]


def test_detection_helpers(rng: np.random.Generator) -> None:
    W = data.whitened_X(5, 9, seed=0)
    assert is_whitened(W) and is_partial_isometry(W)
    assert not is_whitened(1.001 * W) and not is_partial_isometry(1.001 * W)
    assert not is_whitened(W.T) and is_partial_isometry(W.T)
    X = np.outer(rng.standard_normal(6), rng.standard_normal(4))
    c, a = rank_one_factor(X)
    assert_close(float(np.linalg.norm(a)), 1.0, rtol=1e-14)
    assert np.linalg.norm(np.outer(c, a) - X) <= 1e-13 * np.linalg.norm(X)
    assert rank_one_factor(X + 1e-6 * rng.standard_normal(X.shape)) is None
    assert rank_one_factor(np.zeros((3, 2))) is None
    assert is_onehot(np.eye(3)[[0, 2, 1, 1]]) and is_onehot(np.array([[2.0, 0], [0, 0.5]]))
    assert not is_onehot(np.array([[1.0, 1.0]])) and not is_onehot(np.array([[-1.0, 0.0]]))


@pytest.mark.parametrize("case", ZOO, ids=lambda c: c.name)
def test_zoo_typed_fields(case) -> None:  # noqa: ANN001
    """Closed forms are EXACT with lower_bound == objective (FISTA: CERTIFIED within its gap
    tolerance); m* counts the non-zero columns of W_1 and ``directions`` are their unit vectors
    (linear nets: an orthonormal basis of their span)."""
    opt = solve(case.problem)
    assert opt.is_exact
    if case.family == "linear_l2_general":
        assert opt.status is Status.CERTIFIED and 0.0 <= opt.rel_gap <= 1e-10
        assert opt.lower_bound <= opt.objective
    else:
        assert opt.status is Status.EXACT
        assert opt.lower_bound == opt.objective and opt.rel_gap == 0.0
    W1 = np.asarray(opt.weights[0])
    cols = np.linalg.norm(W1, axis=0)
    assert opt.m_star == int(np.count_nonzero(cols > 1e-14 * max(cols.max(initial=0), 1e-300)))
    if case.problem.batchnorm:
        assert opt.directions is None
        return
    D = opt.directions
    assert D.shape == (case.problem.d, opt.m_star)
    np.testing.assert_allclose(np.linalg.norm(D, axis=0), 1.0, rtol=1e-12)
    if opt.m_star:
        active = W1[:, cols > 0]
        # every active neuron lies in span(directions) (and for ReLU is one of them, with sign)
        resid = active - D @ (D.T @ active)
        assert np.linalg.norm(resid) <= 1e-12 * np.linalg.norm(active)
        if case.problem.activation == "relu":
            cos = D.T @ (active / np.linalg.norm(active, axis=0))
            assert np.all(np.max(cos, axis=0) >= 1 - 1e-12)


def test_optimum_status_rules() -> None:
    """The typed Optimum refuses inconsistent brackets (each rule shown failing)."""
    W = [np.zeros((2, 1)), np.zeros((1, 1))]
    exact = Optimum(objective=2.0, weights=W, family="f")
    assert exact.status is Status.EXACT and exact.lower_bound == 2.0 and exact.rel_gap == 0.0
    bracket = Optimum(objective=2.0, weights=W, family="f", status="bracket", lower_bound=1.5)
    assert bracket.status is Status.BRACKET and not bracket.is_exact
    assert_close(bracket.rel_gap, 0.25, rtol=1e-15)
    cert = Optimum(objective=2.0, weights=W, family="f", status=Status.CERTIFIED, lower_bound=2.0)
    assert cert.is_exact and cert.rel_gap == 0.0
    with pytest.raises(ValueError, match="lower_bound"):
        Optimum(objective=2.0, weights=W, family="f", status=Status.BRACKET)
    with pytest.raises(ValueError, match="exact optimum has lower_bound == objective"):
        Optimum(objective=2.0, weights=W, family="f", lower_bound=1.0)
    with pytest.raises(ValueError, match="exceeds the objective"):
        Optimum(objective=2.0, weights=W, family="f", status="certified", lower_bound=2.1)
    with pytest.raises(ValueError, match="p_star_kind must be"):
        Optimum(objective=2.0, weights=W, family="f", p_star_kind="reached")
    with pytest.raises(ValueError, match="rel_gap"):
        Optimum(
            objective=2.0, weights=W, family="f", status="bracket", lower_bound=1.0, rel_gap=0.1
        )
    with pytest.raises(ValueError, match="m_star"):
        Optimum(objective=2.0, weights=W, family="f", m_star=2, directions=np.ones((2, 1)))
    with pytest.raises(ValueError):
        Optimum(objective=2.0, weights=W, family="f", status="converged", lower_bound=1.0)


def test_p_star_kind_infimum_with_a_constant_offset_and_attained_without_bias() -> None:
    """A biased two-layer optimum that pays the targets' offset with a bias-only neuron is an
    infimum: moving that neuron further along ``(a, b) → (a/10, 10b)`` keeps the output and
    lowers the objective, so no finite network attains P*. Without bias: attained."""
    from solvers.problem import Network
    from solvers.solve import p_star_kind

    rng = np.random.default_rng(3)
    X = rng.standard_normal((10, 2))
    p = Problem(X, 5.0 + 0.01 * rng.standard_normal(10), 2, 0.1, "relu", bias=True)
    opt = solve(p)
    assert p_star_kind(p, opt) == "infimum"
    W1, W2 = (np.array(w, dtype=np.float64) for w in opt.network.weights)
    b = np.array(opt.network.biases[0], dtype=np.float64)
    j = int(np.flatnonzero((np.linalg.norm(W1, axis=0) == 0) & (b != 0))[0])
    W2[j] /= 10.0
    b[j] *= 10.0
    further = Network(weights=(W1, W2), biases=(b,))
    assert objective(p, further) < opt.objective
    # the same network without its constant neuron is not an infimum witness
    W2[j] = 0.0
    assert p_star_kind(p, Optimum(1.0, [W1, W2], "x", network=Network((W1, W2), (b,)))) == (
        "attained"
    )
    q = Problem(X, rng.standard_normal(10), 2, 0.1, "relu")
    assert p_star_kind(q, solve(q)) == "attained"
    tagged = Optimum(1.0, [W1, W2], "x", p_star_kind="infimum")
    assert p_star_kind(q, tagged) == "infimum"  # the solver's own word wins
