"""The Carathéodory step on a two-layer network (:func:`solvers.vector_relu.drop_dependent`).

References, computed here with numpy alone: the network's output ``(XW₁)_+W₂`` and its
regulariser ``½(‖W₁‖² + ‖W₂‖²)``, and the rank of its atoms ``vec((Xw₁ⱼ)_+w₂ⱼᵀ)`` by SVD.
Tolerances: the output kept to 1e-9 relative (exact null vectors, round-off only), the
regulariser never above the original by more than 1e-12 relative.
"""

from __future__ import annotations

import numpy as np
import pytest

from solvers import Problem, solve
from solvers.problem import Network, objective
from solvers.vector_relu import drop_dependent


def _net(rng: np.random.Generator, d: int, m: int, K: int) -> Network:
    return Network(weights=(rng.standard_normal((d, m)), rng.standard_normal((m, K))))


def _output(X: np.ndarray, net: Network) -> np.ndarray:
    W1, W2 = net.weights
    return np.maximum(X @ W1, 0.0) @ W2


def _reg(net: Network) -> float:
    return 0.5 * sum(float(np.sum(w * w)) for w in net.weights)


def _rank(X: np.ndarray, net: Network) -> int:
    W1, W2 = net.weights
    H = np.maximum(X @ W1, 0.0)
    atoms = np.stack([np.outer(H[:, j], W2[j]).ravel() for j in range(W1.shape[1])], axis=1)
    return int(np.linalg.matrix_rank(atoms))


@pytest.mark.parametrize("seed", range(6))
def test_a_wide_network_keeps_its_output_with_at_most_nk_neurons(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, d, K = 6, 3, 1 + seed % 3
    X = rng.standard_normal((n, d))
    net = _net(rng, d, 3 * n * K, K)
    out = drop_dependent(X, net)
    assert out is not None
    m = out.weights[0].shape[1]
    assert m <= _rank(X, net) <= n * K  # a basic solution: at most rank-many atoms
    assert _rank(X, out) == m  # and those are independent: nothing more to drop
    F, G = _output(X, net), _output(X, out)
    assert np.linalg.norm(G - F) <= 1e-9 * np.linalg.norm(F)
    assert _reg(out) <= _reg(net) * (1 + 1e-12)
    assert drop_dependent(X, out) is None  # a fixed point


def test_independent_atoms_are_left_alone_and_a_duplicate_is_dropped() -> None:
    rng = np.random.default_rng(7)
    X = rng.standard_normal((8, 4))
    net = _net(rng, 4, 3, 2)
    assert _rank(X, net) == 3
    assert drop_dependent(X, net) is None
    W1, W2 = net.weights  # neuron 0 again, at twice the scale: the same atom direction
    twin = Network(weights=(np.hstack([W1, 2 * W1[:, :1]]), np.vstack([W2, 2 * W2[:1]])))
    out = drop_dependent(X, twin)
    assert out is not None and out.weights[0].shape[1] == 3
    F = _output(X, twin)
    assert np.linalg.norm(_output(X, out) - F) <= 1e-9 * np.linalg.norm(F)
    # the regulariser falls: scaled copies cost more than one neuron carrying both (AM-GM)
    assert _reg(out) < _reg(twin)


@pytest.mark.parametrize("K", [2, 3])
def test_the_solver_reports_a_basic_network_and_its_own_objective(K: int) -> None:
    rng = np.random.default_rng(11 + K)
    n, d = 8, 3
    p = Problem(rng.standard_normal((n, d)), rng.standard_normal((n, K)), 2, 0.05, "relu")
    opt = solve(p)
    net = opt.network
    assert objective(p, net) == opt.objective  # the upper end is the network reported
    assert opt.m_star <= n * K and opt.m_star <= opt.info["m_found"]
    live = (np.linalg.norm(net.weights[0], axis=0) > 0) & (
        np.linalg.norm(net.weights[1], axis=1) > 0
    )
    live_net = Network(weights=(net.weights[0][:, live], net.weights[1][live]))
    assert _rank(p.X, live_net) == int(live.sum())  # no dependent neuron left
