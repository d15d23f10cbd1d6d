"""Batched trainer (solvers.sgd): batch == separate runs, exact objective, gradients vs finite
differences of solvers.objective, convergence to THEORY §1–§3 closed forms, divergence masking."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from solvers.problem import Network, Problem, objective
from solvers.scalar import huber, path_value
from solvers.sgd import TrainConfig, _losses, _losses_and_grads, _shape_of, train
from tests.conftest import assert_close


def whitened(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    """X with X Xᵀ = I_n (n ≤ d)."""
    Q, _ = np.linalg.qr(rng.standard_normal((d, n)))
    return Q.T


def rel_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)) / max(1.0, float(np.max(np.abs(b)))))


@pytest.mark.parametrize("activation", ["linear", "relu"])
@pytest.mark.parametrize("batch_size", [0, 4])
def test_batched_equals_separate_runs(
    rng: np.random.Generator, activation: str, batch_size: int
) -> None:
    n, d, K, L, m = 10, 5, 2, 3, 6
    problems = [
        Problem(
            rng.standard_normal((n, d)) / 3,
            rng.standard_normal((n, K)),
            L,
            beta,
            activation=activation,
            width=m,
        )
        for beta in (0.05, 0.1, 0.2)
    ]
    cfg = TrainConfig(
        steps=120,
        lr=0.01,
        momentum=0.8,
        batch_size=batch_size,
        lr_decay=0.5,
        lr_decay_every=40,
        log_every=25,
    )
    seeds, lrs, moms, scales = [3, 11, 7], [0.01, 0.02, 0.005], [0.9, 0.5, 0.0], [1.0, 0.7, 1.3]
    batched = train(problems, cfg, seeds=seeds, lr=lrs, momentum=moms, init_scale=scales)
    assert batched.curves.shape == (3, 6) and list(batched.curve_steps) == [0, 25, 50, 75, 100, 120]
    for i in range(3):
        alone = train(
            [problems[i]],
            cfg,
            seeds=[seeds[i]],
            lr=[lrs[i]],
            momentum=[moms[i]],
            init_scale=[scales[i]],
        )
        for Wb, Wa in zip(batched.networks[i].weights, alone.networks[0].weights, strict=True):
            assert rel_diff(Wb, Wa) <= 1e-12
        assert rel_diff(batched.curves[i], alone.curves[0]) <= 1e-12
        assert rel_diff(batched.norm_ratios[i], alone.norm_ratios[0]) <= 1e-12
    # the runs actually moved and differ from each other (the test is not vacuous)
    assert np.all(batched.curves[:, -1] < batched.curves[:, 0])
    assert rel_diff(batched.networks[0].weights[0], batched.networks[1].weights[0]) > 1e-3


def test_reported_objective_is_solvers_objective(rng: np.random.Generator) -> None:
    problems = [
        Problem(
            rng.standard_normal((8, 3)), rng.standard_normal(8), 3, 0.1, activation="relu", width=5
        )
        for _ in range(2)
    ]
    out = train(problems, TrainConfig(steps=50, lr=0.01, log_every=10), seeds=[0, 1])
    for p, net, value, curve in zip(
        problems, out.networks, out.objectives, out.curves, strict=True
    ):
        assert value == objective(p, net)  # bit for bit
        assert_close(curve[-1], value, rtol=1e-12)
        assert isinstance(net, Network) and net.weights[-1].shape == (5, 1)
        assert all(W.dtype == np.float64 for W in net.weights)


def _fd_gradient(p: Problem, net: Network, flat_get, flat_set, h: float = 1e-6) -> np.ndarray:
    theta = flat_get(net)
    g = np.zeros_like(theta)
    for j in range(theta.size):
        e = np.zeros_like(theta)
        e[j] = h
        g[j] = (objective(p, flat_set(net, theta + e)) - objective(p, flat_set(net, theta - e))) / (
            2 * h
        )
    return g


@pytest.mark.parametrize("variant", ["linear", "relu", "relu-bias", "relu-bn", "linear-bn-bias"])
def test_batched_gradient_matches_finite_differences(
    rng: np.random.Generator, variant: str
) -> None:
    activation = "relu" if variant.startswith("relu") else "linear"
    bias, bn = "bias" in variant, "bn" in variant
    n, d, K, L, m = 7, 3, 2, 3, 4
    problems = [
        Problem(
            rng.standard_normal((n, d)),
            rng.standard_normal((n, K)),
            L,
            beta,
            activation=activation,
            width=m,
            bias=bias,
            batchnorm=bn,
        )
        for beta in (0.3, 0.7)
    ]
    nets = []
    for _ in problems:
        Ws = [rng.standard_normal(s) for s in [(d, m), (m, m), (m, K)]]
        nets.append(
            Network(
                weights=tuple(Ws),
                biases=tuple(rng.standard_normal(m) for _ in range(L - 1)) if bias else None,
                gamma=rng.standard_normal(m) if bn else None,
                alpha=rng.standard_normal(m) if bn else None,
            )
        )

    def flat_get(net: Network) -> np.ndarray:
        parts = list(net.weights) + list(net.biases or ()) + ([net.gamma, net.alpha] if bn else [])
        return np.concatenate([np.ravel(a) for a in parts])

    def flat_set(net: Network, theta: np.ndarray) -> Network:
        parts, i = [], 0
        for a in (
            list(net.weights) + list(net.biases or ()) + ([net.gamma, net.alpha] if bn else [])
        ):
            parts.append(theta[i : i + a.size].reshape(a.shape))
            i += a.size
        Ws, rest = parts[:L], parts[L:]
        biases = tuple(rest[: L - 1]) if bias else None
        rest = rest[L - 1 :] if bias else rest
        return Network(tuple(Ws), biases, rest[0] if bn else None, rest[1] if bn else None)

    params = {
        "W": [
            torch.tensor(np.stack([nt.weights[l] for nt in nets]), requires_grad=True)
            for l in range(L)
        ]
    }
    if bias:
        params["b"] = [
            torch.tensor(np.stack([nt.biases[l] for nt in nets])[:, None], requires_grad=True)
            for l in range(L - 1)
        ]
    if bn:
        params["gamma"] = torch.tensor(
            np.stack([nt.gamma for nt in nets])[:, None], requires_grad=True
        )
        params["alpha"] = torch.tensor(
            np.stack([nt.alpha for nt in nets])[:, None], requires_grad=True
        )
    X = torch.tensor(np.stack([p.X for p in problems]))
    Y = torch.tensor(np.stack([p.Y for p in problems]))
    beta = torch.tensor([p.beta for p in problems], dtype=torch.float64)
    losses = _losses(_shape_of(problems), params, X, Y, beta, 1.0)
    leaves = params["W"] + params.get("b", []) + ([params["gamma"], params["alpha"]] if bn else [])
    grads = torch.autograd.grad(losses.sum(), leaves)
    shape = _shape_of(problems)
    # the trainer's step: hand-written backward (no BN) or autograd (BN)
    step_losses, step_grads = _losses_and_grads(shape, params, X, Y, beta, 1.0)
    for i, (p, net) in enumerate(zip(problems, nets, strict=True)):
        assert_close(float(losses[i].detach()), objective(p, net), rtol=1e-13)
        assert_close(float(step_losses[i]), objective(p, net), rtol=1e-13)
        fd = _fd_gradient(p, net, flat_get, flat_set)
        for gs in (grads, step_grads):
            ours = np.concatenate([g[i].detach().numpy().ravel() for g in gs])
            assert np.max(np.abs(ours - fd)) <= 1e-6 * max(1.0, np.max(np.abs(fd)))
    # mini-batch scaling: the step's gradient equals autograd of the scaled loss
    scaled = _losses(shape, params, X[:, :4], Y[:, :4], beta, n / 4)
    auto = torch.autograd.grad(scaled.sum(), leaves)
    _, manual = _losses_and_grads(shape, params, X[:, :4], Y[:, :4], beta, n / 4)
    for a, m_ in zip(auto, manual, strict=True):
        assert rel_diff(m_.detach().numpy(), a.numpy()) <= 1e-12


def test_minibatch_estimate_is_unbiased_scaling(rng: np.random.Generator) -> None:
    """(n/b)·Σ_batch over all disjoint batches of a permutation averages to the full data term."""
    p = Problem(
        rng.standard_normal((12, 3)),
        rng.standard_normal((12, 1)),
        2,
        0.5,
        activation="relu",
        width=4,
    )
    shape = _shape_of([p])
    Ws = [torch.tensor(rng.standard_normal(s))[None] for s in [(3, 4), (4, 1)]]
    X, Y = torch.tensor(p.X)[None], torch.tensor(p.Y)[None]
    beta = torch.tensor([p.beta], dtype=torch.float64)
    full = float(_losses(shape, {"W": Ws}, X, Y, beta, 1.0)[0])
    parts = [
        float(_losses(shape, {"W": Ws}, X[:, s : s + 3], Y[:, s : s + 3], beta, 12 / 3)[0])
        for s in range(0, 12, 3)
    ]
    assert_close(np.mean(parts), full, rtol=1e-13)


def test_linear_two_layer_whitened_reaches_closed_form(rng: np.random.Generator) -> None:
    """THEORY §1, L = 2: P* = Σ_k h_β(σ_k(Y)); trained rank = #{σ_k(Y) > β}."""
    n, d, K, m = 8, 12, 3, 6
    X = whitened(rng, n, d)
    Y = rng.standard_normal((n, K))
    s = np.linalg.svd(Y, compute_uv=False)
    beta = float(
        np.sort(s)[1] + 0.3 * (np.sort(s)[2] - np.sort(s)[1])
    )  # two σ_k below β, one above
    p_star = float(np.sum(huber(s, beta)))
    p = Problem(X, Y, 2, beta, width=m)
    out = train(
        [p, p],
        TrainConfig(steps=1500, lr=0.05, momentum=0.9, polish=300, log_every=500),
        seeds=[1, 2],
    )
    from solvers.structure import layer_stats

    for value, net in zip(out.objectives, out.networks, strict=True):
        assert_close(value, p_star, rtol=1e-6)
        assert value >= p_star * (1 - 1e-12)
        ranks = [st["rank"] for st in layer_stats(net.weights, rank_tol=1e-4)]
        assert ranks == [int(np.sum(s > beta))] * 2


