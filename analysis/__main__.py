"""``python -m analysis --experiment NAME --out DIR [--tracking-uri URI] [--check [--strict]]
[--expect-reach FRACTION]``.

Reads MLflow experiment NAME (a grid name, e.g. ``paper``) from ``--tracking-uri`` (default
``$MLFLOW_TRACKING_URI``, else ``sqlite:///<cwd>/mlruns.db``), writes every figure, table,
``index.html``, ``README.md`` and ``verdicts.json`` of :func:`analysis.report.report` under
DIR, and prints the first screen: the grid line (trials recorded / the grid's size), then per
experiment its **theory** verdict (PASS / FAIL / INCONCLUSIVE) beside the **optimizer**
measurement (how often SGD alone reached P*).

Exit status: 2 when the experiment has no trials in the store; with ``--check``, 1 when a
theory verdict is FAIL or trials of the grid are missing (``--strict``: a theory verdict
INCONCLUSIVE too) or an optimizer expectation fails (the message says "optimizer"): set with
``--expect-reach``, or else by ``grid.expect_reach`` in the grid file, which the sweep logs on
its parent run (the latest invocation's counts; the flag wins); else 0. Experiments with no trial in the store (another grid's) are listed
on one line, never fatal.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence

__all__ = ["exit_status", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m analysis",
        description="Tables, figures, verdicts and a report of a sweep, from MLflow.",
    )
    parser.add_argument(
        "--experiment", default="paper", help="MLflow experiment (grid name); default: paper"
    )
    parser.add_argument("--out", default="report", help="output directory; default: report/")
    parser.add_argument(
        "--tracking-uri",
        default=None,
        help="MLflow store; default: $MLFLOW_TRACKING_URI or sqlite:///./mlruns.db",
    )
    parser.add_argument(
        "--no-curves", action="store_true", help="skip loading training curves (E2's figure)"
    )
    parser.add_argument(
        "--check", action="store_true", help="exit 1 when any verdict is FAIL (gate CI on a sweep)"
    )
    parser.add_argument(
        "--strict", action="store_true", help="with --check: INCONCLUSIVE fails too"
    )
    parser.add_argument(
        "--expect-reach",
        type=float,
        default=None,
        metavar="FRACTION",
        help="an optimizer expectation: SGD alone within 1e-4 of P* in at least this fraction "
        "of each experiment's trials with P* (0 < FRACTION <= 1); its failure says 'optimizer'. "
        "Default: the grid file's grid.expect_reach, logged on the sweep's parent run",
    )
    args = parser.parse_args(argv)
    if args.expect_reach is not None and not 0.0 < args.expect_reach <= 1.0:
        parser.error(f"--expect-reach must be a fraction in (0, 1], got {args.expect_reach}")

    from analysis.load import default_tracking_uri, load
    from analysis.report import check_lines, report

    uri = args.tracking_uri or default_tracking_uri()
    t0 = time.perf_counter()
    from sweep.store import StoreError

    try:
        trials = load(args.experiment, uri)
    except StoreError as exc:  # no store there, or not a readable one: one sentence
        print(f"analysis: {exc}", file=sys.stderr)
        return 2
    if trials.attrs.get("superseded"):
        print(
            f"analysis: {trials.attrs['superseded']} run(s) of trials recorded more than once "
            "were left out (each trial's latest FINISHED run is used).",
            file=sys.stderr,
        )
    if trials.empty:
        print(f"analysis: experiment '{args.experiment}' has no trials in {uri}", file=sys.stderr)
        return 2
    try:
        index = report(
            args.experiment,
            args.out,
            uri,
            curves=not args.no_curves,
            trials=trials,
            expect_reach=args.expect_reach,
        )
    except StoreError as exc:  # a grid.expect_reach logged on the parent run that is no fraction
        print(f"analysis: {exc}", file=sys.stderr)
        return 2
    doc = json.loads((index.parent / "verdicts.json").read_text())
    for line in check_lines(doc):
        print(line)
    ran = [e for e in doc["experiments"] if e.get("trials", 1) > 0]
    statuses = [e["status"] for e in ran]
    counts = {s: statuses.count(s) for s in ("PASS", "FAIL", "INCONCLUSIVE")}
    print(
        f"theory: {counts['PASS']} PASS, {counts['FAIL']} FAIL, {counts['INCONCLUSIVE']} "
        f"INCONCLUSIVE of {len(ran)} experiments with trials; report: {index} (and README.md, "
        f"verdicts.json) in {time.perf_counter() - t0:.1f} s"
    )
    if args.check:
        status = exit_status(doc, strict=args.strict)
        if status:
            for why in failures(doc, strict=args.strict):
                print(f"analysis --check: {why}", file=sys.stderr)
        return status
    return 0


def failures(doc: dict, *, strict: bool = False) -> list[str]:
    """Why ``--check`` fails, one sentence per kind: the grid (trials missing), the theory
    (FAIL, or INCONCLUSIVE with ``strict``), the optimizer (an expectation the user set)."""
    bad = {"FAIL", "INCONCLUSIVE"} if strict else {"FAIL"}
    ran = [e for e in doc.get("experiments", []) if e.get("trials", 1) > 0]
    out = []
    grid = doc.get("grid") or {}
    if grid.get("status") == "FAIL":
        out.append(f"grid — {grid['line']}")
    theory = [e["id"] for e in ran if e["status"] in bad]
    if theory:
        out.append(
            f"theory — {', '.join(theory)} "
            + ("FAIL or INCONCLUSIVE (--strict)" if strict else "FAIL")
            + " (a counterexample to a theorem, or an inconsistent record: see the report)"
        )
    optimizer = [e["id"] for e in ran if e.get("optimizer_status") == "FAIL"]
    if optimizer:
        source = (doc.get("expectation") or {}).get("from", "--expect-reach")
        out.append(
            f"optimizer — {', '.join(optimizer)}: SGD reached P* less often than "
            f"{source} asks (a measurement of the optimizer, not of the theory)"
        )
    return out


def exit_status(doc: dict, *, strict: bool = False) -> int:
    """``--check``'s exit status for a ``verdicts.json`` document: 1 when the grid has trials
    missing, any theory verdict is FAIL (or INCONCLUSIVE with ``strict``), or an optimizer
    expectation fails; else 0. An experiment with no trial at all in the store (e.g. E11,
    whose grid is ``two_layer_relu``, in a ``paper`` store) is not one this sweep ran: it is
    listed, never fatal."""
    return int(bool(failures(doc, strict=strict)))


if __name__ == "__main__":
    sys.exit(main())
