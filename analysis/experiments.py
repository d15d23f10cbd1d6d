"""One function per experiment of THEORY.md §Experiments (E1–E10, plus §4's rank-one data).

Every function is a pure function of the trial frame of :func:`analysis.load` (one row per
trial; params typed, metrics float, ``status`` ∈ finished | diverged | failed) — and, where an
experiment needs them, of the long-form curves of :func:`analysis.load_curves` (E2) or of the
``trial.json`` results of :func:`analysis.load_results` (E6's spline arrays). None re-solves
anything: every number shown is one a trial logged. Each returns an :class:`Outcome`:

- ``data`` — a tidy per-trial (or per trial × layer) DataFrame;
- ``table`` — the summary shown in the report (also written as ``<id>.md`` / ``<id>.csv``,
  and ``<id>_trials.csv`` for ``data``);
- ``figure`` — ``<id>.png`` (titled, axes labelled with units);
- ``verdict`` — one line with the measured numbers.

Trials are picked by the ``experiment`` param (``E1`` …); a store from a grid without
experiment ids (e.g. ``+grid=smoke``) is matched structurally (E1: 2-layer linear nets, …).
Relative gaps are ``(SGD − P*)/|P*|`` (``rel_gap``) and ``(SGD − certificate)/SGD``
(``rel_certified_gap``); gaps are plotted as ``max(|gap|, 1e-17)`` on log axes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from analysis.tables import column, fmt, select, split_status, write_table

__all__ = [
    "EXPERIMENTS",
    "Outcome",
    "batchnorm_collapse",
    "certificates",
    "deep_linear",
    "deep_relu",
    "digits",
    "e2_rows",
    "e6_rows",
    "norm_ratio_curves",
    "rank_one",
    "rank_vs_beta",
    "relu_alignment",
    "rescaled_duality",
    "spline",
]

FLOOR = 1e-17  # gaps and 1 − cosines below this are drawn at this value on log axes
RATIO_OK = 0.999  # ‖W‖₂/‖W‖_F counted as "rank one" above this
COS_OK = 0.999  # a cosine counted as "aligned" above this
SHARE_OK = 0.95  # share of TV(f′) near the data counted as "spline-like" above this
SPLINE_SEEDS = 4  # E6's figure draws the first this many seeds (the table has them all)


@dataclass
class Outcome:
    """What an experiment function returns (see the module docstring)."""

    id: str
    title: str
    data: pd.DataFrame
    table: pd.DataFrame
    verdict: str
    figure: Path | None = None
    files: dict[str, Path] = field(default_factory=dict)
    n_trials: int = 0
    diverged: int = 0
    failed: int = 0


# ---------------------------------------------------------------- helpers


def _is(frame: pd.DataFrame, name: str, value: object) -> pd.Series:
    col = column(frame, name, np.nan)
    return col == value


def _flag(frame: pd.DataFrame, name: str) -> pd.Series:
    return column(frame, name, False).fillna(False).astype(bool)


def _plain(frame: pd.DataFrame) -> pd.Series:
    """No biases, no batch norm, no rescaled ball."""
    ball = column(frame, "model.ball", "none").fillna("none")
    return ~_flag(frame, "model.bias") & ~_flag(frame, "model.batchnorm") & (ball == "none")


def _net(frame: pd.DataFrame) -> pd.Series:
    """``relu``, ``linear+BN``, ``relu+bias``, ``linear+operator`` …: the kind of network."""
    net = column(frame, "model.activation", "").fillna("").astype(str)
    net = net.where(~_flag(frame, "model.bias"), net + "+bias")
    net = net.where(~_flag(frame, "model.batchnorm"), net + "+BN")
    ball = column(frame, "model.ball", "none").fillna("none").astype(str)
    return net.where(ball == "none", net + "+" + ball)


def _num(frame: pd.DataFrame, name: str) -> pd.Series:
    return pd.to_numeric(column(frame, name), errors="coerce").astype(float)


def _pos(values: pd.Series | np.ndarray) -> np.ndarray:
    """|values| floored at FLOOR for log axes."""
    return np.maximum(np.abs(np.asarray(values, dtype=float)), FLOOR)


def _median(values: pd.Series) -> float:
    v = pd.to_numeric(values, errors="coerce").dropna()
    return float(v.median()) if len(v) else float("nan")


def _max(values: pd.Series) -> float:
    v = pd.to_numeric(values, errors="coerce").dropna()
    return float(v.max()) if len(v) else float("nan")


def _min(values: pd.Series) -> float:
    v = pd.to_numeric(values, errors="coerce").dropna()
    return float(v.min()) if len(v) else float("nan")


def _abs_median(values: pd.Series) -> float:
    return _median(pd.to_numeric(values, errors="coerce").abs())


def _abs_max(values: pd.Series) -> float:
    return _max(pd.to_numeric(values, errors="coerce").abs())


def _tail(diverged: int, failed: int) -> str:
    parts = []
    if diverged:
        parts.append(f"{diverged} diverged")
    if failed:
        parts.append(f"{failed} failed")
    return f" ({', '.join(parts)})" if parts else ""


def _layer_values(
    frame: pd.DataFrame, metric: str, depth: pd.Series, offset: int = 0
) -> list[list[float]]:
    """Per row, ``layer{l}.{metric}`` for l = 1 … depth − offset (NaN where not logged)."""
    out = []
    for idx, L in zip(frame.index, depth, strict=True):
        n = int(L) - offset if pd.notna(L) else 0
        out.append([float(column(frame, f"layer{l}.{metric}").loc[idx]) for l in range(1, n + 1)])
    return out


def _nanmin(
    rows: list[list[float]], transform: Callable[[np.ndarray], np.ndarray] = lambda a: a
) -> list[float]:
    out = []
    for r in rows:
        a = transform(np.asarray(r, dtype=float))
        a = a[np.isfinite(a)]
        out.append(float(a.min()) if a.size else float("nan"))
    return out


def _empty(
    eid: str, title: str, trials: pd.DataFrame, diverged: int = 0, failed: int = 0
) -> Outcome:
    n = int(len(trials))
    verdict = "no trials" if n == 0 else f"no finished trials{_tail(diverged, failed)}"
    return Outcome(
        eid, title, pd.DataFrame(), pd.DataFrame(), verdict, None, {}, n, diverged, failed
    )


def _finish(outcome: Outcome, fig: Figure | None, out_dir: str | Path | None) -> Outcome:
    """Write figure and tables of ``outcome`` under ``out_dir`` (when given)."""
    if out_dir is None:
        return outcome
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if fig is not None:
        path = out / f"{outcome.id}.png"
        fig.savefig(path, dpi=110)
        outcome.figure = path
    if not outcome.table.empty:
        outcome.files.update(write_table(outcome.table, out, outcome.id))
    if not outcome.data.empty:
        outcome.files["trials_csv"] = out / f"{outcome.id}_trials.csv"
        outcome.data.to_csv(outcome.files["trials_csv"], index=False)
    return outcome


def _fig(
    ncols: int,
    title: str,
    *,
    width: float = 5.0,
    height: float = 4.0,
    nrows: int = 1,
    floor_note: bool = True,
) -> tuple[Figure, np.ndarray]:
    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    fig.suptitle(title, fontsize=12)
    if floor_note:
        fig.supxlabel(
            f"log axes: values ≤ {FLOOR:g} in magnitude (exact zeros included) are drawn at {FLOOR:g}",
            fontsize=7,
            color="0.4",
        )
    return fig, axes


def _strip(
    ax,
    groups: list[str],
    values: list[np.ndarray],
    *,
    color: str | None = None,
    label: str | None = None,
    marker: str = "o",
    shift: float = 0.0,
) -> None:
    """Jittered points per category (deterministic jitter); the label goes on the first drawn."""
    labelled = False
    for i, v in enumerate(values):
        v = np.asarray(v, dtype=float)
        if v.size == 0:
            continue
        jitter = np.linspace(-0.08, 0.08, v.size) if v.size > 1 else np.zeros(1)
        ax.scatter(
            i + shift + jitter,
            v,
            s=22,
            alpha=0.8,
            color=color,
            marker=marker,
            label=None if labelled else label,
        )
        labelled = True
    ax.set_xticks(
        range(len(groups)),
        groups,
        rotation=30 if len(groups) > 4 else 0,
        ha="right" if len(groups) > 4 else "center",
    )
    ax.set_xlim(-0.6, len(groups) - 0.4)


def _legend(ax) -> None:
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        uniq = dict(zip(labels, handles, strict=True))
        ax.legend(uniq.values(), uniq.keys(), fontsize=8)


# ---------------------------------------------------------------- E1


def rank_vs_beta(trials: pd.DataFrame, *, out_dir: str | Path | None = None) -> Outcome:
    """E1 (THEORY §1): rank of the trained W_1 vs β for 2-layer linear nets, against the
    predicted count #{σ_k(XᵀY) > β} (logged by the trial as ``predicted_rank``: the rank of
    the closed-form optimum's W_1), and the objective against Σ_k h_β(σ_k)."""
    eid, title = "E1", "E1 — rank of W₁ vs β, 2-layer linear nets (THEORY §1)"
    rows = select(
        trials,
        eid,
        lambda f: _is(f, "model.activation", "linear") & _is(f, "model.depth", 2) & _plain(f),
    )
    done, diverged, failed = split_status(rows)
    if done.empty:
        return _finish(_empty(eid, title, rows, diverged, failed), None, out_dir)
    data = pd.DataFrame(
        {
            "run_id": done["run_id"].values,
            "K": _num(done, "data.outputs").values,
            "beta": _num(done, "train.beta").values,
            "seed": _num(done, "seed").values,
            "trained_rank": _num(done, "layer1.rank").values,
            "predicted_rank": _num(done, "predicted_rank").values,
            "sgd_objective": _num(done, "sgd_objective").values,
            "exact_objective": _num(done, "exact_objective").values,
            "rel_gap": _num(done, "rel_gap").values,
        }
    )
    has_pred = data["predicted_rank"].notna()
    data["match"] = (data["trained_rank"] == data["predicted_rank"]).where(has_pred)
    data = data.sort_values(["K", "beta", "seed"], kind="stable").reset_index(drop=True)
    table = data.groupby(["K", "beta"], as_index=False).agg(
        trials=("run_id", "size"),
        predicted_rank=("predicted_rank", "median"),
        trained_rank_min=("trained_rank", "min"),
        trained_rank_max=("trained_rank", "max"),
        matched=("match", lambda s: int(s.fillna(False).astype(bool).sum())),
        median_rel_gap=("rel_gap", "median"),
        worst_rel_gap=("rel_gap", lambda s: s.abs().max()),
    )
    matched = int(data["match"].fillna(False).astype(bool).sum())
    if has_pred.any():
        first = f"rank(W₁) matched #{{σ_k > β}} in {matched}/{int(has_pred.sum())} trials"
    else:
        first = f"no predicted_rank logged ({len(data)} trials)"
    verdict = (
        f"{first}; median |relative gap| {fmt(_abs_median(data['rel_gap']), 2)} "
        f"(worst {fmt(_abs_max(data['rel_gap']), 2)}){_tail(diverged, failed)}"
    )

    fig, axes = _fig(2, title)
    ax = axes[0, 0]
    for i, (K, grp) in enumerate(data.groupby("K")):
        pred = grp.groupby("beta")["predicted_rank"].median()
        ax.plot(
            pred.index,
            pred.values,
            color=f"C{i}",
            lw=1.2,
            ls="--",
            label=f"predicted #{{σ_k>β}} (median over seeds), K={int(K)}",
        )
        ax.scatter(
            grp["beta"],
            grp["predicted_rank"],
            facecolors="none",
            edgecolors=f"C{i}",
            marker="s",
            s=70,
            label=f"predicted, per trial, K={int(K)}",
        )
        ax.scatter(
            grp["beta"],
            grp["trained_rank"],
            color=f"C{i}",
            marker="o",
            s=22,
            label=f"trained rank(W₁), K={int(K)}",
        )
    ax.set_xlabel("β (weight decay, dimensionless)")
    ax.set_ylabel("rank of W₁ (count, tol 1e-6)")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    top = np.nanmax(
        np.r_[data["trained_rank"].to_numpy(float), data["predicted_rank"].to_numpy(float), 0.0]
    )
    ax.set_ylim(-0.5, top + 0.5)
    ax.set_title("trained rank vs predicted count")
    _legend(ax)
    ax = axes[0, 1]
    ax.scatter(data["beta"], _pos(data["rel_gap"]), s=30)
    ax.set_yscale("log")
    ax.set_xlabel("β (weight decay, dimensionless)")
    ax.set_ylabel("|SGD − P*| / |P*| (relative, log)")
    ax.set_title("objective vs closed form Σ h_β(σ_k)")
    return _finish(
        Outcome(eid, title, data, table, verdict, None, {}, len(rows), diverged, failed),
        fig,
        out_dir,
    )


