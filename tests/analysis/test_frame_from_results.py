"""``analysis.frame_from_results`` against ``analysis.load`` on the same trials: the ideal
trials (``synthetic.ideal``, no training) recorded by the sweep's own writer, started as a sweep
starts it (its axes: what varies), read back — the same run names (by what varies), and the same
params and metrics, typed alike. Seconds: one small SQLite store."""

from __future__ import annotations

import pandas as pd

from analysis import frame_from_results, load
from sweep.grid import varying_fields
from sweep.schema import param_types
from tests.analysis.synthetic import ideal


def test_frame_from_results_is_what_load_reads_back(tmp_path) -> None:
    from sweep.tracking import Store, Tracker

    specs, results = ideal()
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    tracker = Tracker(Store(uri=uri, artifacts=(tmp_path / "art").as_uri()), "ideal")
    tracker.start(params={"grid": "ideal", "trials": len(specs)}, axes=varying_fields(specs))
    for s, r in zip(specs, results, strict=True):
        tracker.record(s, r)
    tracker.finish("FINISHED")

    got = load("ideal", uri).set_index("trial_key").sort_index()
    built = frame_from_results(specs, results, grid="ideal").set_index("trial_key").sort_index()
    assert list(got.index) == list(built.index) and len(got) == len(specs)
    names = built["run_name"]
    assert names.nunique() == len(specs)  # named by what varies, one name per trial
    fallback = {f"{s.experiment}-{s.key[:8]}" for s in specs}  # the name when nothing varies
    assert not names.isin(fallback).any()
    pd.testing.assert_series_equal(got["run_name"], names)
    same = [c for c in built.columns if c in got.columns and c not in ("run_id", "start_time",
            "end_time", "parent_run_id", "sweep_id", "grid", "git_commit", "ray_node_id")]  # fmt: skip
    assert set(param_types()) <= set(same)
    pd.testing.assert_frame_equal(got[same], built[same], check_exact=True)
