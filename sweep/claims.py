"""One driver's view of the other drivers' claims on trial keys: the reading half of the claims
protocol (docs/architecture.md, "Claims"). :class:`sweep.tracking.Tracker` makes the claims and
writes the results; :class:`ClaimView` polls the store for the others' claims, FINISHED runs and
live parents, and says which keys another driver owns and which claims were left by drivers
that are gone. It writes nothing; it reads through ``runs(filter_string, deleted)``.

A driver is live while its parent run is RUNNING and: on this host, its process exists (another
Tracker of this process: its sweep id is in :data:`LIVE_SWEEPS`); elsewhere, its parent's
``heartbeat`` tag is younger than ``stale_after`` s.
"""

from __future__ import annotations

import os
import random
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator

from sweep.schema import TAG_DRIVER, TAG_KIND, TAG_SWEEP_ID, TAG_TRIAL_KEY
from sweep.store import KIND_SWEEP, SWEEP_FILTER, TAG_PARENT, TRIAL_FILTER

__all__ = ["LIVE_SWEEPS", "TAG_HEARTBEAT", "ClaimView", "spread"]

TAG_HEARTBEAT = "heartbeat"  # parent run: unix time of its driver's last sign of life
LIVE_SWEEPS: set[str] = set()  # sweep ids of the Trackers alive in this process


def _driver_alive(driver: str) -> bool:
    """Whether ``host:pid`` names a live process other than this one on this host."""
    host, _, pid = driver.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _float(text: str | None, default: float) -> float:
    try:
        return float(text) if text else default
    except ValueError:
        return default