def test_deep_linear_partial_isometry_reaches_closed_form(rng: np.random.Generator) -> None:
    """THEORY §1, L = 3, K = 1, X a partial isometry of rank 4 < n:
    P* = ½‖y‖² − ½‖Xᵀy‖² + g_3(‖Xᵀy‖); every layer rank one (‖W‖₂/‖W‖_F → 1)."""
    n, d, r, m = 8, 6, 4, 5
    U, _ = np.linalg.qr(rng.standard_normal((n, r)))
    V, _ = np.linalg.qr(rng.standard_normal((d, r)))
    X = U @ V.T
    y = rng.standard_normal(n) * 2
    beta = 0.4
    q = np.linalg.norm(X.T @ y)
    p_star = 0.5 * y @ y - 0.5 * q**2 + path_value(q, beta, 3)
    assert path_value(q, beta, 3) < 0.5 * q**2  # the non-zero branch: the test is not trivial
    p = Problem(X, y, 3, beta, width=m)
    out = train(
        [p, p],
        TrainConfig(steps=2000, lr=0.03, momentum=0.9, polish=300, log_every=500),
        seeds=[4, 5],
    )
    for value in out.objectives:
        assert_close(value, p_star, rtol=1e-6)
    assert np.all(out.norm_ratios[:, :, -1] >= 0.999)
    assert np.all(out.norm_ratios[:, 0, 0] < 0.9)  # it was not rank one at init


