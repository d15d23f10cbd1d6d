"""Batched SGD: train B networks of one shape side by side on the THEORY §0 objective.

Every network ``i`` minimises its own problem's SUM objective (THEORY §0)

    P_i(θ) = ½‖f_θ(X_i) − Y_i‖_F² + (β_i/2) Σ_l ‖W_l‖_F²

(batch norm, THEORY §6: only ``γ, α, W_L`` regularised; biases, THEORY §5, never). The B
networks may differ in data, β, learning rate, momentum, init scale and seed, but share
depth ``L``, width ``m``, ``n``, ``d``, ``K``, activation and the bias / batch-norm flags, so
their weights stack into ``[B, ·, ·]`` tensors and each layer is ONE batched matmul
(``torch.bmm`` / ``torch.baddbmm``) for the whole batch (DESIGN.md, "Batching small
networks"). Nothing in a step loops over networks in Python.

Step (heavy-ball momentum, PyTorch convention), with ``g`` the gradient of the estimate
below and ``η_t = η · lr_decay^⌊t / lr_decay_every⌋``:

    v ← μ v + g,        θ ← θ − η_t v.

Mini-batches: a mini-batch ``S`` of size ``b`` estimates the data term without bias by
``(n/b) · ½ Σ_{i∈S} ‖f(x_i) − y_i‖²``; the regulariser is exact. (With batch norm the
normalisation statistics are those of the mini-batch.) Each network reads its samples
from its own stream of epoch permutations, a pure function of ``(seed, epoch)`` (a
splitmix64 hash of ``seed, epoch, j`` sorted per row), so a network trains identically
whether it runs alone or inside any batch. Initial weights come from
``numpy.random.default_rng(seed)`` for the same reason.

Init: ``"he"``: ``W_l ~ N(0, 2/fan_in)·init_scale``; ``"gaussian"``: ``N(0, 1/fan_in)·init_scale``.
Biases start at 0, except for 1-D inputs (``d = 1``, THEORY §5): there the first-layer
bias of neuron j is ``−u_j W_1[0, j]`` with ``u_j ~ U[x_min, x_max]``, which puts the
neuron's kink at a uniformly random point of the data range instead of all at 0.
Batch norm starts at ``γ = 1``, ``α = 0``.

Divergence: a network whose (estimated) loss turns NaN/inf or exceeds 1e30 is frozen (its
step size and momentum set to 0, its stacked parameters zeroed so that its masked arithmetic
stays finite, a copy of them kept for the output) and marked diverged; the others train on.
The check reads flags back from the device every step on CPU and every 16 steps on a GPU.

Optional polish: ``polish`` iterations of L-BFGS (SciPy's L-BFGS-B on this module's float64
torch objective and gradient) per non-diverged network on the full objective (whatever the
training dtype); a polish that does not lower the float64 objective is discarded. Its
iterations and final gradient norm are returned (``TrainOutput.polish_info``).

The reported objectives are always recomputed in float64 numpy by
:func:`solvers.problem.objective` — the one definition.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from solvers.options import DTYPES, TrainConfig
from solvers.problem import Network, Problem, objective

__all__ = [
    "DIVERGENCE_THRESHOLD",
    "TrainConfig",
    "TrainOutput",
    "forward_batch",
    "forward_torch",
    "train",
]

DIVERGENCE_THRESHOLD = 1e30
_GPU_CHECK_EVERY = 16
_DTYPES = {name: getattr(torch, name) for name in DTYPES}
_MASK64 = (1 << 64) - 1


@dataclass
class TrainOutput:
    """Result of :func:`train` for a batch of B networks (T logged steps)."""

    networks: list[Network]  # float64 numpy, one per problem
    objectives: np.ndarray  # [B] solvers.objective(problem_i, networks[i]) in float64
    diverged: np.ndarray  # [B] bool
    curve_steps: np.ndarray  # [T] steps at which the curves were recorded (0 … steps)
    curves: np.ndarray  # [B, T] THEORY §0 objective (training dtype), NaN once diverged
    norm_ratios: (
        np.ndarray | None
    )  # [B, L, T] ‖W_l‖₂/‖W_l‖_F (NaN once diverged), None unless track_layers
    wall_time: float  # seconds, whole call
    device: str
    # SGD alone, before the L-BFGS polish (== networks / objectives when polish = 0)
    sgd_networks: list[Network] | None = None
    sgd_objectives: np.ndarray | None = None  # [B] float64 objective of sgd_networks
    # [B] what the polish did (iterations, evaluations, grad_norm; None: diverged), polish > 0
    polish_info: list[dict[str, float] | None] | None = None


# ----------------------------------------------------------------------------- randomness


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser on uint64 arrays (wrapping arithmetic)."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


class _IndexStream:
    """Per-network sample order: the concatenation of epoch permutations, each a pure
    function of (seed, epoch); ``take(b)`` returns the next ``[B, b]`` indices on device."""

    def __init__(self, seeds: Sequence[int], n: int, b: int, device: torch.device) -> None:
        self.base = _splitmix64(np.array([s & _MASK64 for s in seeds], dtype=np.uint64))
        self.n, self.device = n, device
        self.epoch = 0
        self.epochs_per_refill = max(1, math.ceil(256 * b / n))
        self.buffer = torch.empty((len(seeds), 0), dtype=torch.int64, device=device)

    def _permutations(self, epochs: int) -> np.ndarray:
        e = np.arange(self.epoch, self.epoch + epochs, dtype=np.uint64)
        row = _splitmix64(self.base[:, None] + e[None, :])  # [B, E]
        j = np.arange(self.n, dtype=np.uint64)
        keys = _splitmix64(row[:, :, None] + j[None, None, :])  # [B, E, n]
        self.epoch += epochs
        perm = np.argsort(keys, axis=2, kind="stable")
        return perm.reshape(perm.shape[0], -1)

    def take(self, b: int) -> torch.Tensor:
        if self.buffer.shape[1] < b:
            fresh = torch.from_numpy(self._permutations(self.epochs_per_refill)).to(self.device)
            self.buffer = torch.cat([self.buffer, fresh], dim=1)
        out, self.buffer = self.buffer[:, :b], self.buffer[:, b:]
        return out


def _init_network(p: Problem, m: int, seed: int, config: TrainConfig, scale: float) -> dict:
    rng = np.random.default_rng(seed)
    dims = [p.d] + [m] * (p.depth - 1) + [p.K]
    gain = 2.0 if config.init == "he" else 1.0
    Ws = [
        rng.standard_normal((dims[l], dims[l + 1])) * (math.sqrt(gain / dims[l]) * scale)
        for l in range(p.depth)
    ]
    params: dict = {"W": Ws}
    if p.bias:
        bs = [np.zeros(m) for _ in range(p.depth - 1)]
        if p.d == 1:
            x = p.X[:, 0]
            kinks = rng.uniform(x.min(), x.max(), m)
            bs[0] = -kinks * Ws[0][0]
        params["b"] = bs
    if p.batchnorm:
        params["gamma"] = np.ones(m)
        params["alpha"] = np.zeros(m)
    return params


# ----------------------------------------------------------------------------- the model


@dataclass(frozen=True)
class _Shape:
    n: int
    d: int
    K: int
    L: int
    m: int
    activation: str
    bias: bool
    batchnorm: bool


def _shape_of(problems: Sequence[Problem]) -> _Shape:
    if len(problems) == 0:
        raise ValueError("problems is empty: give at least one Problem")
    for i, p in enumerate(problems):
        if not isinstance(p, Problem):
            raise ValueError(f"problems[{i}] is not a solvers.Problem")
        if p.width is None:
            raise ValueError(f"width: problems[{i}] has width=None; training needs a hidden width")
    p0 = problems[0]
    ref = {
        "n": p0.n,
        "d": p0.d,
        "K": p0.K,
        "depth": p0.depth,
        "width": p0.width,
        "activation": p0.activation,
        "bias": p0.bias,
        "batchnorm": p0.batchnorm,
    }
    for i, p in enumerate(problems[1:], start=1):
        for name, value in ref.items():
            other = getattr(p, name)
            if other != value:
                raise ValueError(
                    f"{name}: all problems must share one shape; problems[0].{name}={value!r}, "
                    f"problems[{i}].{name}={other!r}"
                )
    return _Shape(p0.n, p0.d, p0.K, p0.depth, int(p0.width), p0.activation, p0.bias, p0.batchnorm)


def _param_list(params: dict) -> list[torch.Tensor]:
    out = list(params["W"])
    if "b" in params:
        out += list(params["b"])
    if "gamma" in params:
        out += [params["gamma"], params["alpha"]]
    return out


def _hidden(shape: _Shape, params: dict, X: torch.Tensor) -> list[torch.Tensor]:
    """The batched forward pass (THEORY §0; biases §5, batch norm §6): ``[H_0 = X, H_1, …,
    H_{L−1}]``, ``H_l = σ(H_{l−1} W_l + b_l)`` — the torch twin of
    :func:`solvers.problem.last_hidden` (tested against it to 1e-12 in float64), the only
    forward pass of this module (losses, gradients, polish and :func:`forward_batch` use it).

    ``X [B, s, d]``; weights ``[B, in, out]``; biases, γ, α ``[B, 1, m]``.
    """
    Ws = params["W"]
    Hs = [X]
    for l in range(shape.L - 1):
        A = torch.baddbmm(params["b"][l], Hs[-1], Ws[l]) if shape.bias else torch.bmm(Hs[-1], Ws[l])
        if shape.batchnorm and l == shape.L - 2:
            A = A - A.mean(dim=1, keepdim=True)
            var = (A * A).mean(dim=1, keepdim=True)
            positive = var > 0
            std = torch.sqrt(torch.where(positive, var, torch.ones_like(var)))
            A = (A / std) * positive * params["gamma"] + params["alpha"]
        Hs.append(torch.relu(A) if shape.activation == "relu" else A)
    return Hs


def _losses(
    shape: _Shape,
    params: dict,
    X: torch.Tensor,
    Y: torch.Tensor,
    beta: torch.Tensor,
    data_scale: float,
) -> torch.Tensor:
    """Per-network ``data_scale · ½‖f(X) − Y‖² + (β/2)·reg``, shape ``[B]``.

    ``X [B, s, d]``, ``Y [B, s, K]``; weights ``[B, in, out]``; biases, γ, α ``[B, 1, m]``.
    """
    Ws = params["W"]
    R = torch.bmm(_hidden(shape, params, X)[-1], Ws[-1]) - Y
    data = 0.5 * (R * R).sum(dim=(1, 2))
    if shape.batchnorm:
        reg_terms = [params["gamma"], params["alpha"], Ws[-1]]
    else:
        reg_terms = list(Ws)
    reg = sum((T * T).sum(dim=(1, 2)) for T in reg_terms)
    return data_scale * data + 0.5 * beta * reg


def _losses_and_grads(
    shape: _Shape,
    params: dict,
    X: torch.Tensor,
    Y: torch.Tensor,
    beta: torch.Tensor,
    data_scale: float,
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Per-network losses (as :func:`_losses`) and their gradients, ordered as :func:`_param_list`.

    Without batch norm the backward pass is written out (three batched matmuls per layer,
    the weight decay fused into the weight-gradient matmul): ``G_L = s·R``,
    ``∇W_l = β W_l + H_{l−1}ᵀ G_l``, ``G_{l−1} = (G_l W_lᵀ) ⊙ 1[H_{l−1} > 0]`` (ReLU),
    ``∇b_{l−1} = Σ_rows G_{l−1}``. With batch norm, torch autograd differentiates :func:`_losses`.
    """
    if shape.batchnorm:
        with torch.enable_grad():
            leaves = [t.detach().requires_grad_(True) for t in _param_list(params)]
            rebuilt = _rebuild(shape, leaves)
            losses = _losses(shape, rebuilt, X, Y, beta, data_scale)
            grads = list(torch.autograd.grad(losses.sum(), leaves))
        return losses.detach(), grads
    with torch.no_grad():
        return _manual_losses_and_grads(shape, params, X, Y, beta, data_scale)