# ---------------------------------------------------------------- E2


def e2_rows(trials: pd.DataFrame) -> pd.DataFrame:
    """E2's trials (whose curves :func:`norm_ratio_curves` needs)."""
    return select(
        trials,
        "E2",
        lambda f: (
            _is(f, "model.activation", "linear")
            & (_num(f, "model.depth") >= 3)
            & _is(f, "data.outputs", 1)
            & _plain(f)
        ),
    )


def norm_ratio_curves(
    trials: pd.DataFrame, curves: pd.DataFrame | None, *, out_dir: str | Path | None = None
) -> Outcome:
    """E2 (THEORY §1–2, K = 1): ‖W_l‖₂/‖W_l‖_F per layer over training → 1 (every layer rank
    one), from the stepped curves ``norm_ratio.<l>``; objective curve against P*."""
    eid, title = "E2", "E2 — ‖W_l‖₂ / ‖W_l‖_F over training, deep linear nets, K = 1"
    rows = e2_rows(trials)
    done, diverged, failed = split_status(rows)
    if done.empty:
        return _finish(_empty(eid, title, rows, diverged, failed), None, out_dir)
    cur = (
        curves if curves is not None else pd.DataFrame(columns=["run_id", "curve", "step", "value"])
    )
    cur = cur[cur["run_id"].isin(set(done["run_id"]))].astype({"step": float, "value": float})
    by_curve = {key: g.sort_values("step") for key, g in cur.groupby(["run_id", "curve"])}
    none = cur.iloc[0:0]

    def curve_of(run_id: str, name: str) -> pd.DataFrame:
        return by_curve.get((run_id, name), none)

    records = []
    for _, r in done.iterrows():
        depth = int(r["model.depth"])
        for layer in range(1, depth + 1):
            c = curve_of(r["run_id"], f"norm_ratio.{layer}")
            c = c[np.isfinite(c["value"].to_numpy(dtype=float))]
            reached = c[c["value"] >= 0.99]
            records.append(
                {
                    "run_id": r["run_id"],
                    "depth": depth,
                    "seed": int(r["seed"]),
                    "beta": float(r["train.beta"]),
                    "layer": layer,
                    "initial_ratio": float(c["value"].iloc[0]) if len(c) else np.nan,
                    "curve_final_ratio": float(c["value"].iloc[-1]) if len(c) else np.nan,
                    "first_step_ratio_0.99": float(reached["step"].iloc[0])
                    if len(reached)
                    else np.nan,
                    "final_ratio": float(column(done, f"layer{layer}.norm_ratio").loc[r.name]),
                    "rel_gap": float(column(done, "rel_gap").loc[r.name]),
                }
            )
    data = pd.DataFrame(records)
    table = data.groupby(["depth", "layer"], as_index=False).agg(
        trials=("run_id", "size"),
        initial_ratio=("initial_ratio", "median"),
        median_step_to_0_99=("first_step_ratio_0.99", "median"),
        min_final_ratio=("final_ratio", "min"),
        median_rel_gap=("rel_gap", "median"),
    )
    ok = int((data["final_ratio"] >= RATIO_OK).sum())
    verdict = (
        f"final ‖W_l‖₂/‖W_l‖_F ≥ {RATIO_OK} in {ok}/{len(data)} layers of {len(done)} trials "
        f"(min {fmt(_min(data['final_ratio']), 6)}; median start {fmt(_median(data['initial_ratio']), 2)}); "
        f"median |relative gap| {fmt(_abs_median(data['rel_gap']), 2)}"
        f"{_tail(diverged, failed)}"
    )
    if cur.empty:
        verdict += "; no norm_ratio curves logged"

    fig, axes = _fig(2, title, width=5.5)
    ax = axes[0, 0]
    seeds = sorted(done["seed"].unique())
    styles = ["-", "--", ":", "-."]
    for _, r in done.iterrows():
        for layer in range(1, int(r["model.depth"]) + 1):
            c = curve_of(r["run_id"], f"norm_ratio.{layer}")
            if len(c):
                ax.plot(
                    c["step"],
                    c["value"],
                    color=f"C{layer - 1}",
                    ls=styles[seeds.index(r["seed"]) % len(styles)],
                    lw=1.2,
                    label=f"layer {layer}",
                )
    ax.axhline(1.0, color="k", lw=0.8, ls=":")
    if len(cur):
        positive = cur.loc[cur["step"] > 0, "step"]
        ax.set_xscale("symlog", linthresh=max(1.0, float(positive.min())) if len(positive) else 1.0)
        ax.set_xlim(left=0.0)
    ax.set_xlabel("training step (count, symlog)")
    ax.set_ylabel("‖W_l‖₂ / ‖W_l‖_F (dimensionless; 1 = rank one)")
    ax.set_title("per layer; line style = seed")
    _legend(ax)
    ax = axes[0, 1]
    exact = _num(done, "exact_objective")
    drawn = False
    for (_, r), p in zip(done.iterrows(), exact, strict=True):
        c = curve_of(r["run_id"], "objective")
        if len(c) and np.isfinite(p):
            ax.plot(
                c["step"], _pos((c["value"] - p) / abs(p)), lw=1.2, label=f"seed {int(r['seed'])}"
            )
            drawn = True
    if drawn:
        ax.set_yscale("log")
    ax.set_xlabel("training step (count)")
    ax.set_ylabel("(objective − P*) / P* (relative, log)")
    ax.set_title("objective vs closed form (THEORY §2)")
    _legend(ax)
    return _finish(
        Outcome(eid, title, data, table, verdict, None, {}, len(rows), diverged, failed),
        fig,
        out_dir,
    )