def test_relu_two_layer_whitened_reaches_closed_form(rng: np.random.Generator) -> None:
    """THEORY §3, L = 2: P* = h_β(‖y_+‖) + h_β(‖y_−‖)."""
    n, d, m = 8, 10, 8
    X = whitened(rng, n, d)
    y = rng.standard_normal(n)
    beta = 0.3
    p_star = huber(np.linalg.norm(np.maximum(y, 0)), beta) + huber(
        np.linalg.norm(np.maximum(-y, 0)), beta
    )
    p = Problem(X, y, 2, beta, activation="relu", width=m)
    out = train(
        [p] * 3,
        TrainConfig(steps=2000, lr=0.05, momentum=0.9, polish=300, log_every=500),
        seeds=[0, 1, 2],
    )
    assert np.all(out.objectives >= p_star * (1 - 1e-9))  # P* is a lower bound for every run
    assert_close(float(np.min(out.objectives)), p_star, rtol=1e-6)


def test_huge_learning_rate_diverges_only_that_network(rng: np.random.Generator) -> None:
    problems = [
        Problem(
            rng.standard_normal((10, 4)),
            rng.standard_normal(10),
            3,
            0.1,
            activation="relu",
            width=6,
        )
        for _ in range(3)
    ]
    out = train(
        problems,
        TrainConfig(steps=200, lr=0.01, log_every=50),
        seeds=[0, 1, 2],
        lr=[0.01, 1e3, 0.005],
    )
    assert list(out.diverged) == [False, True, False]
    assert np.all(np.isfinite(out.objectives[[0, 2]]))
    assert np.isnan(out.curves[1, -1]) and np.all(np.isfinite(out.curves[[0, 2]]))
    assert np.all(out.curves[[0, 2], -1] < out.curves[[0, 2], 0])
    # the healthy networks trained exactly as they would alone
    alone = train(
        [problems[2]], TrainConfig(steps=200, lr=0.01, log_every=50), seeds=[2], lr=[0.005]
    )
    assert rel_diff(out.networks[2].weights[1], alone.networks[0].weights[1]) <= 1e-12