def _manual_losses_and_grads(
    shape: _Shape,
    params: dict,
    X: torch.Tensor,
    Y: torch.Tensor,
    beta: torch.Tensor,
    data_scale: float,
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    Ws = params["W"]
    Hs = _hidden(shape, params, X)
    R = torch.bmm(Hs[-1], Ws[-1]) - Y
    reg = sum(torch.linalg.vector_norm(W, dim=(1, 2)) ** 2 for W in Ws)
    losses = (0.5 * data_scale) * (R * R).sum(dim=(1, 2)) + 0.5 * beta * reg
    beta3 = beta.reshape(-1, 1, 1)
    G = R if data_scale == 1.0 else R * data_scale
    gW: list[torch.Tensor] = [None] * shape.L  # type: ignore[list-item]
    gb: list[torch.Tensor] = [None] * (shape.L - 1)  # type: ignore[list-item]
    for l in range(shape.L - 1, -1, -1):
        H = Hs[l]
        gW[l] = torch.baddbmm(Ws[l] * beta3, H.transpose(1, 2), G)
        if l > 0:
            G = torch.bmm(G, Ws[l].transpose(1, 2))
            if shape.activation == "relu":
                G = torch.ops.aten.threshold_backward(G, H, 0)
            if shape.bias:
                gb[l - 1] = G.sum(dim=1, keepdim=True)
    return losses, gW + (gb if shape.bias else [])


def _rebuild(shape: _Shape, leaves: list[torch.Tensor]) -> dict:
    """Inverse of :func:`_param_list`."""
    L = shape.L
    params: dict = {"W": leaves[:L]}
    rest = leaves[L:]
    if shape.bias:
        params["b"], rest = rest[: L - 1], rest[L - 1 :]
    if shape.batchnorm:
        params["gamma"], params["alpha"] = rest[0], rest[1]
    return params


def _norm_ratios(Ws: list[torch.Tensor]) -> torch.Tensor:
    """``[B, L]`` of ‖W_l‖₂/‖W_l‖_F (0 for a zero matrix)."""
    cols = []
    for W in Ws:
        spec = torch.linalg.matrix_norm(W, ord=2)
        fro = torch.linalg.matrix_norm(W, ord="fro")
        cols.append(torch.where(fro > 0, spec / torch.where(fro > 0, fro, 1.0), 0.0))
    return torch.stack(cols, dim=1)


def _per_network(
    name: str, values: Sequence[float] | None, default: float, B: int, *, positive: bool = False
) -> np.ndarray:
    if values is None:
        return np.full(B, float(default))
    arr = np.asarray(values, dtype=np.float64)
    if arr.shape != (B,):
        raise ValueError(f"{name} must hold one value per problem ({B}), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)) or np.any(arr < 0) or (positive and np.any(arr <= 0)):
        raise ValueError(f"{name} must be finite and >= 0, got {arr}")
    return arr


def _to_numpy_networks(shape: _Shape, params: dict) -> list[Network]:
    """Float64 numpy networks from stacked parameters (one device-to-host copy per tensor)."""

    def get(t: torch.Tensor) -> np.ndarray:
        return t.detach().to("cpu", torch.float64).numpy()

    Ws = [get(W) for W in params["W"]]
    bs = [get(b)[:, 0] for b in params["b"]] if shape.bias else None
    gamma = get(params["gamma"])[:, 0] if shape.batchnorm else None
    alpha = get(params["alpha"])[:, 0] if shape.batchnorm else None
    return [
        Network(
            weights=tuple(W[i].copy() for W in Ws),
            biases=tuple(b[i].copy() for b in bs) if bs is not None else None,
            gamma=gamma[i].copy() if gamma is not None else None,
            alpha=alpha[i].copy() if alpha is not None else None,
        )
        for i in range(Ws[0].shape[0])
    ]


def _stack(
    arrays: Sequence[np.ndarray],
    device: torch.device | str,
    dt: torch.dtype,
    view: tuple[int, ...] | None = None,
) -> torch.Tensor:
    """One ``[B, …]`` tensor from B float64 arrays (one host-to-device copy)."""
    t = torch.from_numpy(np.stack([np.asarray(a, np.float64) for a in arrays]))
    t = t.to(device=device, dtype=dt)
    return t if view is None else t.reshape(view)


def _stacked_params(
    shape: _Shape, members: Sequence[dict], device: torch.device | str, dt: torch.dtype
) -> dict:
    """Stacked parameters (``W``; ``b``, ``gamma``, ``alpha`` as the shape needs) of B networks
    given as dicts with those keys (:func:`_init_network`'s format)."""
    B, m = len(members), shape.m
    params: dict = {"W": [_stack([q["W"][l] for q in members], device, dt) for l in range(shape.L)]}
    if shape.bias:
        params["b"] = [
            _stack([q["b"][l] for q in members], device, dt, (B, 1, m)) for l in range(shape.L - 1)
        ]
    if shape.batchnorm:
        params["gamma"] = _stack([q["gamma"] for q in members], device, dt, (B, 1, m))
        params["alpha"] = _stack([q["alpha"] for q in members], device, dt, (B, 1, m))
    return params


def forward_batch(
    problems: Sequence[Problem],
    networks: Sequence[Network],
    *,
    device: str | torch.device = "cpu",
    dtype: str = "float64",
) -> np.ndarray:
    """``f(X_i)`` of network ``i`` on problem ``i`` for a batch of one shape, ``[B, n, K]``
    (the batched pass the trainer uses; :func:`solvers.problem.forward` is the reference)."""
    shape = _shape_of(problems)
    if len(networks) != len(problems):
        raise ValueError(f"networks must hold one network per problem ({len(problems)})")
    dt = _DTYPES[dtype]
    members = [
        {"W": net.weights, "b": net.biases, "gamma": net.gamma, "alpha": net.alpha}
        for net in networks
    ]
    params = _stacked_params(shape, members, device, dt)
    with torch.no_grad():
        X = _stack([p.X for p in problems], device, dt)
        out = torch.bmm(_hidden(shape, params, X)[-1], params["W"][-1])
    return out.to("cpu", torch.float64).numpy()


def forward_torch(p: Problem, weights: Sequence[torch.Tensor]) -> torch.Tensor:
    """Differentiable ``f(X)`` (n, K) of one bias- and BN-free network whose layers are torch
    tensors (any dtype/device): the batched pass of this module with B = 1, for optimisers
    that parametrise the layers themselves (e.g. :mod:`solvers.rescaled`)."""
    if p.bias or p.batchnorm:
        raise ValueError("p: forward_torch takes networks without biases or batch norm")
    shape = _Shape(p.n, p.d, p.K, p.depth, int(weights[0].shape[1]), p.activation, False, False)
    Ws = [W[None] for W in weights]
    X = torch.tensor(p.X, dtype=Ws[0].dtype, device=Ws[0].device)[None]  # a copy: X is read-only
    return torch.bmm(_hidden(shape, {"W": Ws}, X)[-1], Ws[-1])[0]


def _safe_objective(p: Problem, net: Network) -> float:
    with np.errstate(all="ignore"):
        return objective(p, net)


def _polish(
    shape: _Shape, p: Problem, net: Network, iterations: int, device: torch.device
) -> tuple[Network, dict[str, float]]:
    """Float64 L-BFGS on the full objective of one network; keeps the better of before/after.

    SciPy's L-BFGS-B (history 50, no tolerance on the gradient or the objective's decrease) on
    the flattened parameters, with the objective and gradient of this module's float64 torch
    pass; where its line search gives up (ReLU kinks) it restarts with a fresh memory from the
    best point, until ``iterations`` iterations in all or a restart that lowers nothing. Returns the network and what the polish
    did: ``iterations`` (L-BFGS iterations taken), ``evaluations`` and ``grad_norm`` (‖∇‖₂ of
    the objective at the returned network). torch's ``LBFGS`` stopped after 34–40 of 1,000
    iterations on 3-layer ReLU nets (its curvature and directional-derivative tests end the
    run at ReLU kinks) 5e-5 above P*, where this polish from the same point reaches 2e-10."""
    from scipy.optimize import minimize

    dt = torch.float64
    params: dict = {"W": [torch.tensor(W, dtype=dt, device=device)[None] for W in net.weights]}
    if shape.bias:
        params["b"] = [torch.tensor(b, dtype=dt, device=device)[None, None] for b in net.biases]
    if shape.batchnorm:
        params["gamma"] = torch.tensor(net.gamma, dtype=dt, device=device)[None, None]
        params["alpha"] = torch.tensor(net.alpha, dtype=dt, device=device)[None, None]
    leaves = _param_list(params)
    X = torch.tensor(p.X, dtype=dt, device=device)[None]
    Y = torch.tensor(p.Y, dtype=dt, device=device)[None]
    beta = torch.tensor([p.beta], dtype=dt, device=device)
    sizes = [t.numel() for t in leaves]

    def assign(x: np.ndarray) -> None:
        flat = torch.as_tensor(x, dtype=dt, device=device)
        with torch.no_grad():
            for t, chunk in zip(leaves, torch.split(flat, sizes), strict=True):
                t.copy_(chunk.reshape(t.shape))

    def value_and_grad(x: np.ndarray) -> tuple[float, np.ndarray]:
        assign(x)
        for t in leaves:
            t.requires_grad_(True)
            t.grad = None
        loss = _losses(shape, params, X, Y, beta, 1.0).sum()
        loss.backward()
        grad = torch.cat([t.grad.reshape(-1) for t in leaves])
        for t in leaves:
            t.requires_grad_(False)
        if not torch.isfinite(loss):
            return math.inf, np.zeros(sum(sizes))
        return float(loss.detach()), grad.to("cpu", dt).numpy()

    x0 = torch.cat([t.detach().reshape(-1) for t in leaves]).to("cpu", dt).numpy()
    x, f, nit, nfev = x0, value_and_grad(x0)[0], 0, 0
    while nit < iterations:  # restart with a fresh memory where the line search gave up
        res = minimize(
            value_and_grad,
            x,
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": iterations - nit, "maxfun": 20 * (iterations - nit),
                     "maxcor": 50, "ftol": 0.0, "gtol": 0.0},
        )  # fmt: skip
        nit, nfev = nit + max(int(res.nit), 1), nfev + int(res.nfev)
        if not res.fun < f:  # no progress from a fresh start: a (numerically) stationary point
            break
        x, f = res.x, float(res.fun)
    _, grad = value_and_grad(x)
    polished = _to_numpy_networks(shape, params)[0]
    before, after = _safe_objective(p, net), _safe_objective(p, polished)
    kept = np.isfinite(after) and after < before
    if not kept:
        _, grad = value_and_grad(x0)
    info = {
        "iterations": float(nit) if kept else 0.0,
        "evaluations": float(nfev),
        "grad_norm": float(np.linalg.norm(grad)),
    }
    return (polished if kept else net), info


# ----------------------------------------------------------------------------- training


def train(
    problems: Sequence[Problem],
    config: TrainConfig,
    *,
    seeds: Sequence[int],
    lr: Sequence[float] | None = None,
    momentum: Sequence[float] | None = None,
    init_scale: Sequence[float] | None = None,
    device: str | torch.device = "cpu",
    progress: Callable[[int], None] | None = None,
) -> TrainOutput:
    """Train one network per problem, all in one batch (see the module docstring).

    Args:
        problems: B problems of one shape (n, d, K, depth, width, activation, bias, batchnorm).
        config: shared options; ``lr``/``momentum``/``init_scale`` below override its scalars.
        seeds: one non-negative integer per problem (init and sample order).
        lr, momentum, init_scale: optional per-network values, length B.
        device: torch device for every tensor of the run.
        progress: called with the number of steps done at every logged step.
    """
    t_start = time.perf_counter()
    shape = _shape_of(problems)
    B = len(problems)
    seeds = list(seeds)
    if len(seeds) != B:
        raise ValueError(f"seeds must hold one seed per problem ({B}), got {len(seeds)}")
    for s in seeds:
        if not isinstance(s, (int, np.integer)) or isinstance(s, bool) or s < 0:
            raise ValueError(f"seeds must be non-negative integers, got {s!r}")
    if config.batch_size > shape.n:
        raise ValueError(
            f"batch_size={config.batch_size} exceeds the number of samples n={shape.n}"
        )
    lrs = _per_network("lr", lr, config.lr, B)
    moms = _per_network("momentum", momentum, config.momentum, B)
    scales = _per_network("init_scale", init_scale, config.init_scale, B)
    device = torch.device(device)
    dt = _DTYPES[config.dtype]

    inits = [
        _init_network(p, shape.m, s, config, c)
        for p, s, c in zip(problems, seeds, scales, strict=True)
    ]
    params = _stacked_params(shape, inits, device, dt)
    leaves = _param_list(params)
    velocity = [torch.zeros_like(t) for t in leaves]

    X = _stack([p.X for p in problems], device, dt)
    Y = _stack([p.Y for p in problems], device, dt)
    beta = torch.tensor([p.beta for p in problems], dtype=dt, device=device)
    lr_t = torch.tensor(lrs, dtype=dt, device=device).reshape(B, 1, 1)
    mom_t = torch.tensor(moms, dtype=dt, device=device).reshape(B, 1, 1)
    active = torch.ones(B, dtype=torch.bool, device=device)
    frozen: dict[int, list[torch.Tensor]] = {}  # diverged network -> its parameters when frozen
    failing = torch.zeros(B, dtype=torch.bool, device=device)
    # reading the flags back costs a host-device sync: every step on CPU, every 16 on a GPU
    # (a network failing in between keeps updating only itself until the check freezes it)
    check_every = 1 if device.type == "cpu" else _GPU_CHECK_EVERY

    b = config.batch_size
    full_batch = b == 0 or b == shape.n
    stream = None if full_batch else _IndexStream(seeds, shape.n, b, device)
    rows = torch.arange(B, device=device)[:, None]
    data_scale = 1.0 if full_batch else shape.n / b

    log_steps = list(range(0, config.steps, config.log_every)) + [config.steps]
    curve_vals: list[torch.Tensor] = []
    ratio_vals: list[torch.Tensor] = []
    nan = torch.tensor(float("nan"), dtype=dt, device=device)

    def log(step: int) -> None:
        full = _losses(shape, params, X, Y, beta, 1.0)
        ok = active & torch.isfinite(full) & (full <= DIVERGENCE_THRESHOLD)
        curve_vals.append(torch.where(ok, full, nan))
        if config.track_layers:
            ratio_vals.append(torch.where(active[:, None], _norm_ratios(params["W"]), nan))
        if progress is not None:
            progress(step)

    next_log = 0
    decay = 1.0
    with torch.no_grad():
        for step in range(config.steps):
            if step == log_steps[next_log]:
                log(step)
                next_log += 1
            if config.lr_decay_every and step > 0 and step % config.lr_decay_every == 0:
                decay *= config.lr_decay
            if full_batch:
                Xb, Yb = X, Y
            else:
                idx = stream.take(b)
                Xb, Yb = X[rows, idx], Y[rows, idx]
            losses, grads = _losses_and_grads(shape, params, Xb, Yb, beta, data_scale)
            failing |= ~(torch.isfinite(losses) & (losses <= DIVERGENCE_THRESHOLD))
            newly = active & failing
            if (step % check_every == check_every - 1 or step == config.steps - 1) and bool(
                newly.any()
            ):
                # freeze: keep a copy, then zero the network so that its (masked) arithmetic
                # stays finite; its step size and momentum become 0
                for i in torch.nonzero(newly).flatten().tolist():
                    frozen[i] = [t[i].clone() for t in leaves]
                active &= ~newly
                keep = active.reshape(B, 1, 1).to(dt)
                for t, v in zip(leaves, velocity, strict=True):
                    t.mul_(keep).nan_to_num_(0.0, 0.0, 0.0)
                    v.mul_(keep).nan_to_num_(0.0, 0.0, 0.0)
                losses, grads = _losses_and_grads(shape, params, Xb, Yb, beta, data_scale)
                lr_t = lr_t * keep
                mom_t = mom_t * keep
            step_size = lr_t * decay
            for t, v, g in zip(leaves, velocity, grads, strict=True):
                v.mul_(mom_t).add_(g)
                t.addcmul_(v, step_size, value=-1.0)
        log(config.steps)

    curves = torch.stack(curve_vals, dim=1).to("cpu", torch.float64).numpy()
    norm_ratios = (
        torch.stack(ratio_vals, dim=2).to("cpu", torch.float64).numpy()
        if config.track_layers
        else None
    )
    diverged = ~active.to("cpu").numpy()

    for i, saved in frozen.items():
        for t, value in zip(leaves, saved, strict=True):
            t[i] = value
    networks = _to_numpy_networks(shape, params)
    objectives = np.array(
        [_safe_objective(p, net) for p, net in zip(problems, networks, strict=True)]
    )
    bad = ~np.isfinite(objectives) | (objectives > DIVERGENCE_THRESHOLD)
    diverged = diverged | bad
    sgd_networks, sgd_objectives = list(networks), objectives.copy()
    polish_info: list[dict[str, float] | None] = [None] * B
    if config.polish > 0:
        for i in np.flatnonzero(~diverged):
            networks[i], polish_info[i] = _polish(
                shape, problems[i], networks[i], config.polish, device
            )
            objectives[i] = objective(problems[i], networks[i])

    return TrainOutput(
        networks=networks,
        objectives=objectives,
        diverged=diverged,
        curve_steps=np.array(log_steps, dtype=np.int64),
        curves=curves,
        norm_ratios=norm_ratios,
        wall_time=time.perf_counter() - t_start,
        device=str(device),
        sgd_networks=sgd_networks,
        sgd_objectives=sgd_objectives,
        polish_info=polish_info if config.polish > 0 else None,
    )