# ---------------------------------------------------------------- E3


def deep_linear(trials: pd.DataFrame, *, out_dir: str | Path | None = None) -> Outcome:
    """E3 (THEORY §1–2): deep linear nets reach P*, every layer rank one
    (‖W_l‖₂/‖W_l‖_F = 1) and consecutive layers aligned (``layer<l>.align_next``), W_1 along
    the closed-form direction (``w1_alignment``); by depth × β."""
    eid, title = "E3", "E3 — deep linear nets: gap, rank one and alignment by depth"
    rows = select(
        trials,
        eid,
        lambda f: _is(f, "model.activation", "linear") & (_num(f, "model.depth") >= 3) & _plain(f),
    )
    done, diverged, failed = split_status(rows)
    if done.empty:
        return _finish(_empty(eid, title, rows, diverged, failed), None, out_dir)
    depth = _num(done, "model.depth")
    data = pd.DataFrame(
        {
            "run_id": done["run_id"].values,
            "depth": depth.values,
            "width": _num(done, "model.width").values,
            "K": _num(done, "data.outputs").values,
            "beta": _num(done, "train.beta").values,
            "seed": _num(done, "seed").values,
            "rel_gap": _num(done, "rel_gap").values,
            "rel_certified_gap": _num(done, "rel_certified_gap").values,
            "min_norm_ratio": _nanmin(_layer_values(done, "norm_ratio", depth)),
            "min_abs_align_next": _nanmin(_layer_values(done, "align_next", depth, 1), np.abs),
            "w1_alignment": _num(done, "w1_alignment").values,
        }
    )
    table = data.groupby(["depth", "beta"], as_index=False).agg(
        trials=("run_id", "size"),
        median_rel_gap=("rel_gap", "median"),
        worst_rel_gap=("rel_gap", lambda s: s.abs().max()),
        min_norm_ratio=("min_norm_ratio", "min"),
        min_align_next=("min_abs_align_next", "min"),
        min_w1_alignment=("w1_alignment", "min"),
        median_rel_certified_gap=("rel_certified_gap", "median"),
    )
    verdict = (
        f"{len(data)} trials: median |relative gap| {fmt(_abs_median(data['rel_gap']), 2)} "
        f"(worst {fmt(_abs_max(data['rel_gap']), 2)}); min ‖W_l‖₂/‖W_l‖_F {fmt(_min(data['min_norm_ratio']), 7)}; "
        f"min consecutive-layer |cos| {fmt(_min(data['min_abs_align_next']), 7)}; "
        f"min W₁ alignment {fmt(_min(data['w1_alignment']), 7)}{_tail(diverged, failed)}"
    )
    fig, axes = _fig(3, title, width=4.6)
    depths = sorted(data["depth"].dropna().unique())
    labels = [f"L={int(d)}" for d in depths]
    betas = sorted(data["beta"].dropna().unique())
    for j, (metric, ylabel, sub) in enumerate(
        [
            ("rel_gap", "|SGD − P*| / |P*| (relative, log)", "gap to the closed form"),
            ("min_norm_ratio", "1 − min_l ‖W_l‖₂/‖W_l‖_F (log)", "rank one: → 0"),
            ("min_abs_align_next", "1 − |cos| (log)", "alignment: → 0"),
        ]
    ):
        ax = axes[0, j]
        for i, b in enumerate(betas):
            vals = []
            for d in depths:
                v = data.loc[(data["depth"] == d) & (data["beta"] == b), metric].dropna()
                vals.append(_pos(v) if metric == "rel_gap" else _pos(1 - v.abs()))
            _strip(
                ax,
                labels,
                vals,
                color=f"C{i}",
                label=f"β={fmt(b)}",
                shift=0.25 * (i - (len(betas) - 1) / 2),
            )
        if j == 2:
            vals = [
                _pos(1 - data.loc[data["depth"] == d, "w1_alignment"].dropna().abs())
                for d in depths
            ]
            _strip(ax, labels, vals, color="k", marker="x", label="W₁ vs closed form")
        ax.set_yscale("log")
        ax.set_xlabel("depth L (layers)")
        ax.set_ylabel(ylabel)
        ax.set_title(sub)
        _legend(ax)
    return _finish(
        Outcome(eid, title, data, table, verdict, None, {}, len(rows), diverged, failed),
        fig,
        out_dir,
    )