@pytest.mark.parametrize("bias,batchnorm", [(True, False), (False, True), (True, True)])
def test_bias_and_batchnorm_train(rng: np.random.Generator, bias: bool, batchnorm: bool) -> None:
    n = 12
    x = np.sort(rng.uniform(-1, 1, n))
    problems = [
        Problem(
            x,
            np.sin(3 * x) + 0.1 * rng.standard_normal(n),
            3,
            0.01,
            activation="relu",
            width=8,
            bias=bias,
            batchnorm=batchnorm,
        )
    ]
    problems.append(
        Problem(
            x, np.cos(2 * x), 3, 0.02, activation="relu", width=8, bias=bias, batchnorm=batchnorm
        )
    )
    out = train(
        problems, TrainConfig(steps=600, lr=0.01, batch_size=6, log_every=100), seeds=[0, 1]
    )
    for p, net, value, curve in zip(
        problems, out.networks, out.objectives, out.curves, strict=True
    ):
        assert value == objective(p, net)
        assert_close(curve[-1], value, rtol=1e-10)
        assert value < 0.5 * curve[0]
        assert (net.biases is not None) == bias and (net.gamma is not None) == batchnorm
    if (
        bias
    ):  # first-layer kinks −b_j/w_j placed inside the data range at init (and mostly still there)
        net = out.networks[0]
        kinks = -net.biases[0] / net.weights[0][0]
        assert np.mean((kinks > x.min() - 0.5) & (kinks < x.max() + 0.5)) > 0.5


def test_float32_training(rng: np.random.Generator) -> None:
    p = Problem(
        rng.standard_normal((10, 4)),
        rng.standard_normal((10, 2)),
        3,
        0.1,
        activation="relu",
        width=6,
    )
    out32 = train([p], TrainConfig(steps=200, lr=0.01, dtype="float32", log_every=100), seeds=[0])
    out64 = train([p], TrainConfig(steps=200, lr=0.01, dtype="float64", log_every=100), seeds=[0])
    assert out32.objectives[0] == objective(p, out32.networks[0])
    assert_close(out32.objectives[0], out64.objectives[0], rtol=1e-4)
    assert_close(out32.curves[0, -1], out32.objectives[0], rtol=1e-5)


