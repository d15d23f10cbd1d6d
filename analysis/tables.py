"""Small table helpers: selecting a paper experiment's trials, Markdown/CSV output, number format.

Pure functions of DataFrames (one row per trial, as :func:`analysis.load` returns them).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "column",
    "fmt",
    "metric",
    "select",
    "split_status",
    "to_markdown",
    "write_table",
]


def column(frame: pd.DataFrame, name: str, default: object = np.nan) -> pd.Series:
    """``frame[name]``, or a column of ``default`` when the store never logged ``name``."""
    if name in frame.columns:
        return frame[name]
    return pd.Series(
        [default] * len(frame),
        index=frame.index,
        dtype=object if isinstance(default, str) else float,
    )


def metric(frame: pd.DataFrame, name: str) -> pd.Series:
    """Metric ``name`` as float64 (NaN where not logged, or no column at all). Params need no
    such parse: :func:`analysis.load` gives each as one typed column; read them with
    :func:`column`."""
    return pd.to_numeric(column(frame, name), errors="coerce").astype(float)


def select(
    frame: pd.DataFrame, experiment: str, fallback: Callable[[pd.DataFrame], pd.Series]
) -> pd.DataFrame:
    """Rows of paper experiment ``experiment`` (the ``experiment`` param, e.g. ``"E1"``).

    A store written by a grid without experiment ids (every ``experiment`` empty, e.g. the
    smoke grid) is matched structurally instead: the rows where ``fallback(frame)`` holds.
    A paper store without that experiment gives no rows.
    """
    if frame.empty:
        return frame
    ids = column(frame, "experiment", "").fillna("").astype(str)
    if (ids == experiment).any():
        return frame[ids == experiment]
    if (ids == "").all():
        mask = fallback(frame).fillna(False).astype(bool)
        return frame[mask]
    return frame.iloc[0:0]


def split_status(frame: pd.DataFrame) -> tuple[pd.DataFrame, int, int]:
    """(finished rows, number diverged, number failed or otherwise unfinished)."""
    status = column(frame, "status", "finished").fillna("finished").astype(str)
    finished = frame[status == "finished"]
    diverged = int((status == "diverged").sum())
    return finished, diverged, int(len(frame) - len(finished) - diverged)


def fmt(value: object, digits: int = 3) -> str:
    """Compact number: ``3e-07``, ``0.0123``, ``12``, ``True``; ``–`` for missing."""
    if value is None or value is pd.NA:
        return "–"
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if math.isnan(v):
            return "–"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        if v == int(v) and abs(v) < 1e6:
            return str(int(v))
        return f"{v:.{digits}g}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def to_markdown(table: pd.DataFrame, *, digits: int = 3) -> str:
    """A GitHub-flavoured Markdown table (no extra dependency)."""
    cols = [str(c) for c in table.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join(" --- " for _ in cols) + "|"]
    for row in table.itertuples(index=False):
        lines.append("| " + " | ".join(fmt(v, digits) for v in row) + " |")
    return "\n".join(lines) + "\n"


def write_table(table: pd.DataFrame, out_dir: str | Path, stem: str) -> dict[str, Path]:
    """Write ``<stem>.csv`` (full precision) and ``<stem>.md``; returns both paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    csv, md = out / f"{stem}.csv", out / f"{stem}.md"
    table.to_csv(csv, index=False)
    md.write_text(to_markdown(table))
    return {"csv": csv, "md": md}