# ---------------------------------------------------------------- E4


def deep_relu(trials: pd.DataFrame, *, out_dir: str | Path | None = None) -> Outcome:
    """E4 (THEORY §3): deep ReLU nets on whitened data, SGD objective vs
    P* = g_L(‖y₊‖) + g_L(‖y₋‖) and the certificate, across depth × width × data × β."""
    eid, title = "E4", "E4 — deep ReLU nets on whitened data: SGD vs closed form (THEORY §3)"
    rows = select(
        trials,
        eid,
        lambda f: (
            _is(f, "model.activation", "relu")
            & (_num(f, "model.depth") >= 3)
            & _is(f, "data.kind", "whitened")
            & _plain(f)
        ),
    )
    done, diverged, failed = split_status(rows)
    if done.empty:
        return _finish(_empty(eid, title, rows, diverged, failed), None, out_dir)
    data = pd.DataFrame(
        {
            "run_id": done["run_id"].values,
            "depth": _num(done, "model.depth").values,
            "width": _num(done, "model.width").values,
            "data": column(done, "data.kind", "").values,
            "beta": _num(done, "train.beta").values,
            "seed": _num(done, "seed").values,
            "sgd_objective": _num(done, "sgd_objective").values,
            "exact_objective": _num(done, "exact_objective").values,
            "certificate": _num(done, "certificate").values,
            "rel_gap": _num(done, "rel_gap").values,
            "rel_certified_gap": _num(done, "rel_certified_gap").values,
            "w1_alignment": _num(done, "w1_alignment").values,
        }
    )
    table = data.groupby(["depth", "width", "data", "beta"], as_index=False).agg(
        trials=("run_id", "size"),
        min_rel_gap=("rel_gap", "min"),
        median_rel_gap=("rel_gap", "median"),
        max_rel_gap=("rel_gap", "max"),
        median_rel_certified_gap=("rel_certified_gap", "median"),
        median_w1_alignment=("w1_alignment", "median"),
    )
    per_beta = "; ".join(
        f"β={fmt(b)}: relative gap {fmt(_min(g['rel_gap']), 2)}–{fmt(_max(g['rel_gap']), 2)}"
        for b, g in data.groupby("beta")
    )
    verdict = (
        f"{len(data)} trials: {per_beta}; median certified gap "
        f"{fmt(_median(data['rel_certified_gap']), 2)}{_tail(diverged, failed)}"
    )
    fig, axes = _fig(2, title, width=5.2)
    ax = axes[0, 0]
    for i, (b, g) in enumerate(data.groupby("beta")):
        ax.scatter(
            g["exact_objective"], g["sgd_objective"], color=f"C{i}", s=28, label=f"β={fmt(b)}"
        )
    finite = data[["exact_objective", "sgd_objective"]].to_numpy(dtype=float)
    finite = finite[np.isfinite(finite).all(axis=1) & (finite > 0).all(axis=1)]
    if finite.size:
        lo, hi = finite.min() * 0.9, finite.max() * 1.1
        ax.plot([lo, hi], [lo, hi], "k:", lw=1, label="SGD = P*")
        ax.set_xscale("log")
        ax.set_yscale("log")
    ax.set_xlabel("closed-form P* = g_L(‖y₊‖) + g_L(‖y₋‖) (objective units)")
    ax.set_ylabel("SGD objective (objective units)")
    ax.set_title("final objective vs exact optimum")
    _legend(ax)
    ax = axes[0, 1]
    groups = list(data.groupby(["depth", "width", "beta"]))
    labels = [f"L={int(d)} m={int(m)} β={fmt(b)}" for (d, m, b), _ in groups]
    _strip(
        ax,
        labels,
        [_pos(g["rel_gap"].dropna()) for _, g in groups],
        color="C0",
        label="(SGD − P*)/P*",
    )
    _strip(
        ax,
        labels,
        [_pos(g["rel_certified_gap"].dropna()) for _, g in groups],
        color="C3",
        marker="x",
        label="(SGD − certificate)/SGD",
        shift=0.3,
    )
    ax.set_yscale("log")
    ax.set_ylabel("relative gap (log)")
    ax.set_xlabel("depth L, width m, β")
    ax.set_title("gap distributions")
    _legend(ax)
    return _finish(
        Outcome(eid, title, data, table, verdict, None, {}, len(rows), diverged, failed),
        fig,
        out_dir,
    )


# ---------------------------------------------------------------- E5


