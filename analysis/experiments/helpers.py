"""Shared helpers of the experiment modules: column access on the trial frame, and figures.

Pure functions of DataFrames (one row per trial, as :func:`analysis.load` returns them).
Gaps are drawn as ``max(|gap|, FLOOR)`` on log axes.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from analysis.tables import column
from analysis.tables import metric as num  # a metric as float64 (params: typed columns)

__all__ = [
    "FLOOR",
    "abs_max",
    "abs_median",
    "make_figure",
    "flag",
    "gaps",
    "is_",
    "layer_values",
    "legend",
    "net_kind",
    "nanmin",
    "num",
    "plain",
    "pos",
    "strip",
    "vmax",
    "vmedian",
    "vmin",
]

FLOOR = 1e-17  # gaps and 1 − cosines below this are drawn at this value on log axes


def is_(frame: pd.DataFrame, name: str, value: object) -> pd.Series:
    col = column(frame, name, np.nan)
    return col == value


def flag(frame: pd.DataFrame, name: str) -> pd.Series:
    return column(frame, name, False).fillna(False).astype(bool)


def plain(frame: pd.DataFrame) -> pd.Series:
    """No biases, no batch norm, no rescaled ball."""
    ball = column(frame, "model.ball", "none").fillna("none")
    return ~flag(frame, "model.bias") & ~flag(frame, "model.batchnorm") & (ball == "none")


def net_kind(frame: pd.DataFrame) -> pd.Series:
    """``relu``, ``linear+BN``, ``relu+bias``, ``linear+operator`` …: the kind of network."""
    net = column(frame, "model.activation", "").fillna("").astype(str)
    net = net.where(~flag(frame, "model.bias"), net + "+bias")
    net = net.where(~flag(frame, "model.batchnorm"), net + "+BN")
    ball = column(frame, "model.ball", "none").fillna("none").astype(str)
    return net.where(ball == "none", net + "+" + ball)


def pos(values: pd.Series | np.ndarray) -> np.ndarray:
    """|values| floored at FLOOR for log axes."""
    return np.maximum(np.abs(np.asarray(values, dtype=float)), FLOOR)


def vmedian(values: pd.Series) -> float:
    v = pd.to_numeric(values, errors="coerce").dropna()
    return float(v.median()) if len(v) else float("nan")


def vmax(values: pd.Series) -> float:
    v = pd.to_numeric(values, errors="coerce").dropna()
    return float(v.max()) if len(v) else float("nan")


def vmin(values: pd.Series) -> float:
    v = pd.to_numeric(values, errors="coerce").dropna()
    return float(v.min()) if len(v) else float("nan")


def abs_median(values: pd.Series) -> float:
    return vmedian(pd.to_numeric(values, errors="coerce").abs())


def abs_max(values: pd.Series) -> float:
    return vmax(pd.to_numeric(values, errors="coerce").abs())


def layer_values(
    frame: pd.DataFrame, metric: str, depth: pd.Series, offset: int = 0
) -> list[list[float]]:
    """Per row, ``layer{l}.{metric}`` for l = 1 … depth − offset (NaN where not logged)."""
    out = []
    for idx, L in zip(frame.index, depth, strict=True):
        n = int(L) - offset if pd.notna(L) else 0
        out.append([float(column(frame, f"layer{l}.{metric}").loc[idx]) for l in range(1, n + 1)])
    return out


def nanmin(
    rows: list[list[float]], transform: Callable[[np.ndarray], np.ndarray] = lambda a: a
) -> list[float]:
    out = []
    for r in rows:
        a = transform(np.asarray(r, dtype=float))
        a = a[np.isfinite(a)]
        out.append(float(a.min()) if a.size else float("nan"))
    return out


def make_figure(
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


def strip(
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


MAX_DRAWN = 120  # lines of one figure panel: a sample beyond this (thousands are unreadable)


def drawn(frame: pd.DataFrame, limit: int = MAX_DRAWN) -> tuple[pd.DataFrame, str]:
    """At most ``limit`` rows of ``frame`` to draw one line each — evenly spaced over its order,
    so every part of a sorted sweep shows — and a note for the panel's title ("" when all are)."""
    if len(frame) <= limit:
        return frame, ""
    pick = np.unique(np.linspace(0, len(frame) - 1, limit).round().astype(int))
    return frame.iloc[pick], f" ({len(pick)} of {len(frame)} trials drawn)"


def legend(ax) -> None:
    """One legend entry per label. matplotlib's ``loc="best"`` scores every data point of every
    artist for each candidate spot — tens of seconds over the thousands of curves of a big
    sweep — so an axes with more than 50 artists gets the fixed upper right corner."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        uniq = dict(zip(labels, handles, strict=True))
        many = len(ax.lines) + len(ax.collections) > 50
        ax.legend(uniq.values(), uniq.keys(), fontsize=8, loc="upper right" if many else "best")


def diagonal(ax, data: pd.DataFrame, x: str, y: str, label: str) -> None:
    """The dotted line ``y = x`` over the finite values of ``data[[x, y]]`` (the reference line
    of a scatter of y against x); nothing when no row is finite."""
    fin = data[[x, y]].to_numpy(dtype=float)
    fin = fin[np.isfinite(fin).all(axis=1)]
    if fin.size:
        ax.plot([fin.min(), fin.max()], [fin.min(), fin.max()], "k:", lw=1, label=label)


def gaps(done: pd.DataFrame) -> dict[str, np.ndarray]:
    """The objective columns every experiment with a P* shows: SGD alone, the polished
    objective beside it (NaN without a polish), P*, and both relative gaps — RECOMPUTED from
    the logged objectives and P* (:func:`~analysis.experiments.verdicts.recomputed`), never
    the logged gaps."""
    from analysis.experiments.verdicts import recomputed

    r = recomputed(done)
    return {
        "sgd_objective": num(done, "sgd_objective").values,
        "polished_objective": num(done, "polished_objective").values,
        "exact_objective": num(done, "exact_objective").values,
        "rel_gap": r["sgd_gap"].values,
        "polished_rel_gap": r["polished_gap"].values,
    }
