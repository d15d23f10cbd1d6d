"""Usage: python cluster/check_tracking.py [URI] [--attempts N] [--timeout SECONDS]

Checks that the MLflow tracking store named by URI (default ``$MLFLOW_TRACKING_URI``) can be
reached from this machine, so a sweep fails in seconds with one sentence naming the URI
instead of inside MLflow's HTTP retries (minutes). Standard library only: it runs before the
project's environment is known to be right.

- ``http(s)://HOST:PORT`` -- ``GET /health`` of the MLflow server must answer 200;
- ``postgresql://``, ``mysql://``, ``mssql://`` -- a TCP connection to the database port;
- ``sqlite:///PATH`` / ``file:///PATH`` -- the directory that holds PATH must exist here.

``cluster/submit.sh`` runs it on the submitting machine before submitting, and again as the
first step of the job on the cluster (where the sweep's driver runs). Exit status 0 when
reachable, 1 when not (the message goes to stderr), 2 for a missing URI.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

__all__ = ["check", "main"]

_DB_PORTS = {"postgresql": 5432, "postgres": 5432, "mysql": 3306, "mssql": 1433}


def check(uri: str, *, timeout: float = 5.0) -> str | None:
    """Why ``uri`` cannot be reached from here (one phrase), or None when it can."""
    parts = urllib.parse.urlsplit(uri)
    scheme = parts.scheme.split("+")[0]
    try:
        if scheme in ("http", "https"):
            url = uri.rstrip("/") + "/health"
            with urllib.request.urlopen(url, timeout=timeout) as resp:
                if resp.status != 200:
                    return f"GET /health answered HTTP {resp.status}"
        elif scheme in _DB_PORTS:
            host = parts.hostname or "127.0.0.1"
            socket.create_connection((host, parts.port or _DB_PORTS[scheme]), timeout).close()
        elif scheme in ("sqlite", "file"):
            path = Path(urllib.parse.unquote(parts.path))
            if not path.parent.is_dir():
                return f"directory {path.parent} does not exist on {socket.gethostname()}"
        else:
            return f"unknown URI scheme {parts.scheme!r}"
    except urllib.error.HTTPError as exc:
        return f"GET /health answered HTTP {exc.code}"
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        if isinstance(reason, OSError) and reason.strerror:
            return reason.strerror
        return str(reason) or type(exc).__name__
    return None


def main(argv: list[str] | None = None) -> int:
    """Command line: check the URI, retrying a few times; print one sentence on failure."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("uri", nargs="?", default=os.environ.get("MLFLOW_TRACKING_URI", ""))
    ap.add_argument("--attempts", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=5.0)
    args = ap.parse_args(argv)
    if not args.uri:
        print(
            "check_tracking: no URI given and MLFLOW_TRACKING_URI is not set.",
            file=sys.stderr,
        )
        return 2
    if args.attempts < 1:
        ap.error("--attempts must be >= 1")
    why = None
    for attempt in range(args.attempts):
        why = check(args.uri, timeout=args.timeout)
        if why is None:
            return 0
        if attempt + 1 < args.attempts:
            time.sleep(1.0)
    print(
        f"cannot reach the MLflow tracking server at {args.uri} from {socket.gethostname()} "
        f"({why}). Start it (cluster/mlflow-server.sh) or fix MLFLOW_TRACKING_URI, then "
        "submit again: trials already recorded are skipped.",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
