"""Interrupts (Ctrl-C, SIGTERM) that stop a sweep cleanly.

SIGTERM (``kill``, SLURM, Kubernetes) raises :class:`Terminated`, a ``KeyboardInterrupt``, so
it takes Ctrl-C's path: results that arrived are written, claims withdrawn, the parent run
KILLED, exit status 143. :class:`Deferred` holds either signal back while bookkeeping that
must not be cut in half runs: a claim being created and registered (else a RUNNING child run
no one withdraws), the writers draining and the parent run closing.
"""

from __future__ import annotations

import signal
import threading


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, SLURM's ``scancel`` / time limit, Kubernetes): the sweep stops as on
    Ctrl-C — results that arrived are written, claims withdrawn, the parent run KILLED."""


def _on_sigterm(signum: int, frame: object) -> None:
    # once: a second SIGTERM during the cleanup does not cut it short (SIGKILL still does)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Terminated


class Deferred:
    """SIGINT / SIGTERM held back while the sweep's bookkeeping closes (``with Deferred() as d``):
    an interrupt that lands while the writers drain, the claims are withdrawn and the parent run
    is closed would leave them half done (the parent RUNNING). ``d.signum`` is the signal that
    came, if any; the caller raises it once the bookkeeping is complete."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._saved: dict[int, object] = {}

    def _hold(self, signum: int, frame: object) -> None:
        self.signum = self.signum or signum

    def __enter__(self) -> Deferred:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._saved[sig] = signal.signal(sig, self._hold)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._saved.items():
            signal.signal(sig, handler)

    def status(self, status: str) -> str:
        """The parent run's status: KILLED when an interrupt came before it was written."""
        return "KILLED" if self.signum is not None else status

    def reraise(self) -> None:
        """Raise the interrupt that was held back (Terminated for SIGTERM), if one came."""
        if self.signum == signal.SIGTERM:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)  # as _on_sigterm: once
            raise Terminated
        if self.signum is not None:
            raise KeyboardInterrupt


def handle_sigterm() -> None:
    """Make SIGTERM raise :class:`Terminated` (a KeyboardInterrupt) in the main thread."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_sigterm)
