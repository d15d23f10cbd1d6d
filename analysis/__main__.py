"""``python -m analysis --experiment NAME --out DIR [--tracking-uri URI]``: write the report.

Reads MLflow experiment NAME (a grid name, e.g. ``paper``) from ``--tracking-uri`` (default
``$MLFLOW_TRACKING_URI``, else ``sqlite:///<cwd>/mlruns.db``) and writes every figure, table,
``index.html`` and ``README.md`` of :func:`analysis.report.report` under DIR. Exit status 2
when the experiment has no trials in the store.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m analysis",
        description="Tables, figures and a report of a sweep, from MLflow.",
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
    args = parser.parse_args(argv)

    from analysis.load import default_tracking_uri, load
    from analysis.report import report

    uri = args.tracking_uri or default_tracking_uri()
    t0 = time.perf_counter()
    trials = load(args.experiment, uri)
    if trials.empty:
        print(f"analysis: experiment '{args.experiment}' has no trials in {uri}", file=sys.stderr)
        return 2
    index = report(args.experiment, args.out, uri, curves=not args.no_curves, trials=trials)
    verdicts = (index.parent / "verdicts.md").read_text()
    print(verdicts)
    print(f"report: {index} (and README.md) in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