def relu_alignment(trials: pd.DataFrame, *, out_dir: str | Path | None = None) -> Outcome:
    """E5 (THEORY §3): 2-layer ReLU on whitened data — active first-layer neurons align with
    Xᵀy₊ and Xᵀy₋ (``w1_alignment`` → 1) and the objective reaches P*."""
    eid, title = "E5", "E5 — 2-layer ReLU, whitened data: W₁ neurons vs Xᵀy₊, Xᵀy₋"
    rows = select(
        trials,
        eid,
        lambda f: (
            _is(f, "model.activation", "relu")
            & _is(f, "model.depth", 2)
            & _is(f, "data.kind", "whitened")
            & _plain(f)
        ),
    )
    done, diverged, failed = split_status(rows)
    if done.empty:
        return _finish(_empty(eid, title, rows, diverged, failed), None, out_dir)
    data = pd.DataFrame(
        {
            "run_id": done["run_id"].values,
            "beta": _num(done, "train.beta").values,
            "seed": _num(done, "seed").values,
            "w1_alignment": _num(done, "w1_alignment").values,
            "rel_gap": _num(done, "rel_gap").values,
            "rel_certified_gap": _num(done, "rel_certified_gap").values,
        }
    )
    table = data.groupby("beta", as_index=False).agg(
        trials=("run_id", "size"),
        min_w1_alignment=("w1_alignment", "min"),
        median_w1_alignment=("w1_alignment", "median"),
        median_rel_gap=("rel_gap", "median"),
        worst_rel_gap=("rel_gap", lambda s: s.abs().max()),
    )
    ok = int((data["w1_alignment"] >= COS_OK).sum())
    verdict = (
        f"active W₁ neurons aligned with Xᵀy± (cos ≥ {COS_OK}) in {ok}/{len(data)} trials "
        f"(min cos {fmt(_min(data['w1_alignment']), 7)}); median |relative gap| "
        f"{fmt(_abs_median(data['rel_gap']), 2)}{_tail(diverged, failed)}"
    )
    fig, axes = _fig(2, title)
    betas = sorted(data["beta"].unique())
    labels = [f"β={fmt(b)}" for b in betas]
    ax = axes[0, 0]
    _strip(
        ax,
        labels,
        [_pos(1 - data.loc[data["beta"] == b, "w1_alignment"].dropna()) for b in betas],
        color="C0",
    )
    ax.set_yscale("log")
    ax.set_xlabel("β (weight decay)")
    ax.set_ylabel("1 − cos(W₁ neuron, Xᵀy±) (log)")
    ax.set_title("alignment of active neurons: → 0")
    ax = axes[0, 1]
    _strip(
        ax,
        labels,
        [_pos(data.loc[data["beta"] == b, "rel_gap"].dropna()) for b in betas],
        color="C1",
    )
    ax.set_yscale("log")
    ax.set_xlabel("β (weight decay)")
    ax.set_ylabel("|SGD − P*| / |P*| (relative, log)")
    ax.set_title("objective vs closed form")
    return _finish(
        Outcome(eid, title, data, table, verdict, None, {}, len(rows), diverged, failed),
        fig,
        out_dir,
    )


# ---------------------------------------------------------------- rank-one data (§4)


def rank_one(trials: pd.DataFrame, *, out_dir: str | Path | None = None) -> Outcome:
    """THEORY §4: rank-one data X = c aᵀ — SGD against the closed form, and W₁ along ±a."""
    eid, title = "R1", "Rank-one data X = c aᵀ: SGD vs closed form (THEORY §4)"
    kind = column(trials, "data.kind", "")
    rows = trials[kind == "rank_one"] if len(trials) else trials
    done, diverged, failed = split_status(rows)
    if done.empty:
        return _finish(_empty(eid, title, rows, diverged, failed), None, out_dir)
    data = pd.DataFrame(
        {
            "run_id": done["run_id"].values,
            "activation": column(done, "model.activation", "").values,
            "depth": _num(done, "model.depth").values,
            "beta": _num(done, "train.beta").values,
            "seed": _num(done, "seed").values,
            "sgd_objective": _num(done, "sgd_objective").values,
            "exact_objective": _num(done, "exact_objective").values,
            "rel_gap": _num(done, "rel_gap").values,
            "w1_alignment": _num(done, "w1_alignment").values,
        }
    )
    table = data.groupby(["activation", "depth", "beta"], as_index=False).agg(
        trials=("run_id", "size"),
        median_rel_gap=("rel_gap", "median"),
        worst_rel_gap=("rel_gap", lambda s: s.abs().max()),
        min_w1_alignment=("w1_alignment", "min"),
    )
    verdict = (
        f"{len(data)} trials: median |relative gap| {fmt(_abs_median(data['rel_gap']), 2)} "
        f"(worst {fmt(_abs_max(data['rel_gap']), 2)}); min W₁ cosine with ±a "
        f"{fmt(_min(data['w1_alignment']), 7)}{_tail(diverged, failed)}"
    )
    fig, axes = _fig(2, title)
    ax = axes[0, 0]
    for i, (act, g) in enumerate(data.groupby("activation")):
        ax.scatter(g["exact_objective"], g["sgd_objective"], s=28, color=f"C{i}", label=str(act))
    fin = data[["exact_objective", "sgd_objective"]].to_numpy(dtype=float)
    fin = fin[np.isfinite(fin).all(axis=1)]
    if fin.size:
        ax.plot([fin.min(), fin.max()], [fin.min(), fin.max()], "k:", lw=1, label="SGD = P*")
    ax.set_xlabel("closed-form P* (objective units)")
    ax.set_ylabel("SGD objective (objective units)")
    ax.set_title("final objective vs exact optimum")
    _legend(ax)
    ax = axes[0, 1]
    groups = list(data.groupby(["activation", "depth"]))
    _strip(
        ax,
        [f"{a} L={int(d)}" for (a, d), _ in groups],
        [_pos(g["rel_gap"].dropna()) for _, g in groups],
    )
    ax.set_yscale("log")
    ax.set_xlabel("activation, depth L")
    ax.set_ylabel("|SGD − P*| / |P*| (relative, log)")
    ax.set_title("relative gap")
    return _finish(
        Outcome(eid, title, data, table, verdict, None, {}, len(rows), diverged, failed),
        fig,
        out_dir,
    )


# ---------------------------------------------------------------- E6


def e6_rows(trials: pd.DataFrame) -> pd.DataFrame:
    """E6's trials (whose trial.json arrays :func:`spline` draws)."""
    return select(trials, "E6", lambda f: _is(f, "data.kind", "spline_1d"))


def _arrays(result: object) -> dict:
    if result is None:
        return {}
    if isinstance(result, Mapping):
        return dict(result)
    return dict(getattr(result, "arrays", {}) or {})


