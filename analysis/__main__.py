"""``python -m analysis --experiment NAME --out DIR [--tracking-uri URI] [--check [--strict]]``.

Reads MLflow experiment NAME (a grid name, e.g. ``paper``) from ``--tracking-uri`` (default
``$MLFLOW_TRACKING_URI``, else ``sqlite:///<cwd>/mlruns.db``), writes every figure, table,
``index.html``, ``README.md`` and ``verdicts.json`` of :func:`analysis.report.report` under
DIR, and prints one verdict line per experiment (PASS / FAIL / INCONCLUSIVE).

Exit status: 2 when the experiment has no trials in the store; with ``--check``, 1 when any
verdict is FAIL (or, with ``--strict``, INCONCLUSIVE), so a sweep can gate CI; else 0.
Experiments with no trial in the store (another grid's) are listed but never fatal.
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
    args = parser.parse_args(argv)

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
    index = report(args.experiment, args.out, uri, curves=not args.no_curves, trials=trials)
    doc = json.loads((index.parent / "verdicts.json").read_text())
    for line in check_lines(doc):
        print(line)
    statuses = [e["status"] for e in doc["experiments"]]
    counts = {s: statuses.count(s) for s in ("PASS", "FAIL", "INCONCLUSIVE")}
    print(
        f"verdicts: {counts['PASS']} PASS, {counts['FAIL']} FAIL, {counts['INCONCLUSIVE']} "
        f"INCONCLUSIVE; report: {index} (and README.md, verdicts.json) in "
        f"{time.perf_counter() - t0:.1f} s"
    )
    if args.check:
        status = exit_status(doc, strict=args.strict)
        if status:
            ran = [e["status"] for e in doc["experiments"] if e.get("trials", 1) > 0]
            bad = ran.count("FAIL") + (ran.count("INCONCLUSIVE") if args.strict else 0)
            print(
                f"analysis --check: {bad} experiment(s) "
                + ("FAIL or INCONCLUSIVE (--strict)" if args.strict else "FAIL"),
                file=sys.stderr,
            )
        return status
    return 0


def exit_status(doc: dict, *, strict: bool = False) -> int:
    """``--check``'s exit status for a ``verdicts.json`` document: 1 when any experiment is
    FAIL (or INCONCLUSIVE with ``strict``), else 0. An experiment with no trial at all in the
    store (e.g. E11, whose grid is ``two_layer_relu``, in a ``paper`` store) is not one this
    sweep ran: it is listed, never fatal."""
    bad = {"FAIL", "INCONCLUSIVE"} if strict else {"FAIL"}
    ran = [e for e in doc.get("experiments", []) if e.get("trials", 1) > 0]
    return int(any(e["status"] in bad for e in ran))


if __name__ == "__main__":
    sys.exit(main())
