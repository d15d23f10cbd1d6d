"""The report: every experiment of docs/theory.md §Experiments as a verdict, a figure and a table.

:func:`run_experiments` applies every registered experiment of :mod:`analysis.experiments` to a
trial frame; :func:`write_report` writes ``index.html`` and ``README.md`` (the grid, counts of
trials, failures and diverged runs, one verdict per experiment with its claims — claim,
expected, seen, PASS / FAIL / INCONCLUSIVE in colour — every figure and table),
``verdicts.json`` (the same verdicts for machines) and ``verdicts.csv``; :func:`report` does it
all from an MLflow experiment.
"""

from __future__ import annotations

import html
import json
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import experiments as ex
from analysis.load import (
    default_tracking_uri,
    load,
    load_curves,
    load_parents,
    load_results,
    load_tracebacks,
    logged_expectation,
)
from analysis.tables import column, fmt, split_status, to_markdown, write_table

__all__ = [
    "check_lines",
    "grid_check",
    "failures",
    "grid_summary",
    "report",
    "run_experiments",
    "write_report",
    "write_verdicts",
]

_GRID_SKIP = {"experiment"}
MAX_TRACEBACKS = 500  # failed trials whose traceback.txt the report fetches


def run_experiments(
    trials: pd.DataFrame,
    *,
    curves: pd.DataFrame | None = None,
    results: Mapping[str, object] | None = None,
    out_dir: str | Path | None = None,
    expect_reach: float | None = None,
) -> list[ex.Outcome]:
    """Every registered experiment, in report order (deep_relu, E1 … E5, R1, E6 … E11)."""
    return ex.run_all(
        trials, curves=curves, results=results, out_dir=out_dir, expect_reach=expect_reach
    )


def grid_check(trials: pd.DataFrame, parents: pd.DataFrame | None) -> dict:
    """The store against its grid: every trial the sweep expanded (the parent runs' logged
    ``trials``, the largest over invocations) must be in the store, whatever its status. Fewer
    → FAIL (trials deleted or never recorded: the verdicts would judge a subset); no parent run
    with the count → INCONCLUSIVE."""
    expected = pd.Series(dtype=float)
    if parents is not None and "param.trials" in parents:
        expected = pd.to_numeric(parents["param.trials"], errors="coerce").dropna()
    keys = column(trials, "trial_key", "").fillna("").astype(str)
    recorded = int(keys[keys != ""].nunique()) if (keys != "").any() else len(trials)
    if expected.empty:
        return {"status": "INCONCLUSIVE", "expected": None, "recorded": recorded,
                "line": f"grid: {recorded} trials recorded; the sweep's grid size is not "
                        "logged (no parent run with `trials`)"}  # fmt: skip
    want = int(expected.max())
    status = "PASS" if recorded >= want else "FAIL"
    running = int((column(trials, "status", "").fillna("") == "running").sum())
    line = f"grid: {recorded}/{want} trials of the grid recorded"
    if running:
        line += f" ({running} claimed by a sweep, not finished yet)"
    if status == "FAIL":
        line += f" — {want - recorded} missing: the verdicts below judge a subset (FAIL)"
    return {"status": status, "expected": want, "recorded": recorded, "line": line}


def check_lines(doc: Mapping) -> list[str]:
    """The first screen: the grid line, then one line per experiment with trials — its theory
    verdict (each check's passed/counted) beside the optimizer measurement —
    ``E4   theory PASS (…); SGD reached P* within 0.0001 in 9/10 (1e-06: 4/10)``; the
    experiments without trials in this store share one last line."""
    exps = doc.get("experiments", [])
    ran = [e for e in exps if e.get("trials")]
    width = max((len(e["id"]) for e in ran), default=3)
    lines = [doc["grid"]["line"]] if doc.get("grid") else []
    lines += [f"{e['id']:<{width}}  {ex.screen_line(e)}" for e in ran]
    absent = [e["id"] for e in exps if not e.get("trials")]
    if absent:
        lines.append(f"no trials in this store: {', '.join(absent)}")
    return lines


def write_verdicts(
    outcomes: list[ex.Outcome],
    out_dir: str | Path,
    grid: Mapping | None = None,
    expectation: Mapping | None = None,
) -> Path:
    """``verdicts.json``: the grid check, the optimizer expectation (``{"reach": x, "from":
    where it was set}``, None when unset) and one object per experiment (theory status,
    optimizer status where an expectation was set, counts, every check, the reach measurement)."""
    path = Path(out_dir) / "verdicts.json"
    ran = [o for o in outcomes if o.n_trials]
    doc = {
        "status": ex.combine([c for o in ran for c in o.checks]).value if ran else "INCONCLUSIVE",
        "grid": dict(grid) if grid else None,
        "expectation": dict(expectation) if expectation else None,
        "experiments": [o.to_dict() for o in outcomes],
    }
    path.write_text(json.dumps(doc, indent=2, default=str, ensure_ascii=False))
    return path