def spline(
    trials: pd.DataFrame,
    results: Mapping[str, object] | None = None,
    *,
    out_dir: str | Path | None = None,
) -> Outcome:
    """E6 (THEORY §5): 1-D data — deep ReLU nets with biases fit linear splines with kinks at
    the data. ``results`` maps run_id to the trial's :class:`~sweep.schema.TrialResult` (or its
    ``arrays`` dict: ``x, y, grid, f, kinks``) for the figure; the table uses the logged
    ``spline.*`` metrics. The spread of objectives across seeds is reported, not hidden."""
    eid, title = "E6", "E6 — 1-D data: fitted deep ReLU functions and the linear spline (THEORY §5)"
    rows = e6_rows(trials)
    done, diverged, failed = split_status(rows)
    if done.empty:
        return _finish(_empty(eid, title, rows, diverged, failed), None, out_dir)
    data = pd.DataFrame(
        {
            "run_id": done["run_id"].values,
            "depth": _num(done, "model.depth").values,
            "beta": _num(done, "train.beta").values,
            "seed": _num(done, "seed").values,
            "sgd_objective": _num(done, "sgd_objective").values,
            "share_near_data": _num(done, "spline.share_near_data").values,
            "max_deviation": _num(done, "spline.max_deviation").values,
            "tv_ratio": _num(done, "spline.tv_ratio").values,
            "n_kinks": _num(done, "spline.n_kinks").values,
        }
    )
    best = data.groupby(["depth", "beta"])["sgd_objective"].transform("min")
    data["objective_vs_best"] = data["sgd_objective"] / best
    data["well_fitted"] = data["objective_vs_best"] <= 2.0
    table = data.groupby(["depth", "beta"], as_index=False).agg(
        trials=("run_id", "size"),
        best_objective=("sgd_objective", "min"),
        median_objective=("sgd_objective", "median"),
        worst_objective=("sgd_objective", "max"),
        well_fitted=("well_fitted", "sum"),
        min_share_near_data=("share_near_data", "min"),
        median_max_deviation=("max_deviation", "median"),
        median_kinks=("n_kinks", "median"),
    )
    share = data["share_near_data"]
    fitted = data[data["well_fitted"]]
    verdict = (
        f"share of TV(f′) within 0.02 of a data point ≥ {SHARE_OK} in "
        f"{int((share >= SHARE_OK).sum())}/{int(share.notna().sum())} runs (min {fmt(_min(share), 3)}; "
        f"{int((fitted['share_near_data'] >= SHARE_OK).sum())}/{len(fitted)} of the runs within 2× their "
        f"group's best objective); median max deviation from the interpolant "
        f"{fmt(_median(data['max_deviation']), 2)}; worst/best objective up to "
        f"{fmt(_max(data['objective_vs_best']), 3)}×{_tail(diverged, failed)}"
    )
    # one panel per (β, seed): a seed fixes the data set, so the depths are compared on the
    # same points; at most SPLINE_SEEDS seeds are drawn (every seed is in the table)
    depths = sorted(data["depth"].unique())
    betas = sorted(data["beta"].unique())
    seeds = sorted(data["seed"].unique())[:SPLINE_SEEDS]
    fig, axes = _fig(len(seeds), title, width=3.8, height=3.2, nrows=len(betas), floor_note=False)
    results = results or {}
    for bi, b in enumerate(betas):
        for si, seed in enumerate(seeds):
            ax = axes[bi, si]
            grp = data[(data["beta"] == b) & (data["seed"] == seed)]
            drawn_data = False
            objectives = []
            for _, r in grp.sort_values("depth").iterrows():
                arr = _arrays(results.get(r["run_id"]))
                if not {"x", "y", "grid", "f"} <= set(arr):
                    continue
                x, y = np.asarray(arr["x"], float), np.asarray(arr["y"], float)
                if not drawn_data:
                    order = np.argsort(x)
                    ax.plot(x[order], y[order], "k--", lw=1, label="linear spline through data")
                    ax.scatter(x, y, color="k", s=22, zorder=3, label="data")
                    drawn_data = True
                color = f"C{depths.index(r['depth'])}"
                ax.plot(
                    arr["grid"],
                    arr["f"],
                    color=color,
                    lw=1.2,
                    alpha=0.85,
                    label=f"depth L={int(r['depth'])}",
                )
                objectives.append(f"L={int(r['depth'])}: {fmt(r['sgd_objective'], 2)}")
                kinks = np.asarray(arr.get("kinks", []), float)
                if kinks.size:
                    ax.plot(
                        kinks,
                        np.full(kinks.size, 0.02),
                        "|",
                        color=color,
                        ms=12,
                        mew=1.5,
                        transform=ax.get_xaxis_transform(),
                    )
            ax.set_title(
                f"β={fmt(b)}, seed {int(seed)}\nobjective {', '.join(objectives)}", fontsize=9
            )
            ax.set_xlabel("input x (data units)")
            ax.set_ylabel("f(x) (target units)")
            if not drawn_data:
                ax.text(0.5, 0.5, "no trial.json arrays", ha="center", transform=ax.transAxes)
    handles, labels = [], []
    for ax in axes.ravel():
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    if handles:
        handles.append(Line2D([], [], color="0.3", marker="|", ls="none", ms=10, mew=1.5))
        labels.append("kinks of f (ticks on the x axis, colour = depth)")
        fig.legend(
            handles, labels, loc="outside lower center", ncols=min(6, len(labels)), fontsize=8
        )
    return _finish(
        Outcome(eid, title, data, table, verdict, None, {}, len(rows), diverged, failed),
        fig,
        out_dir,
    )


# ---------------------------------------------------------------- E7


def batchnorm_collapse(trials: pd.DataFrame, *, out_dir: str | Path | None = None) -> Outcome:
    """E7 (THEORY §6): batch norm — objective vs Σ_k h_{β/√n}(·) and neural collapse of the
    last hidden features (``nc.nc1`` → 0, ``nc.nc2_cosine_mean`` → −1/(K−1),
    ``nc.nc3_cosine_mean`` → 1)."""
    eid, title = "E7", "E7 — batch norm: closed form and neural collapse (THEORY §6)"
    rows = select(trials, eid, lambda f: _flag(f, "model.batchnorm"))
    done, diverged, failed = split_status(rows)
    if done.empty:
        return _finish(_empty(eid, title, rows, diverged, failed), None, out_dir)
    data = pd.DataFrame(
        {
            "run_id": done["run_id"].values,
            "activation": column(done, "model.activation", "").values,
            "depth": _num(done, "model.depth").values,
            "K": _num(done, "data.outputs").values,
            "seed": _num(done, "seed").values,
            "rel_gap": _num(done, "rel_gap").values,
            "nc1": _num(done, "nc.nc1").values,
            "nc2_cosine_mean": _num(done, "nc.nc2_cosine_mean").values,
            "nc2_cosine_target": _num(done, "nc.nc2_cosine_target").values,
            "nc2_norm_cv": _num(done, "nc.nc2_norm_cv").values,
            "nc3_cosine_mean": _num(done, "nc.nc3_cosine_mean").values,
        }
    )
    table = data.groupby(["activation", "depth"], as_index=False).agg(
        trials=("run_id", "size"),
        worst_rel_gap=("rel_gap", lambda s: s.abs().max()),
        max_nc1=("nc1", "max"),
        nc2_cosine_mean=("nc2_cosine_mean", "median"),
        nc2_target=("nc2_cosine_target", "median"),
        min_nc3_cosine=("nc3_cosine_mean", "min"),
    )
    verdict = (
        f"{len(data)} trials: worst |relative gap| {fmt(_abs_max(data['rel_gap']), 2)}; "
        f"NC1 ≤ {fmt(_max(data['nc1']), 2)}; NC2 mean cosine {fmt(_median(data['nc2_cosine_mean']), 4)} "
        f"(target {fmt(_median(data['nc2_cosine_target']), 4)}); NC3 cosine ≥ "
        f"{fmt(_min(data['nc3_cosine_mean']), 6)}{_tail(diverged, failed)}"
    )
    fig, axes = _fig(4, title, width=3.8)
    groups = list(data.groupby(["activation", "depth"]))
    labels = [f"{a} L={int(d)}" for (a, d), _ in groups]
    panels = [
        (
            "rel_gap",
            lambda v: _pos(v),
            True,
            "|SGD − P*| / |P*| (relative, log)",
            "gap to closed form",
        ),
        (
            "nc1",
            lambda v: _pos(v),
            True,
            "tr(Σ_W Σ_B⁺)/K (dimensionless, log)",
            "NC1: within-class → 0",
        ),
        (
            "nc2_cosine_mean",
            lambda v: np.asarray(v, float),
            False,
            "mean pairwise cosine of class means",
            "NC2: → −1/(K−1)",
        ),
        (
            "nc3_cosine_mean",
            lambda v: np.asarray(v, float),
            False,
            "cos(w_k − w̄, μ_k − μ_G)",
            "NC3: → 1",
        ),
    ]
    for j, (metric, tr, logy, ylabel, sub) in enumerate(panels):
        ax = axes[0, j]
        _strip(ax, labels, [tr(g[metric].dropna()) for _, g in groups], color=f"C{j}")
        if logy:
            ax.set_yscale("log")
        if metric == "nc2_cosine_mean" and data["nc2_cosine_target"].notna().any():
            ax.axhline(
                _median(data["nc2_cosine_target"]), color="k", ls=":", lw=1, label="−1/(K−1)"
            )
            _legend(ax)
        if metric == "nc3_cosine_mean":
            ax.axhline(1.0, color="k", ls=":", lw=1)
        ax.set_xlabel("activation, depth L")
        ax.set_ylabel(ylabel)
        ax.set_title(sub, fontsize=10)
    return _finish(
        Outcome(eid, title, data, table, verdict, None, {}, len(rows), diverged, failed),
        fig,
        out_dir,
    )