def test_polish_runs_in_float64_after_float32(rng: np.random.Generator) -> None:
    p = Problem(whitened(rng, 6, 8), rng.standard_normal((6, 2)), 2, 0.2, width=4)
    p_star = float(np.sum(huber(np.linalg.svd(p.Y, compute_uv=False), 0.2)))
    out = train(
        [p], TrainConfig(steps=500, lr=0.05, dtype="float32", polish=200, log_every=100), seeds=[0]
    )
    assert_close(out.objectives[0], p_star, rtol=1e-9)


def test_polish_uses_its_iterations_and_reports_them(rng: np.random.Generator) -> None:
    """The polish (SciPy L-BFGS-B, float64) from SGD's end point: on smooth deep linear nets
    (whitened, §1) it goes on to the closed form within 1e-10, however far SGD stopped; on 3-layer
    ReLU nets it never ends above SGD. It reports its iterations (≤ the budget) and the final
    gradient norm, and a batch gives each network what it gets alone."""
    from solvers.solve import solve

    X = whitened(rng, 8, 12)
    lin = [Problem(X, rng.standard_normal((8, 2)), 3, beta, width=6) for beta in (0.05, 0.1)]
    out = train(lin, TrainConfig(steps=100, lr=0.02, polish=800, log_every=50), seeds=[0, 1])
    for i, p in enumerate(lin):
        p_star = float(solve(p).objective)
        assert (out.sgd_objectives[i] - p_star) / p_star > 1e-6  # SGD alone stopped short
        assert abs(out.objectives[i] - p_star) / p_star <= 1e-10, out.polish_info[i]
        info = out.polish_info[i]
        assert 0 < info["iterations"] <= 800 and info["grad_norm"] <= 1e-6
    relu = [
        Problem(X, rng.standard_normal(8), 3, b, activation="relu", width=10) for b in (0.1, 0.2)
    ]
    cfg = TrainConfig(steps=300, lr=0.02, polish=400, log_every=100)
    out = train(relu, cfg, seeds=[0, 1])
    assert out.polish_info is not None and len(out.polish_info) == 2
    for i, p in enumerate(relu):
        info = out.polish_info[i]
        assert 0 <= info["iterations"] <= 400 and np.isfinite(info["grad_norm"])
        assert out.objectives[i] <= out.sgd_objectives[i]
        alone = train([p], cfg, seeds=[i])
        assert alone.objectives[0] == out.objectives[i] and alone.polish_info[0] == info
    assert train(relu[:1], TrainConfig(steps=10), seeds=[0]).polish_info is None


def test_progress_and_steps_zero(rng: np.random.Generator) -> None:
    p = Problem(rng.standard_normal((5, 2)), rng.standard_normal(5), 2, 0.1, width=3)
    seen: list[int] = []
    out = train([p], TrainConfig(steps=7, log_every=3), seeds=[0], progress=seen.append)
    assert seen == [0, 3, 6, 7] and list(out.curve_steps) == seen
    out0 = train([p], TrainConfig(steps=0), seeds=[9])
    assert out0.curves.shape == (1, 1) and out0.objectives[0] == objective(p, out0.networks[0])
    # he init: N(0, 2/fan_in) — the init's scale is right on a wide layer
    wide = Problem(rng.standard_normal((5, 400)), rng.standard_normal(5), 2, 0.1, width=300)
    W1 = train([wide], TrainConfig(steps=0, init_scale=1.0), seeds=[1]).networks[0].weights[0]
    assert_close(float(np.var(W1)), 2 / 400, rtol=0.02)


