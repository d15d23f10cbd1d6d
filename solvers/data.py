"""Seeded float64 data makers for the problems of docs/theory.md (no downloads, no global state).

Inputs ``X`` (shape ``(n, d)``):

- :func:`gaussian_X` — entries ``N(0, 1)/√n`` (THEORY E2).
- :func:`whitened_X` — rows orthonormal, ``X Xᵀ = I_n`` to ``‖X Xᵀ − I‖_F < 1e-12``; needs
  ``n ≤ d`` (THEORY §0 "whitened", §1, §3).
- :func:`zca` — ZCA whitening of given data: with the thin SVD ``X = U S Vᵀ`` (singular values
  below ``tol·σ_1`` dropped) it returns ``U Vᵀ``, a *partial isometry* (every non-zero singular
  value equal to 1) with the same row space (and column space) as ``X``. For ``n ≤ d`` and
  ``rank X = n`` this is exactly whitened; otherwise THEORY §1's partial-isometry form applies.
  No centring: centring would drop the rank to ``n − 1`` and lose ``X Xᵀ = I``.
- :func:`rank_one_X` — ``X = c aᵀ`` with ``‖a‖ = 1`` and ``c`` of mixed signs (THEORY §4).
- :func:`zigzag_1d` — THEORY §5 / E6: ``x`` sorted in ``[−1, 1]`` (endpoints included),
  ``y`` alternating in sign.
- :func:`digits` — scikit-learn's bundled 8×8 digits (``load_digits``, shipped with the
  package): raw pixels scaled to ``[0, 1]``; two-class signed targets or one-hot over chosen
  classes.

Whitening is a **transform** of the inputs, not a data kind: :func:`whiten_inputs` (the
``data.whiten`` axis of a sweep, :data:`WHITEN_KINDS`) maps the raw ``X`` of any kind to

- ``none`` — ``X`` unchanged;
- ``zca`` — :func:`zca` (symmetric whitening ``U Vᵀ``, no centring);
- ``pca`` — the principal-component coordinates ``X V S⁺ = [U_r, 0]``: ``zca(X)·V`` with ``V``
  orthogonal, so every problem of THEORY §0 (Frobenius weight decay on ``W_1``) has the same P*
  under ``pca`` and ``zca``; only the coordinates differ (signs fixed: the largest entry of each
  column of ``U_r`` is positive);
- ``exact`` — rows exactly orthonormal, ``X Xᵀ = I_n`` (needs ``n ≤ d``): ``zca`` when
  ``rank X = n``; a rank-deficient ``X`` has its missing row directions completed by unused
  right singular vectors, so THEORY §3 applies to every such ``X``;
- ``auto`` — the kind's own convention (the default; it keeps the data of every existing trial):
  ``digits`` are ZCA-whitened, every other kind is left as generated (``whitened`` has
  ``X Xᵀ = I`` by construction).

:func:`make_dataset` draws the raw ``X`` from the seed first and whitens it afterwards, so for
one seed every ``whiten`` value transforms the SAME raw data (a sweep over whitening compares
like with like). The ``whitened`` kind is a separate generator (a Haar-random orthonormal
frame): it has the distribution of ``gaussian`` + ``zca`` when ``n ≤ d`` (the polar factor of a
Gaussian matrix is Haar distributed) but not the same samples; use ``gaussian`` with
``whiten ∈ {none, zca}`` to compare raw and whitened data point for point.

Targets ``Y``: :func:`gaussian_Y` ``(n, K)`` standard normal, :func:`onehot_Y` (every class
present), :func:`signed_y` (``±1``, both signs present).

:func:`make_dataset` is the single entry point of the trial engine.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

__all__ = [
    "DATA_FIELDS",
    "DATA_KINDS",
    "TARGET_KINDS",
    "digits",
    "gaussian_X",
    "gaussian_Y",
    "data_problem",
    "make_dataset",
    "onehot_Y",
    "rank_one_X",
    "signed_y",
    "WHITEN_KINDS",
    "whiten_inputs",
    "whitened_X",
    "zca",
    "zigzag_1d",
]

DATA_KINDS = ("gaussian", "whitened", "rank_one", "spline_1d", "digits")
TARGET_KINDS = ("gaussian", "onehot", "onehot_balanced", "signed")
WHITEN_KINDS = (
    "auto",
    "none",
    "zca",
    "pca",
    "exact",
)  # see whiten_inputs(); "auto" = the kind's own
DIGITS_SAMPLES = 1797
DIGITS_DIM = 64
# the parameters of make_dataset that describe the data (the ``data.*`` fields of a sweep)
DATA_FIELDS = ("kind", "targets", "n", "d", "outputs", "whiten")


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _rng(seed: int) -> np.random.Generator:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return np.random.default_rng(int(seed))


def gaussian_X(n: int, d: int, *, seed: int) -> np.ndarray:  # noqa: N802 - THEORY's name
    """``(n, d)`` with i.i.d. entries ``N(0, 1)/√n``."""
    n, d = _positive_int("n", n), _positive_int("d", d)
    return _rng(seed).standard_normal((n, d)) / np.sqrt(n)


def whitened_X(n: int, d: int, *, seed: int) -> np.ndarray:  # noqa: N802
    """``(n, d)`` with orthonormal rows (``X Xᵀ = I_n``); ``ValueError`` if ``n > d``."""
    n, d = _positive_int("n", n), _positive_int("d", d)
    if n > d:
        raise ValueError(f"n must be <= d for whitened data (rows orthonormal), got n={n}, d={d}")
    G = _rng(seed).standard_normal((d, n))
    Q, R = np.linalg.qr(G)
    Q = Q * np.sign(np.diag(R))  # unique (Haar) orthonormal frame
    X = np.ascontiguousarray(Q.T)
    # one step of X ← (3X − X XᵀX)/2 (Newton–Schulz) takes ‖XXᵀ − I‖ to rounding level
    X = 1.5 * X - 0.5 * (X @ X.T) @ X
    return X


def zca(X: np.ndarray, *, tol: float = 1e-10) -> np.ndarray:
    """ZCA whitening ``U Vᵀ`` of ``X = U S Vᵀ``: a partial isometry with ``X``'s row space.

    Singular values ``≤ tol·σ_1`` count as zero (their directions are dropped).
    """
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.size == 0:
        raise ValueError(f"X must be a non-empty 2-D array, got shape {X.shape}")
    if not np.all(np.isfinite(X)):
        raise ValueError("X contains NaN or inf")
    if not tol >= 0:
        raise ValueError(f"tol must be >= 0, got {tol!r}")
    U, s, Vt = np.linalg.svd(X, full_matrices=False)
    if s[0] == 0:
        raise ValueError("X is zero: it has no row space to whiten")
    keep = s > tol * s[0]
    W = U[:, keep] @ Vt[keep]
    return 1.5 * W - 0.5 * (W @ W.T) @ W  # one Newton–Schulz step: singular values to rounding


def whiten_inputs(X: np.ndarray, method: str, *, tol: float = 1e-10) -> np.ndarray:
    """Whiten the inputs ``X`` (n, d); the result has the same shape.

    With the thin SVD ``X = U S Vᵀ`` and ``r`` = the number of singular values ``> tol·σ_1``:

    - ``"none"``: a float64 copy of ``X``.
    - ``"zca"``: ``U_r V_rᵀ`` (:func:`zca`): every non-zero singular value 1, the row and column
      spaces of ``X`` kept; ``X Xᵀ = I_n`` when ``rank X = n ≤ d``, ``XᵀX = I_d`` when
      ``rank X = d ≤ n``. No centring (THEORY §0: centring would drop the rank to ``n − 1``).
    - ``"pca"``: ``[U_r, 0] = zca(X)·[V_r, V_⊥]`` — the data in principal coordinates, scaled to
      unit variance (sum-normalised); a rotation of ``zca``, hence the same P* for every
      problem of THEORY §0. Column ``k`` of ``U_r`` is signed so its largest-|·| entry is > 0.
    - ``"exact"``: rows exactly orthonormal (``X Xᵀ = I_n``, THEORY §0 "whitened"), needs
      ``n ≤ d``: ``U_r V_rᵀ + U_⊥ V_⊥ᵀ`` with ``U_⊥`` (n × (n−r)) completing ``U_r`` and ``V_⊥`` the
      next ``n − r`` right singular vectors; equals ``zca`` when ``rank X = n``.

    ``"auto"`` is resolved by :func:`make_dataset` (it depends on the data kind), not here.

    Raises:
        ValueError: unknown ``method``; ``X`` not a finite non-empty 2-D array; ``X = 0``
            (nothing to whiten; ``"none"`` accepts it); ``"exact"`` with ``n > d``.
    """
    allowed = tuple(k for k in WHITEN_KINDS if k != "auto")
    if method not in allowed:
        raise ValueError(f"whiten must be one of {allowed}, got {method!r}")
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.size == 0:
        raise ValueError(f"X must be a non-empty 2-D array, got shape {X.shape}")
    if not np.all(np.isfinite(X)):
        raise ValueError("X contains NaN or inf")
    if method == "none":
        return X.copy()
    n, d = X.shape
    if method == "exact" and n > d:
        raise ValueError(
            f"whiten='exact' needs n <= d (X Xᵀ = I_n means n orthonormal rows in R^d), "
            f"got n={n}, d={d}"
        )
    if method == "zca":
        return zca(X, tol=tol)
    U, s, Vt = np.linalg.svd(X, full_matrices=True)
    if s[0] == 0:
        raise ValueError("X is zero: it has no row space to whiten")
    r = int(np.count_nonzero(s > tol * s[0]))
    if method == "pca":
        Ur = U[:, :r] * np.sign(U[np.argmax(np.abs(U[:, :r]), axis=0), np.arange(r)])
        out = np.zeros_like(X)
        out[:, :r] = Ur
        return 1.5 * out - 0.5 * (out @ out.T) @ out  # Newton–Schulz: singular values to rounding
    W = U[:, :n] @ Vt[:n]  # exact: U_r V_rᵀ + U_⊥ V_⊥ᵀ, rows orthonormal
    return 1.5 * W - 0.5 * (W @ W.T) @ W


def rank_one_X(n: int, d: int, *, seed: int) -> np.ndarray:  # noqa: N802
    """``X = c aᵀ`` with ``‖a‖ = 1`` and ``c ~ N(0, I_n)`` (both signs present when ``n ≥ 2``)."""
    n, d = _positive_int("n", n), _positive_int("d", d)
    rng = _rng(seed)
    a = rng.standard_normal(d)
    a /= np.linalg.norm(a)
    c = rng.standard_normal(n)
    if n >= 2 and (np.all(c > 0) or np.all(c < 0)):
        c[0] = -c[0]
    return np.outer(c, a)


def zigzag_1d(n: int, *, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """THEORY §5 / E6 points: ``x`` (n, 1) sorted in ``[−1, 1]``, ``y`` (n,) alternating in sign.

    ``x`` is an evenly spaced grid jittered by up to a quarter spacing (endpoints fixed at ±1);
    ``|y_i|`` is uniform in ``[0.5, 1]`` and ``sign(y_i) = (−1)^i``. Needs ``n ≥ 2``.
    """
    n = _positive_int("n", n)
    if n < 2:
        raise ValueError(f"n must be >= 2 for 1-D zig-zag points, got {n}")
    rng = _rng(seed)
    x = np.linspace(-1.0, 1.0, n)
    h = 2.0 / (n - 1)
    x[1:-1] += rng.uniform(-0.25 * h, 0.25 * h, size=n - 2)
    y = rng.uniform(0.5, 1.0, size=n) * (-1.0) ** np.arange(n)
    return x[:, None], y


def gaussian_Y(n: int, K: int, *, seed: int) -> np.ndarray:  # noqa: N802, N803
    """``(n, K)`` standard normal targets."""
    n, K = _positive_int("n", n), _positive_int("outputs", K)
    return _rng(seed).standard_normal((n, K))


def onehot_Y(n: int, K: int, *, seed: int, balanced: bool = False) -> np.ndarray:  # noqa: N802, N803
    """``(n, K)`` one-hot class targets, every class present (needs ``K ≤ n``); random class
    sizes, or with ``balanced`` exactly ``n/K`` samples per class (needs ``K`` to divide ``n``:
    THEORY §6's simplex ETF, cosine −1/(K−1), is the prediction for equal class sizes)."""
    n, K = _positive_int("n", n), _positive_int("outputs", K)
    if K > n:
        raise ValueError(
            f"outputs must be <= n for one-hot targets with every class present, got outputs={K}, n={n}"
        )
    rng = _rng(seed)
    if balanced:
        if n % K:
            raise ValueError(
                f"n must be a multiple of outputs for balanced one-hot targets, got n={n}, outputs={K}"
            )
        return np.eye(K)[rng.permutation(np.arange(n) % K)]
    labels = np.concatenate([np.arange(K), rng.integers(0, K, size=n - K)])
    labels = rng.permutation(labels)
    return np.eye(K)[labels]


def signed_y(n: int, *, seed: int) -> np.ndarray:
    """``(n,)`` labels in ``{−1, +1}``, both signs present (needs ``n ≥ 2``)."""
    n = _positive_int("n", n)
    if n < 2:
        raise ValueError(f"n must be >= 2 for signed labels with both signs present, got {n}")
    rng = _rng(seed)
    y = rng.choice([-1.0, 1.0], size=n)
    y[rng.permutation(n)[:2]] = [-1.0, 1.0]
    return y


def _load_digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits  # bundled with scikit-learn: no download

    data = load_digits()
    return np.asarray(data.data, dtype=np.float64) / 16.0, np.asarray(data.target)


def digits(
    n: int,
    *,
    classes: Sequence[int] = (0, 1),
    targets: str = "signed",
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` samples of scikit-learn's 8×8 digits from ``classes``, every class present, as
    raw pixels in ``[0, 1]`` (whitening is a transform: :func:`whiten_inputs`; ``make_dataset``
    ZCA-whitens digits under ``whiten="auto"``).

    Args:
        n: number of samples (``len(classes) ≤ n ≤`` the samples of those classes).
        classes: digit labels to draw from (distinct, in 0..9).
        targets: ``"signed"`` (exactly two classes: ``+1`` for ``classes[0]``, ``−1`` for
            ``classes[1]``) or ``"onehot"`` (column ``k`` marks ``classes[k]``).
        seed: which samples are drawn.

    Returns:
        ``X`` (n, 64) and ``Y``: (n,) for signed, (n, len(classes)) for one-hot.
    """
    n = _positive_int("n", n)
    classes = [int(c) for c in classes]
    if len(set(classes)) != len(classes) or not classes or any(c < 0 or c > 9 for c in classes):
        raise ValueError(f"classes must be distinct digits in 0..9, got {classes!r}")
    if targets not in ("signed", "onehot"):
        raise ValueError(f"targets must be 'signed' or 'onehot' for digits, got {targets!r}")
    if targets == "signed" and len(classes) != 2:
        raise ValueError(
            f"classes must name exactly two digits for signed targets, got {classes!r}"
        )
    pixels, labels = _load_digits()
    pools = [np.flatnonzero(labels == c) for c in classes]
    available = sum(len(p) for p in pools)
    if n < len(classes) or n > available:
        raise ValueError(
            f"n must be in [{len(classes)}, {available}] for digits of classes {classes}, got {n}"
        )
    rng = _rng(seed)
    first = [rng.choice(p) for p in pools]  # every class present
    rest_pool = np.setdiff1d(np.concatenate(pools), first)
    idx = np.concatenate([first, rng.choice(rest_pool, size=n - len(classes), replace=False)])
    idx = rng.permutation(idx)
    X = pixels[idx]
    position = {c: i for i, c in enumerate(classes)}
    k = np.array([position[int(label)] for label in labels[idx]])
    if targets == "signed":
        Y = np.where(k == 0, 1.0, -1.0)
    else:
        Y = np.eye(len(classes))[k]
    return X, Y


def data_problem(
    kind: str,
    targets: str,
    *,
    n: int,
    d: int,
    outputs: int,
    whiten: str = "auto",
    prefix: str = "",
) -> str | None:
    """Why :func:`make_dataset` cannot generate this data, or ``None`` when it can.

    The one data-validity rule: :func:`make_dataset` raises ``ValueError`` with exactly this
    text, and ``sweep.config.check_spec`` calls it (``prefix="data."``) on every point of a
    grid before any trial runs. The text begins with the parameter to change (one of
    :data:`DATA_FIELDS`, after ``prefix``), names every parameter with ``prefix`` and has no
    final period, e.g. ``"outputs must be <= n (got outputs=3, n=2)"``. Draws no data: the
    digits class sizes are read once, on the first digits spec.
    """
    p = prefix
    for name, value, allowed in (
        ("kind", kind, DATA_KINDS),
        ("targets", targets, TARGET_KINDS),
        ("whiten", whiten, WHITEN_KINDS),
    ):
        if value not in allowed:
            return f"{p}{name} must be one of {', '.join(allowed)} (got {value!r})"
    for name, value in (("n", n), ("d", d), ("outputs", outputs)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            return f"{p}{name} must be a positive integer (got {value!r})"
    if outputs > n:
        return f"{p}outputs must be <= {p}n (got outputs={outputs}, n={n})"
    if n > d and (kind == "whitened" or whiten == "exact"):
        why = "whitened data" if kind == "whitened" else f"{p}whiten=exact"
        rows = f"X Xᵀ = I_n: n <= d orthonormal rows; got n={n}, d={d}"
        return f"{p}n must be <= {p}d for {why} ({rows})"
    if kind == "spline_1d" and d != 1:
        return f"{p}d must be 1 for spline_1d data (got d={d})"
    if kind == "spline_1d" and targets not in ("gaussian", "signed"):
        return f"{p}targets must be gaussian or signed for spline_1d data (got {targets!r})"
    # one column of targets: the zig-zag y of spline_1d, the ±1 labels of signed
    one_column = "spline_1d data" if kind == "spline_1d" else "signed targets"
    if (kind == "spline_1d" or targets == "signed") and outputs != 1:
        return f"{p}outputs must be 1 for {one_column} (got outputs={outputs})"
    if (kind == "spline_1d" or targets == "signed") and n < 2:
        return f"{p}n must be >= 2 for {one_column} (got n={n})"
    if targets == "onehot_balanced" and kind in ("digits", "spline_1d"):
        return f"{p}targets onehot_balanced is not available for {kind} data"
    if targets == "onehot_balanced" and n % outputs:
        return (
            f"{p}n must be a multiple of {p}outputs for onehot_balanced targets "
            f"(got n={n}, outputs={outputs})"
        )
    if kind != "digits":
        return None
    if d != DIGITS_DIM:
        return f"{p}d must be {DIGITS_DIM} for digits data (8×8 pixels; got d={d})"
    if targets == "onehot" and outputs > 10:
        return f"{p}outputs must be <= 10 for one-hot digits (ten classes; got {outputs})"
    classes = {"gaussian": None, "signed": (0, 1), "onehot": tuple(range(outputs))}[targets]
    available = DIGITS_SAMPLES if classes is None else _digits_available(classes)
    if n > available:
        return f"{p}n must be <= {available} for digits data with {targets} targets (got n={n})"
    return None


@functools.cache
def _digits_class_sizes() -> tuple[int, ...]:
    return tuple(int(c) for c in np.bincount(_load_digits()[1], minlength=10))


def _digits_available(classes: Sequence[int]) -> int:
    """Samples of the bundled digits in ``classes``."""
    sizes = _digits_class_sizes()
    return sum(sizes[c] for c in classes)


def make_dataset(
    kind: str,
    targets: str,
    *,
    n: int,
    d: int,
    outputs: int,
    seed: int,
    whiten: str = "auto",
) -> tuple[np.ndarray, np.ndarray]:
    """``(X, Y)`` for a trial: ``X`` (n, d) float64, ``Y`` (n, outputs) float64.

    Args:
        kind: ``gaussian`` | ``whitened`` (needs n ≤ d) | ``rank_one`` | ``spline_1d``
            (needs d = 1; the zig-zag ``y`` is the target, so needs outputs = 1) | ``digits``
            (needs d = 64; ZCA-whitened — exactly ``XXᵀ = I`` when n ≤ 64 — two-class
            ``0`` vs ``1`` for signed targets, classes ``0..outputs−1`` for one-hot).
        targets: ``gaussian`` | ``onehot`` (needs outputs ≤ n; random class sizes) |
            ``onehot_balanced`` (n/outputs per class; needs outputs | n; not for digits or
            spline_1d) | ``signed`` (needs outputs = 1).
        n, d, outputs: samples, input dimension, number of outputs K.
        seed: the one seed; X and Y use independent streams derived from it.
        whiten: :func:`whiten_inputs` applied to the raw ``X`` drawn from ``seed`` (the same raw ``X``
            for every value); ``auto`` (default) = ``zca`` for digits, ``none`` otherwise —
            exactly the data this function made before the option existed.
    """
    problem = data_problem(kind, targets, n=n, d=d, outputs=outputs, whiten=whiten)
    if problem is not None:
        raise ValueError(problem)
    method = ("zca" if kind == "digits" else "none") if whiten == "auto" else whiten
    X, Y = _raw_dataset(kind, targets, n=n, d=d, outputs=outputs, seed=seed)
    return whiten_inputs(X, method), Y


def _raw_dataset(
    kind: str, targets: str, *, n: int, d: int, outputs: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`make_dataset` before whitening (digits as raw pixels in ``[0, 1]``), for a spec
    that :func:`data_problem` accepts."""
    _rng(seed)
    x_seed, y_seed = (int(s) for s in np.random.SeedSequence(int(seed)).generate_state(2))

    K = outputs
    if kind == "digits":
        if targets == "gaussian":
            pixels = _load_digits()[0]
            X = pixels[_rng(x_seed).choice(DIGITS_SAMPLES, size=n, replace=False)]
            return X, gaussian_Y(n, K, seed=y_seed)
        if targets == "signed":
            X, y = digits(n, classes=(0, 1), targets="signed", seed=x_seed)
            return X, y[:, None]
        return digits(n, classes=tuple(range(K)), targets="onehot", seed=x_seed)

    if kind == "spline_1d":
        x, y = zigzag_1d(n, seed=x_seed)
        return x, y[:, None]

    if kind == "gaussian":
        X = gaussian_X(n, d, seed=x_seed)
    elif kind == "whitened":
        X = whitened_X(n, d, seed=x_seed)
    else:
        X = rank_one_X(n, d, seed=x_seed)

    if targets == "gaussian":
        Y = gaussian_Y(n, K, seed=y_seed)
    elif targets in ("onehot", "onehot_balanced"):
        Y = onehot_Y(n, K, seed=y_seed, balanced=targets == "onehot_balanced")
    else:
        Y = signed_y(n, seed=y_seed)[:, None]
    return X, Y