# ---------------------------------------------------------------- E8


def rescaled_duality(trials: pd.DataFrame, *, out_dir: str | Path | None = None) -> Outcome:
    """E8 (THEORY §9): the rescaled problem with operator-norm vs Frobenius balls — P_R and
    its dual bound D at the optimal radius t (``rescaled.primal``, ``rescaled.dual``,
    ``rescaled.relative_gap`` = (P_R − D)/P_R, ``rescaled.t``)."""
    eid, title = (
        "E8",
        "E8 — rescaled problem: P_R vs dual D, operator vs Frobenius balls (THEORY §9)",
    )
    rows = select(trials, eid, lambda f: column(f, "model.ball", "none").fillna("none") != "none")
    done, diverged, failed = split_status(rows)
    if done.empty:
        return _finish(_empty(eid, title, rows, diverged, failed), None, out_dir)
    primal, dual = _num(done, "rescaled.primal"), _num(done, "rescaled.dual")
    gap = _num(done, "rescaled.relative_gap")
    gap = gap.where(gap.notna(), (primal - dual) / primal.abs())
    data = pd.DataFrame(
        {
            "run_id": done["run_id"].values,
            "ball": column(done, "model.ball", "").values,
            "depth": _num(done, "model.depth").values,
            "K": _num(done, "data.outputs").values,
            "beta": _num(done, "train.beta").values,
            "seed": _num(done, "seed").values,
            "t": _num(done, "rescaled.t").values,
            "P_R": primal.values,
            "D": dual.values,
            "relative_gap": gap.values,
            "sgd_objective": _num(done, "sgd_objective").values,
        }
    )
    table = data.groupby(["ball", "depth", "beta"], as_index=False).agg(
        trials=("run_id", "size"),
        median_P_R=("P_R", "median"),
        median_D=("D", "median"),
        min_gap=("relative_gap", "min"),
        max_gap=("relative_gap", "max"),
    )
    parts = []
    for ball, g in data.groupby("ball"):
        parts.append(
            f"{ball} ball: (P_R − D)/P_R {fmt(100 * _min(g['relative_gap']), 3)}–"
            f"{fmt(100 * _max(g['relative_gap']), 3)}% "
            f"over {len(g)} trials"
        )
    verdict = "; ".join(parts) + _tail(diverged, failed)
    if data["relative_gap"].isna().all():
        verdict = f"{len(data)} trials but no rescaled.* metrics logged" + _tail(diverged, failed)
    fig, axes = _fig(2, title, width=5.2, floor_note=False)
    ax = axes[0, 0]
    markers = ["o", "s", "^", "D"]
    betas = sorted(data["beta"].dropna().unique())
    balls = sorted(data["ball"].dropna().unique())
    for i, ball in enumerate(balls):
        for j, (d, gd) in enumerate(data[data["ball"] == ball].groupby("depth")):
            x = np.array([betas.index(b) for b in gd["beta"]], dtype=float)
            x += 0.2 * (i - (len(balls) - 1) / 2) + np.linspace(-0.04, 0.04, len(x))
            ax.scatter(
                x,
                100 * gd["relative_gap"],
                color=f"C{i}",
                marker=markers[j % len(markers)],
                s=30,
                label=f"{ball}, L={int(d)}",
            )
    ax.set_xticks(range(len(betas)), [f"β={fmt(b)}" for b in betas])
    ax.axhline(0.0, color="k", lw=0.8, ls=":")
    ax.set_xlabel("β (weight decay)")
    ax.set_ylabel("(P_R − D) / P_R (percent)")
    ax.set_title("duality gap of the rescaled problem")
    _legend(ax)
    ax = axes[0, 1]
    for i, (ball, g) in enumerate(data.groupby("ball")):
        ax.scatter(g["P_R"], g["D"], color=f"C{i}", s=28, label=f"{ball} ball")
    fin = data[["P_R", "D"]].to_numpy(dtype=float)
    fin = fin[np.isfinite(fin).all(axis=1)]
    if fin.size:
        ax.plot([fin.min(), fin.max()], [fin.min(), fin.max()], "k:", lw=1, label="D = P_R")
    ax.set_xlabel("P_R at the optimal radius t (objective units)")
    ax.set_ylabel("dual bound D (objective units)")
    ax.set_title("primal vs dual")
    _legend(ax)
    return _finish(
        Outcome(eid, title, data, table, verdict, None, {}, len(rows), diverged, failed),
        fig,
        out_dir,
    )


# ---------------------------------------------------------------- E9


