"""``analysis.load`` against REAL MLflow stores: a ``python -m sweep +grid=smoke`` run and the
mini trials recorded by the sweep's own writer (SQLite), and a real ``mlflow server``.

What is read back is compared with what was written (the TrialSpec/TrialResult objects), not
with constants.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest

from analysis import (
    curves_from_results,
    default_tracking_uri,
    frame_from_results,
    load,
    load_curves,
    load_parents,
    load_results,
)
from sweep.schema import param_types

pytestmark = pytest.mark.slow


def _check_param_dtypes(frame: pd.DataFrame) -> None:
    for name, typ in param_types().items():
        kind = frame[name].dtype.kind
        expected = {int: "i", float: "f", bool: "b"}.get(typ)
        if expected is None:
            assert pd.api.types.is_string_dtype(frame[name]) or kind == "O", name
        else:
            assert kind == expected, (name, frame[name].dtype)


def test_smoke_sweep_counts_and_types(smoke) -> None:
    frame = load(smoke.experiment, smoke.uri, curves=True)
    assert len(frame) == len(smoke.specs)  # every trial of conf/grid/smoke.yaml, once
    _check_param_dtypes(frame)
    assert set(frame["trial_key"]) == {s.key for s in smoke.specs}
    for name in ("model.depth", "model.activation", "seed", "train.beta"):
        assert set(frame[name]) == {s.params()[name] for s in smoke.specs}, name
    assert frame["run_id"].is_unique and frame["trial_key"].is_unique
    assert set(frame["status"]) <= {"finished", "diverged", "failed"}
    assert (frame["run_status"] == "FINISHED").sum() == (frame["status"] != "failed").sum()
    for col in ("sgd_objective", "certificate", "rel_gap", "layer1.rank"):
        assert frame[col].dtype == "float64", col
    assert not any(c.startswith("curve.") for c in frame.columns)
    assert isinstance(frame["start_time"].dtype, pd.DatetimeTZDtype)
    parents = load_parents(smoke.experiment, smoke.uri)
    assert len(parents) == 1 and parents["run_status"].tolist() == ["FINISHED"]
    assert set(frame["parent_run_id"]) == set(parents["run_id"])
    curves = frame.attrs["curves"]
    assert set(curves["run_id"]) == set(frame["run_id"])
    assert curves["step"].dtype == "int64" and curves["value"].dtype == "float64"
    # every run has its objective curve from step 0 to train.steps
    for rid, row in frame.set_index("run_id").iterrows():
        obj = curves[(curves["run_id"] == rid) & (curves["curve"] == "objective")]
        assert obj["step"].iloc[0] == 0 and obj["step"].iloc[-1] == row["train.steps"]


def test_mini_store_reads_back_what_was_written(mini) -> None:
    frame = load(mini.experiment, mini.uri)
    expected = frame_from_results(mini.specs, mini.results).set_index("trial_key")
    assert len(frame) == len(mini.specs)
    assert (frame["status"] == "diverged").sum() == sum(
        r.status == "diverged" for r in mini.results
    )
    got = frame.set_index("trial_key")
    assert set(got.index) == set(expected.index)
    for key, (spec, res) in mini.by_key().items():
        row = got.loc[key]
        for name, value in spec.params().items():
            assert row[name] == value, (key, name)
        for name, value in res.metrics().items():
            assert math.isclose(row[name], value, rel_tol=0, abs_tol=0), (key, name)
        assert row["status"] == res.status
        assert row["family"] == res.family
        assert row["experiment"] == spec.experiment
    _check_param_dtypes(frame)
    for col in expected.columns.intersection(got.columns):
        if col in param_types():
            assert got[col].dtype == expected[col].dtype, col


def test_paging_returns_every_run(mini) -> None:
    small = load(mini.experiment, mini.uri, page_size=4)  # 5 pages of at most 4 runs
    full = load(mini.experiment, mini.uri)
    assert len(small) == len(full) == len(mini.specs)
    assert sorted(small["run_id"]) == sorted(full["run_id"])
    with pytest.raises(ValueError, match="page_size"):
        load(mini.experiment, mini.uri, page_size=0)
    with pytest.raises(ValueError, match="experiment"):
        load("", mini.uri)


def test_curves_and_trial_json_read_back(mini) -> None:
    frame = load(mini.experiment, mini.uri)
    key_of = dict(zip(frame["run_id"], frame["trial_key"], strict=True))
    e2 = frame[frame["experiment"] == "E2"]
    curves = load_curves(
        mini.experiment, mini.uri, run_ids=e2["run_id"], names=["norm_ratio.1", "objective"]
    )
    assert set(curves["curve"]) == {"norm_ratio.1", "objective"}
    written = curves_from_results(mini.specs, mini.results)
    written = written[written["curve"].isin({"norm_ratio.1", "objective"})]
    got = curves.assign(run_id=curves["run_id"].map(key_of))
    merged = written.merge(got, on=["run_id", "curve", "step"], suffixes=("_w", "_r"))
    assert len(merged) == len(got) > 0
    assert (merged["value_w"] == merged["value_r"]).all()

    e6 = frame[frame["experiment"] == "E6"]
    results = load_results(e6["run_id"], mini.uri)
    assert set(results) == set(e6["run_id"])
    by_key = mini.by_key()
    for rid, res in results.items():
        original = by_key[key_of[rid]][1]
        assert res.arrays["kinks"] == original.arrays["kinks"]
        assert res.arrays["f"] == original.arrays["f"]


def test_missing_experiment_and_default_uri(mini, tmp_path, monkeypatch) -> None:
    empty = load("no-such-grid", mini.uri)
    assert empty.empty and {"run_id", "status", "model.depth"} <= set(empty.columns)
    assert load_curves("no-such-grid", mini.uri).empty
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mini.uri)
    assert default_tracking_uri() == mini.uri
    assert len(load(mini.experiment)) == len(mini.specs)
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    monkeypatch.chdir(tmp_path)
    assert default_tracking_uri() == f"sqlite:///{tmp_path / 'mlruns.db'}"


def test_load_from_a_tracking_server(mlflow_server, smoke) -> None:
    over_http = load(smoke.experiment, mlflow_server, curves=True, page_size=3)
    direct = load(smoke.experiment, smoke.uri, curves=True)
    cols = [c for c in direct.columns if c not in ("start_time", "end_time")]
    a = over_http.sort_values("run_id")[cols].reset_index(drop=True)
    b = direct.sort_values("run_id")[cols].reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)
    ca, cb = over_http.attrs["curves"], direct.attrs["curves"]
    pd.testing.assert_frame_equal(ca.reset_index(drop=True), cb.reset_index(drop=True))
    res = load_results(direct["run_id"][:2], mlflow_server)
    assert len(res) == 2


def test_params_are_typed_once_and_a_later_field_reads_as_its_default() -> None:
    """Each param is one typed column under the command line's name: MLflow's strings cast
    once, in analysis.load; a run logged before a field existed (here without data.whiten and
    train.init_scale) reads as the field's default, so no reader parses or fills them again."""
    from analysis.load import _build
    from sweep.schema import TrainSpec, TrialSpec

    spec = TrialSpec(train=TrainSpec(beta=0.25))
    full = {k: str(v) for k, v in spec.params().items()}  # as MLflow returns them
    old = {k: v for k, v in full.items() if k not in ("data.whiten", "train.init_scale")}
    frame = _build([{"fixed": {}, "params": p, "metrics": {}} for p in (full, old)])
    _check_param_dtypes(frame)
    assert frame["train.beta"].tolist() == [0.25, 0.25]
    assert frame["data.whiten"].tolist() == ["auto", "auto"]
    assert frame["train.init_scale"].tolist() == [1.0, 1.0]
    assert frame["model.bias"].dtype == bool