class ClaimView:
    """What one driver (sweep id ``sweep_id``) knows of the others: their live claims per key
    (``others``: key -> run_id -> (start_ms, sweep id)), the keys they finished (``done``) and
    their live parents (``parents``: sweep id -> (driver, heartbeat)). Updated by :meth:`poll`
    under ``lock`` (the Tracker's, which also guards its own claims)."""

    def __init__(
        self,
        runs: Callable[..., list],
        *,
        sweep_id: str,
        settle: float,
        stale_after: float,
        lock: threading.Lock,
    ) -> None:
        self.runs = runs
        self.sweep_id = sweep_id
        self.settle = settle
        self.stale_after = stale_after
        self.lock = lock
        self.rerun = False  # FINISHED runs from before this invocation do not count as done
        self.t0 = time.time()
        self.snapshot = self.t0  # when finished_keys read the store (start of the poll window)
        self.last_poll: float | None = None  # wall time the last completed poll started
        self.others: dict[str, dict[str, tuple[int, str]]] = {}
        self.done: set[str] = set()  # keys FINISHED by other drivers (seen in polls)
        self.parents: dict[str, tuple[str, float]] = {}
        self._poll_lock = threading.Lock()

    # ------------------------------------------------------------ liveness

    def alive(self, driver: str, sweep_id: str, beat: float) -> bool:
        host, _, pid = driver.rpartition(":")
        if host == socket.gethostname() and pid.isdigit():
            if int(pid) == os.getpid():
                return sweep_id in LIVE_SWEEPS  # another Tracker of this process
            return _driver_alive(driver)
        return time.time() - beat < self.stale_after  # another machine: its heartbeat

    def owner_alive(self, parent) -> bool:
        """Whether the driver of parent run ``parent`` (a RUNNING sweep run) is alive."""
        tags = parent.data.tags
        beat = _float(tags.get(TAG_HEARTBEAT), parent.info.start_time / 1000.0)
        return self.alive(tags.get(TAG_DRIVER, ""), tags.get(TAG_SWEEP_ID, ""), beat)

    def live(self, sweep_id: str) -> bool:
        p = self.parents.get(sweep_id)
        return p is not None and self.alive(p[0], sweep_id, p[1])

    def stale_runs(self, running: list) -> list[str]:
        """The run ids among ``running`` (RUNNING runs, parents and children) whose driver is
        gone: what ``close_stale`` marks KILLED."""
        parents = {r.info.run_id: r for r in running if r.data.tags.get(TAG_KIND) == KIND_SWEEP}
        alive = {rid for rid, r in parents.items() if self.owner_alive(r)}
        stale = []
        for r in running:
            owner = r.info.run_id if r.info.run_id in parents else r.data.tags.get(TAG_PARENT)
            if owner not in alive:
                stale.append(r.info.run_id)
        return stale

    # ------------------------------------------------------------ polls

    def poll(self, needed: float = 0.0) -> None:
        """Refresh the view of other drivers' claims, FINISHED runs and live parents, unless a
        poll that started at or after ``needed`` (wall time) already did.

        A FAILED run of another driver counts as done (``done``) for this invocation when that
        driver's invocation overlaps this one: its driver is live now, or the run started at or
        after this driver's start (less ``settle``). Concurrent drivers thus try a failing key
        once between them; a later invocation (after theirs ended) retries it."""
        with self._poll_lock:
            if self.last_poll is not None and self.last_poll >= needed:
                return
            t = time.time()
            me = f"tags.{TAG_SWEEP_ID} != '{self.sweep_id}'"
            if self.last_poll is None:
                new = self.runs(f"{TRIAL_FILTER} and {me} and attributes.status = 'RUNNING'")
                since_end = self.snapshot
            else:
                since = int((self.last_poll - self.settle) * 1000)
                new = self.runs(
                    f"{TRIAL_FILTER} and {me} and attributes.start_time >= {since}", deleted=True
                )
                since_end = self.last_poll
            ended = self.runs(
                f"{TRIAL_FILTER} and {me} and attributes.end_time >= "
                f"{int((since_end - self.settle) * 1000)}",
                deleted=True,
            )
            parents = self.runs(f"{SWEEP_FILTER} and attributes.status = 'RUNNING'")
            concurrent = set()  # sweep ids of the other live invocations
            for p in parents:
                sid = p.data.tags.get(TAG_SWEEP_ID, "")
                if sid != self.sweep_id and self.owner_alive(p):
                    concurrent.add(sid)
            failed = []  # the first poll: what they failed before this driver's first window
            if self.last_poll is None:
                for sid in sorted(concurrent):
                    failed += self.runs(
                        f"{TRIAL_FILTER} and tags.{TAG_SWEEP_ID} = '{sid}' "
                        "and attributes.status = 'FAILED'"
                    )
            with self.lock:
                self._take(
                    (*new, *ended, *failed), concurrent, since_me=(self.t0 - self.settle) * 1000
                )
                self.parents = {
                    p.data.tags.get(TAG_SWEEP_ID, ""): (
                        p.data.tags.get(TAG_DRIVER, ""),
                        _float(p.data.tags.get(TAG_HEARTBEAT), p.info.start_time / 1000.0),
                    )
                    for p in parents
                }
                self.last_poll = t

    def _take(self, runs: Iterable, concurrent: set[str], since_me: float) -> None:
        """The polled trial runs of other drivers into ``others`` and ``done``."""
        for r in runs:
            key = r.data.tags.get(TAG_TRIAL_KEY)
            if not key:
                continue
            live = r.info.lifecycle_stage == "active"
            if r.info.status == "RUNNING" and live:
                self.others.setdefault(key, {})[r.info.run_id] = (
                    int(r.info.start_time),
                    r.data.tags.get(TAG_SWEEP_ID, ""),
                )
                continue
            self.others.get(key, {}).pop(r.info.run_id, None)
            if r.info.status == "FINISHED" and live:
                if not self.rerun or r.info.start_time >= since_me:
                    self.done.add(key)
            elif r.info.status == "FAILED" and live:
                sid = r.data.tags.get(TAG_SWEEP_ID, "")
                if sid in concurrent or r.info.start_time >= since_me:
                    self.done.add(key)

    # ------------------------------------------------------------ ownership

    def settled(self, items: list) -> list:
        """Those of ``items`` (each with a ``.claim``) whose claims are settled, in order: read
        by a poll that started ``settle`` s after the claim, when every claim ordered before it
        was visible. Waits for the earliest to settle and polls for it if no poll has."""
        first = min(it.claim.start_ms for it in items) / 1000.0 + self.settle
        wait = first - time.time()
        if wait > 0:
            time.sleep(wait)
        self.poll(first)
        polled = self.last_poll or 0.0
        return [it for it in items if it.claim.start_ms / 1000.0 + self.settle <= polled]

    def blocked(self, key: str, mine) -> bool:
        """Whether another driver owns ``key``: it has a FINISHED run of it, or a live claim
        ordered before ``mine`` (a :class:`~sweep.sqlstore.Claim`; any live claim when None)."""
        if key in self.done:
            return True
        for rid, (start, sid) in self.others.get(key, {}).items():
            if mine is not None and (start, rid) > (mine.start_ms, mine.run_id):
                continue
            if self.live(sid):
                return True
        return False

    def stale(self, key: str, mine) -> list[str]:
        """Claims of ``key`` ordered before ``mine`` whose drivers are gone."""
        return [
            rid
            for rid, (start, sid) in self.others.get(key, {}).items()
            if (start, rid) < (mine.start_ms, mine.run_id) and not self.live(sid)
        ]

    def settle_group(self, items: list, get_run: Callable) -> tuple[list, list, list[str]]:
        """``(winners, losers, taken over)`` of ``items`` (each with ``.spec`` and ``.claim``,
        settled: polled ``settle`` s after the claim): a winner owns its key; a loser's key is
        owned by another driver (its run is withdrawn, its result dropped); an earlier claim
        whose driver is gone is read again (``get_run``, rare) — its driver may have finished
        it just before ending — and only one still RUNNING is taken over (marked KILLED)."""
        winners, stale = [], {}
        with self.lock:
            for it in items:
                if self.blocked(it.spec.key, it.claim):
                    continue
                winners.append(it)
                stale[id(it)] = self.stale(it.spec.key, it.claim)
        killed = []
        for it in [it for it in winners if stale[id(it)]]:
            runs = [get_run(rid) for rid in stale[id(it)]]
            if any(r.info.status == "FINISHED" for r in runs):
                winners.remove(it)
                with self.lock:
                    self.done.add(it.spec.key)
            else:
                killed += [r.info.run_id for r in runs if r.info.status == "RUNNING"]
        return winners, [it for it in items if it not in winners], killed


def spread(
    groups: Iterable, sweep_id: str, claim: Callable[[list], list], met: Callable[[], int]
) -> Iterator[list]:
    """``claim`` each batch of ``groups`` as it is taken (lazily), yielding what it won; empty
    batches (every key owned elsewhere) are left out. The walk starts at an offset derived from
    ``sweep_id`` and, when a batch shows that it met another driver (``met()``, the count of
    keys found owned elsewhere, grew), jumps to a random batch further on, so that drivers
    started together work on different keys."""
    order = deque(groups)
    if not order:
        return
    rng = random.Random(sweep_id)
    order.rotate(-(int(sweep_id, 16) % len(order)))
    while order:
        batch = order.popleft()
        before = met()
        won = claim(list(batch))
        if met() > before and len(order) > 1:
            order.rotate(-rng.randrange(len(order)))
        if won:
            yield won
