"""Shared fixtures: a seeded ``rng`` (pin it with DUALSWEEP_TEST_SEED) and ``assert_close``;
the optima cache off (``DUALSWEEP_CACHE``)."""

from __future__ import annotations

import os

import numpy as np
import pytest

# the suite solves every problem afresh (sweeps in subprocesses inherit this): a cached optimum
# would make "alone equals batched" and the solvers' own checks pass without solving, and the
# user's ~/.cache stays untouched. tests/sweep/test_solve_cache.py turns it on in tmp dirs.
os.environ["DUALSWEEP_CACHE"] = "off"


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> np.random.Generator:
    seed = int(os.environ.get("DUALSWEEP_TEST_SEED", "20260226"))
    print(f"[rng seed {seed} for {request.node.nodeid}]")
    return np.random.default_rng(seed)


def assert_close(actual: float, expected: float, *, rtol: float, atol: float = 0.0) -> None:
    """|actual − expected| <= atol + rtol·|expected|, with both numbers in the message."""
    err = abs(actual - expected)
    bound = atol + rtol * abs(expected)
    assert err <= bound, f"actual={actual!r} expected={expected!r} |diff|={err:.3e} > {bound:.3e}"