def certificates(trials: pd.DataFrame, *, out_dir: str | Path | None = None) -> Outcome:
    """E9 (THEORY §7): the certified gap (SGD − certificate)/SGD of every finished trial, by
    activation × depth × width × data, next to the gap to P* where a closed form exists. A
    certificate above the SGD objective would be a broken lower bound: counted as a violation
    (tolerance 1e-9 relative)."""
    eid, title = "E9", "E9 — certified gaps of every trial (THEORY §7)"
    done, diverged, failed = split_status(trials)
    if done.empty:
        return _finish(_empty(eid, title, trials, diverged, failed), None, out_dir)
    sgd, cert = _num(done, "sgd_objective"), _num(done, "certificate")
    exact = _num(done, "exact_objective")
    data = pd.DataFrame(
        {
            "run_id": done["run_id"].values,
            "experiment": column(done, "experiment", "").fillna("").values,
            "net": _net(done).values,
            "depth": _num(done, "model.depth").values,
            "width": _num(done, "model.width").values,
            "data": column(done, "data.kind", "").values,
            "K": _num(done, "data.outputs").values,
            "sgd_objective": sgd.values,
            "certificate": cert.values,
            "exact_objective": exact.values,
            "rel_gap": _num(done, "rel_gap").values,
            "rel_certified_gap": _num(done, "rel_certified_gap").values,
        }
    )
    tol = 1e-9 * np.maximum(1.0, np.abs(data["sgd_objective"]))
    data["violation"] = (data["certificate"] - data["sgd_objective"]) > tol
    data["bound_above_exact"] = (data["certificate"] - data["exact_objective"]) > 1e-9 * np.maximum(
        1.0, np.abs(data["exact_objective"])
    )
    keys = ["net", "depth", "width", "data", "K"]
    table = data.groupby(keys, as_index=False).agg(
        trials=("run_id", "size"),
        certified=("certificate", lambda s: int(s.notna().sum())),
        with_exact=("exact_objective", lambda s: int(s.notna().sum())),
        median_rel_gap=("rel_gap", "median"),
        median_rel_certified_gap=("rel_certified_gap", "median"),
        max_rel_certified_gap=("rel_certified_gap", "max"),
        violations=("violation", "sum"),
    )
    n_cert = int(data["certificate"].notna().sum())
    verdict = (
        f"certified {n_cert}/{len(data)} finished trials; median certified relative gap "
        f"{fmt(_median(data['rel_certified_gap']), 2)} (max {fmt(_max(data['rel_certified_gap']), 2)}); "
        f"closed form known for {int(data['exact_objective'].notna().sum())}; certificates above the "
        f"SGD objective: {int(data['violation'].sum())}, above P*: {int(data['bound_above_exact'].sum())}"
        f"{_tail(diverged, failed)}"
    )
    fig, axes = _fig(1, title, width=max(6.0, 0.7 * len(table) + 3), height=4.5)
    ax = axes[0, 0]
    groups = list(data.groupby(keys))
    labels = [f"{a} L={int(d)} m={int(m)} {k} K={int(K)}" for (a, d, m, k, K), _ in groups]
    ax.set_title("net: activation (+bias, +BN, +ball of §9)", fontsize=10)
    _strip(
        ax,
        labels,
        [_pos(g["rel_certified_gap"].dropna()) for _, g in groups],
        color="C3",
        marker="x",
        label="(SGD − certificate)/SGD",
        shift=0.15,
    )
    _strip(
        ax,
        labels,
        [_pos(g["rel_gap"].dropna()) for _, g in groups],
        color="C0",
        label="(SGD − P*)/P* (closed form)",
        shift=-0.15,
    )
    ax.set_yscale("log")
    ax.set_ylabel("relative gap (log)")
    ax.set_xlabel("net, depth L, width m, data, outputs K")
    _legend(ax)
    return _finish(
        Outcome(eid, title, data, table, verdict, None, {}, len(trials), diverged, failed),
        fig,
        out_dir,
    )


# ---------------------------------------------------------------- E10


def digits(trials: pd.DataFrame, *, out_dir: str | Path | None = None) -> Outcome:
    """E10: scikit-learn's 8×8 digits (whitened), two-class signed and one-hot targets — SGD
    against the closed form where it applies (§3 / §3 one-hot), otherwise the certificate."""
    eid, title = "E10", "E10 — 8×8 digits: SGD vs closed form / certificate"
    rows = select(trials, eid, lambda f: _is(f, "data.kind", "digits"))
    done, diverged, failed = split_status(rows)
    if done.empty:
        return _finish(_empty(eid, title, rows, diverged, failed), None, out_dir)
    data = pd.DataFrame(
        {
            "run_id": done["run_id"].values,
            "targets": column(done, "data.targets", "").values,
            "K": _num(done, "data.outputs").values,
            "depth": _num(done, "model.depth").values,
            "beta": _num(done, "train.beta").values,
            "seed": _num(done, "seed").values,
            "family": column(done, "family", None).values,
            "sgd_objective": _num(done, "sgd_objective").values,
            "exact_objective": _num(done, "exact_objective").values,
            "certificate": _num(done, "certificate").values,
            "rel_gap": _num(done, "rel_gap").values,
            "rel_certified_gap": _num(done, "rel_certified_gap").values,
        }
    )
    table = data.groupby(["targets", "depth", "beta"], as_index=False).agg(
        trials=("run_id", "size"),
        with_exact=("exact_objective", lambda s: int(s.notna().sum())),
        median_rel_gap=("rel_gap", "median"),
        median_rel_certified_gap=("rel_certified_gap", "median"),
        max_rel_certified_gap=("rel_certified_gap", "max"),
    )
    parts = []
    for t, g in data.groupby("targets"):
        parts.append(
            f"{t}: closed form for {int(g['exact_objective'].notna().sum())}/{len(g)}, median relative gap "
            f"{fmt(_median(g['rel_gap']), 2)}, median certified gap {fmt(_median(g['rel_certified_gap']), 2)}"
        )
    verdict = "; ".join(parts) + _tail(diverged, failed)
    fig, axes = _fig(1, title, width=7.0, height=4.2)
    ax = axes[0, 0]
    groups = list(data.groupby(["targets", "depth", "beta"]))
    labels = [f"{t} L={int(d)} β={fmt(b)}" for (t, d, b), _ in groups]
    _strip(
        ax,
        labels,
        [_pos(g["rel_gap"].dropna()) for _, g in groups],
        color="C0",
        label="(SGD − P*)/P*",
        shift=-0.15,
    )
    _strip(
        ax,
        labels,
        [_pos(g["rel_certified_gap"].dropna()) for _, g in groups],
        color="C3",
        marker="x",
        label="(SGD − certificate)/SGD",
        shift=0.15,
    )
    ax.set_yscale("log")
    ax.set_ylabel("relative gap (log)")
    ax.set_xlabel("targets, depth L, β")
    _legend(ax)
    return _finish(
        Outcome(eid, title, data, table, verdict, None, {}, len(rows), diverged, failed),
        fig,
        out_dir,
    )


# ---------------------------------------------------------------- registry

EXPERIMENTS: dict[str, str] = {
    "E1": "rank_vs_beta",
    "E2": "norm_ratio_curves",
    "E3": "deep_linear",
    "E4": "deep_relu",
    "E5": "relu_alignment",
    "R1": "rank_one",
    "E6": "spline",
    "E7": "batchnorm_collapse",
    "E8": "rescaled_duality",
    "E9": "certificates",
    "E10": "digits",
}