def _param_columns(trials: pd.DataFrame) -> list[str]:
    return [
        c
        for c in trials.columns
        if (c.startswith(("data.", "model.", "train.")) or c == "seed") and c not in _GRID_SKIP
    ]


def grid_summary(trials: pd.DataFrame) -> pd.DataFrame:
    """One row per experiment id (``""`` → ``all``): trial counts by status, the axes that vary
    (with their values) and the fixed settings."""
    rows = []
    if trials.empty:
        return pd.DataFrame(
            columns=["experiment", "trials", "finished", "diverged", "failed", "axes", "fixed"]
        )
    ids = column(trials, "experiment", "").fillna("").astype(str)
    for eid in sorted(ids.unique(), key=lambda s: (len(s), s)):
        block = trials[ids == eid]
        done, diverged, failed = split_status(block)
        axes, fixed = [], []
        for c in _param_columns(block):
            values = block[c].dropna().unique()
            if len(values) > 1:
                axes.append(f"{c} ∈ {{{', '.join(fmt(v) for v in sorted(values, key=str))}}}")
            elif len(values) == 1:
                fixed.append(f"{c}={fmt(values[0])}")
        rows.append(
            {
                "experiment": eid or "all",
                "trials": len(block),
                "finished": len(done),
                "diverged": diverged,
                "failed": failed,
                "axes": "; ".join(axes) or "–",
                "fixed": ", ".join(fixed),
            }
        )
    return pd.DataFrame(rows)


_FAILURE_SETTINGS = (
    "data.kind",
    "model.activation",
    "model.depth",
    "model.width",
    "train.beta",
    "seed",
)


def failures(trials: pd.DataFrame, errors: Mapping[str, str] | None = None) -> pd.DataFrame:
    """The diverged and failed trials: run, experiment, status, main settings and, from
    ``errors`` (run_id → traceback text), the last line of each failed trial's traceback."""
    cols = ["run_name", "experiment", "status", *_FAILURE_SETTINGS, "error"]
    if trials.empty:
        return pd.DataFrame(columns=cols)
    status = column(trials, "status", "finished").fillna("finished")
    bad = trials[status != "finished"].copy()
    errors = errors or {}
    bad["error"] = [_last_line(errors.get(rid, "")) for rid in bad["run_id"]]
    return bad[[c for c in cols if c in bad.columns]].reset_index(drop=True)


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in (text or "").strip().splitlines() if ln.strip()]
    return lines[-1][:200] if lines else ""


def _sweep_times(parents: pd.DataFrame | None) -> list[str]:
    if parents is None or parents.empty:
        return []
    out = []
    for _, p in parents.iterrows():
        start, end = p.get("start_time"), p.get("end_time")
        if pd.notna(start) and pd.notna(end):
            secs = (end - start).total_seconds()
            out.append(f"{p['run_name']} ({p['run_status']}): {fmt(secs, 4)} s wall time")
        else:
            out.append(f"{p['run_name']} ({p['run_status']}): not finished")
    return out


def _cell(v: object) -> str:
    numeric = isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
    cls = "" if numeric else " class='t'"
    return f"<td{cls}>{html.escape(fmt(v))}</td>"