def test_validation(rng: np.random.Generator) -> None:
    p = Problem(rng.standard_normal((5, 2)), rng.standard_normal(5), 2, 0.1, width=3)
    cfg = TrainConfig(steps=1)
    with pytest.raises(ValueError, match="width"):
        train([p, Problem(p.X, p.Y, 2, 0.1, width=4)], cfg, seeds=[0, 1])
    with pytest.raises(ValueError, match="activation"):
        train([p, Problem(p.X, p.Y, 2, 0.1, activation="relu", width=3)], cfg, seeds=[0, 1])
    with pytest.raises(ValueError, match="depth"):
        train([p, Problem(p.X, p.Y, 3, 0.1, width=3)], cfg, seeds=[0, 1])
    with pytest.raises(ValueError, match="n"):
        train([p, Problem(p.X[:4], p.Y[:4], 2, 0.1, width=3)], cfg, seeds=[0, 1])
    with pytest.raises(ValueError, match="width"):
        train([Problem(p.X, p.Y, 2, 0.1)], cfg, seeds=[0])
    with pytest.raises(ValueError, match="seeds"):
        train([p, p], cfg, seeds=[0])
    with pytest.raises(ValueError, match="lr"):
        train([p, p], cfg, seeds=[0, 1], lr=[0.1])
    with pytest.raises(ValueError, match="batch_size"):
        train([p], TrainConfig(steps=1, batch_size=6), seeds=[0])
    with pytest.raises(ValueError, match="init"):
        TrainConfig(steps=1, init="xavier")
    with pytest.raises(ValueError, match="dtype"):
        TrainConfig(steps=1, dtype="float16")
    with pytest.raises(ValueError, match="steps"):
        TrainConfig(steps=-1)


@pytest.mark.parametrize(
    ("activation", "depth", "bias", "batchnorm"),
    [
        ("linear", 2, False, False),
        ("relu", 3, False, False),
        ("relu", 4, True, False),
        ("linear", 3, False, True),
        ("relu", 3, True, True),
    ],
)
def test_batched_forward_equals_float64_reference(
    rng: np.random.Generator, activation: str, depth: int, bias: bool, batchnorm: bool
) -> None:
    """The one batched torch forward pass (``sgd._hidden`` via ``forward_batch``) against the
    float64 numpy reference ``solvers.problem.forward``: every network of a batch of 4, ≤ 1e-12."""
    from solvers.problem import forward
    from solvers.sgd import forward_batch

    n, d, K, m = 7, 5, 2, 6
    problems, networks = [], []
    for _ in range(4):
        p = Problem(
            rng.standard_normal((n, d)),
            rng.standard_normal((n, K)),
            depth,
            0.3,
            activation,
            width=m,
            bias=bias,
            batchnorm=batchnorm,
        )
        dims = [d] + [m] * (depth - 1) + [K]
        Ws = tuple(rng.standard_normal((dims[i], dims[i + 1])) for i in range(depth))
        bs = tuple(rng.standard_normal(m) for _ in range(depth - 1)) if bias else None
        g, a = (rng.standard_normal(m), rng.standard_normal(m)) if batchnorm else (None, None)
        problems.append(p)
        networks.append(Network(weights=Ws, biases=bs, gamma=g, alpha=a))
    batched = forward_batch(problems, networks)
    for i, (p, net) in enumerate(zip(problems, networks, strict=True)):
        ref = forward(p, net)
        assert batched[i].shape == ref.shape
        err = float(np.max(np.abs(batched[i] - ref)))
        assert err <= 1e-12 * max(1.0, float(np.max(np.abs(ref)))), err
    # and it can fail: a perturbed weight is seen
    bad = list(networks)
    bad[0] = Network(
        weights=(networks[0].weights[0] + 1e-9,) + networks[0].weights[1:],
        biases=networks[0].biases,
        gamma=networks[0].gamma,
        alpha=networks[0].alpha,
    )
    moved = forward_batch(problems, bad)
    assert np.max(np.abs(moved[0] - forward(problems[0], networks[0]))) > 1e-12