def _html_table(table: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in table.columns)
    body = "".join(
        "<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in table.itertuples(index=False)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_CSS = """
body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;font-size:13px;margin:.5em 0 1.5em}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:right}th{background:#f0f0f0;text-align:center}
td:first-child,th:first-child,td.t{text-align:left}img{max-width:100%;border:1px solid #ddd}
.verdict{background:#f6f8fa;border-left:6px solid #aaa;padding:.4em .8em;margin-bottom:1em}
.verdict table{font-size:12px;margin:.3em 0}.verdict td{text-align:left;vertical-align:top}
.pass{border-left-color:#1a7f37}.fail{border-left-color:#cf222e}.inconclusive{border-left-color:#bf8700}
.badge{display:inline-block;padding:1px 7px;border-radius:4px;color:#fff;font-size:12px;font-weight:600}
.b-PASS{background:#1a7f37}.b-FAIL{background:#cf222e}.b-INCONCLUSIVE{background:#bf8700}
"""


def _badge(status: str) -> str:
    return f"<span class='badge b-{status}'>{status}</span>"


def _html_checks(o: ex.Outcome) -> str:
    head = "<tr><th>claim</th><th>expected</th><th>seen</th><th>verdict</th></tr>"
    rows = []
    for c in o.checks:
        why = f"<br><i>{html.escape(c.reason)}</i>" if c.reason else ""
        rows.append(
            f"<tr><td>{html.escape(c.claim)}<br><small>measured: {html.escape(c.measured)}</small></td>"
            f"<td>{html.escape(c.expected)}</td><td>{html.escape(c.seen)}</td>"
            f"<td>{'optimizer ' if c.kind == 'optimizer' else ''}{_badge(c.status.value)}{why}</td></tr>"
        )
    return f"<table>{head}{''.join(rows)}</table>"


def _md_checks(o: ex.Outcome) -> str:
    table = pd.DataFrame(
        [
            {
                "claim": c.claim,
                "measured": c.measured,
                "expected": c.expected,
                "seen": c.seen,
                "verdict": ("optimizer " if c.kind == "optimizer" else "")
                + c.status.value
                + (f" — {c.reason}" if c.reason else ""),
            }  # fmt: skip
            for c in o.checks
        ]
    )
    return to_markdown(table)


def write_report(
    trials: pd.DataFrame,
    out_dir: str | Path,
    *,
    curves: pd.DataFrame | None = None,
    results: Mapping[str, object] | None = None,
    parents: pd.DataFrame | None = None,
    errors: Mapping[str, str] | None = None,
    name: str = "",
    tracking_uri: str = "",
    expect_reach: float | None = None,
    expect_from: str = "--expect-reach",
) -> Path:
    """Write every figure and table plus ``index.html`` and ``README.md`` under ``out_dir``;
    returns the path of ``index.html``. ``expect_reach``: the optimizer expectation, set by
    ``expect_from`` (the command line's flag, or the grid file's ``grid.expect_reach``)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    outcomes = run_experiments(
        trials, curves=curves, results=results, out_dir=out, expect_reach=expect_reach
    )
    gridc = grid_check(trials, parents)
    grid = grid_summary(trials)
    bad = failures(trials, errors)
    write_table(grid, out, "grid")
    write_table(bad, out, "failures")
    verdicts = pd.DataFrame(
        [
            {
                "id": o.id,
                "status": o.status.value,
                "experiment": o.title,
                "trials": o.n_trials,
                "verdict": o.verdict,
            }  # fmt: skip
            for o in outcomes
        ]
    )
    write_table(verdicts, out, "verdicts")
    expectation = None if expect_reach is None else {"reach": expect_reach, "from": expect_from}
    doc = json.loads(write_verdicts(outcomes, out, gridc, expectation).read_text())
    screen = check_lines(doc)
    ran = [o for o in outcomes if o.n_trials]
    done, diverged, failed = split_status(trials)
    times = _sweep_times(parents)
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    counts = f"{len(trials)} trials: {len(done)} finished, {diverged} diverged, {failed} failed"

    md = [
        f"# dualsweep report: `{name}`",
        "",
        f"Generated {stamp} from MLflow `{tracking_uri}`.",
        "",
    ]
    md += [f"**{counts}.**", ""]
    if times:
        md += ["Sweep invocations (parent runs):", ""] + [f"- {t}" for t in times] + [""]
    md += ["## Verdicts: theory, and the optimizer beside it", "", "```", *screen, "```", ""]
    md += [
        "**Theory** (PASS / FAIL / INCONCLUSIVE, about the optimum): no network below P*, the "
        "routes to P* agree, the logged record is consistent, the predicted structure holds on "
        "networks AT the optimum (within 1e-9 of P*). FAIL is a counterexample; INCONCLUSIVE: "
        "nothing reached the optimum (the count says so). **Optimizer** (a measurement, never a "
        "theory verdict): how often SGD alone ends within 1e-4 / 1e-6 of P*, misses classified; "
        "it gates only where an expectation is set (`--expect-reach`, or `grid.expect_reach` "
        "in the grid file). Thresholds: `analysis/experiments/verdicts.py`, docs/theory.md.",
        "",
    ]
    if expectation:
        md += [
            f"Optimizer expectation: SGD within 1e-4 of P* in ≥ {fmt(expect_reach, 3)} of each "
            f"experiment's trials with P* (set by {expect_from}).",
            "",
        ]
    md += ["## Grid", "", to_markdown(grid), ""]
    md += ["## Diverged and failed trials", "", to_markdown(bad) if not bad.empty else "none", ""]
    for o in ran:
        md += [f"## {o.title}", "", f"**Theory: {o.status.value}**", ""]
        md += [_md_checks(o), ""]
        if o.reach is not None:
            md += [f"**Optimizer (measurement):** {o.reach.line()}", ""]
            md += [f"- worst: {w}" for w in o.reach.worst] + ([""] if o.reach.worst else [])
            if not o.reach.by_axis.empty:
                md += [to_markdown(o.reach.by_axis), ""]
        if o.summary:
            md += [f"Measured: {o.summary}", ""]
        if o.figure is not None:
            md += [f"![{o.id}]({o.figure.name})", ""]
        if not o.table.empty:
            md += [
                to_markdown(o.table),
                f"CSV: [{o.id}.csv]({o.id}.csv), per trial: [{o.id}_trials.csv]({o.id}_trials.csv)",
                "",
            ]
    (out / "README.md").write_text("\n".join(md))

    h = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>dualsweep report: {html.escape(name)}</title><style>{_CSS}</style></head><body>",
        f"<h1>dualsweep report: {html.escape(name)}</h1>",
        f"<p>Generated {stamp} from MLflow <code>{html.escape(tracking_uri)}</code>.</p>",
        f"<p><b>{html.escape(counts)}.</b></p>",
    ]
    if times:
        h.append("<ul>" + "".join(f"<li>{html.escape(t)}</li>" for t in times) + "</ul>")
    h.append("<h2>Verdicts: theory, and the optimizer beside it</h2>")
    h.append("<pre>" + html.escape("\n".join(screen)) + "</pre>")
    h.append("<h2>Grid</h2>" + _html_table(grid))
    h.append(
        "<h2>Diverged and failed trials</h2>"
        + (_html_table(bad) if not bad.empty else "<p>none</p>")
    )
    for o in ran:
        h.append(
            f"<h2 id='{o.id}'>{html.escape(o.title)} theory {_badge(o.status.value)}</h2>"
            f"<div class='verdict {o.status.value.lower()}'>{_html_checks(o)}"
            + (
                f"<p><b>Optimizer (measurement):</b> {html.escape(o.reach.line())}</p>"
                + "".join(f"<p>worst: {html.escape(w)}</p>" for w in o.reach.worst)
                + (_html_table(o.reach.by_axis) if not o.reach.by_axis.empty else "")
                if o.reach is not None
                else ""
            )
            + (f"<p>Measured: {html.escape(o.summary)}</p>" if o.summary else "")
            + "</div>"
        )
        if o.figure is not None:
            h.append(f"<img src='{html.escape(o.figure.name)}' alt='{o.id} figure'>")
        if not o.table.empty:
            h.append(_html_table(o.table))
            h.append(
                f"<p><a href='{o.id}.csv'>{o.id}.csv</a> · <a href='{o.id}.md'>{o.id}.md</a> · "
                f"<a href='{o.id}_trials.csv'>per trial</a></p>"
            )
    h.append("</body></html>")
    index = out / "index.html"
    index.write_text("\n".join(h))
    return index


def report(
    experiment: str,
    out_dir: str | Path,
    tracking_uri: str | None = None,
    *,
    curves: bool = True,
    trials: pd.DataFrame | None = None,
    expect_reach: float | None = None,
) -> Path:
    """Load MLflow experiment ``experiment`` and write its report under ``out_dir``; returns
    the path of ``index.html``. Curves and ``trial.json`` are fetched only for the trials of the
    experiments that declare ``needs=("curves",)`` / ``needs=("results",)``. ``trials``: the frame of ``load`` when the caller
    already has it. ``expect_reach``: the optimizer expectation; None takes the one the latest
    sweep logged on its parent run (``grid.expect_reach`` in its grid file), if any."""
    uri = tracking_uri or default_tracking_uri()
    if trials is None:
        trials = load(experiment, uri)
    cur, results = None, {}
    if not trials.empty:
        wanted: dict[str, list[str]] = {"curves": [], "results": []}
        for exp in ex.EXPERIMENTS.values():
            ids = list(exp.rows(trials)["run_id"]) if exp.needs else []
            for need in exp.needs:
                wanted[need] += ids
        if curves and wanted["curves"]:
            cur = load_curves(experiment, uri, run_ids=sorted(set(wanted["curves"])))
        if wanted["results"]:
            results = load_results(sorted(set(wanted["results"])), uri)
    parents = load_parents(experiment, uri)
    expect_from = "--expect-reach"
    if expect_reach is None:
        expect_reach = logged_expectation(parents)
        expect_from = "grid.expect_reach (the sweep's grid file)"
    failed = trials.loc[column(trials, "status", "finished") == "failed", "run_id"]
    errors = load_tracebacks(list(failed)[:MAX_TRACEBACKS], uri)
    return write_report(
        trials,
        out_dir,
        curves=cur,
        results=results,
        parents=parents,
        errors=errors,
        name=experiment,
        tracking_uri=uri,
        expect_reach=expect_reach,
        expect_from=expect_from,
    )
