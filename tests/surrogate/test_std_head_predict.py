"""A network trained with a std head: one-pass uncertainty in predictions, its calibrated
one-member manifest, and its evaluation as a Gaussian predictive."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from tiny_model import TinyModel, TinyStdHead

from exocube.cli import main as exocube_main
from exocube.config import get_settings
from exocube.errors import ModelUnavailableError
from exocube.ml import STD_HEAD, evaluate_checkpoint, read_manifest, record_model
from exocube.surrogate import ModelChoice, Surrogate, catalogue_rows, make_ensemble


def _surrogate(db: str, model_id: int) -> Surrogate:
    return Surrogate.from_catalogue(db, choice=ModelChoice("model", str(model_id)))


def _planet(s: Surrogate, k: int = 0) -> dict[str, float]:
    model = s.models["joint"]
    return model.training_request(model.task.spec.split.train[k])


def test_std_head_prediction_carries_its_own_std(tiny_std_head: TinyStdHead) -> None:
    s = _surrogate(tiny_std_head.database_url, tiny_std_head.model_id)
    p = s.predict(_planet(s), "joint")
    assert p.has_uncertainty and p.n_members == 1 and p.uncertainty_method == STD_HEAD
    assert set(p.fields_std) == set(p.fields) and set(p.scalars_std) == set(p.scalars)
    for name, std in p.fields_std.items():
        finite = np.isfinite(p.fields[name])
        assert np.array_equal(np.isfinite(std), finite), name  # NaN below ground only
        assert (std[finite] > 0).all(), name
    assert all(v > 0 for v in p.scalars_std.values())
    meta = p.metadata()["uncertainty"]
    assert meta["method"] == STD_HEAD and "predicted standard deviation" in meta["std"]
    ds = p.to_dataset()
    assert ds.attrs["uncertainty_method"] == STD_HEAD
    assert "predicted by the network" in ds["ta_std"].attrs["long_name"]
    # scalar mode runs the scalar head alone and gives the same scalar std
    q = s.predict(_planet(s), "scalar")
    assert q.scalars_std == pytest.approx(p.scalars_std, rel=1e-5)


def test_calibrated_manifest_scales_the_std_only(tiny_std_head: TinyStdHead) -> None:
    scale = read_manifest(tiny_std_head.manifest).std_scale
    assert {"ta", "ts", "global_mean_ts"} <= set(scale) and all(v > 0 for v in scale.values())
    plain = _surrogate(tiny_std_head.database_url, tiny_std_head.model_id)
    cal = _surrogate(tiny_std_head.database_url, tiny_std_head.calibrated_id)
    assert cal.models["joint"].stacked is None  # one network, one pass
    params = _planet(plain)
    p, q = plain.predict(params, "joint"), cal.predict(params, "joint")
    np.testing.assert_array_equal(q.fields["ta"], p.fields["ta"])
    np.testing.assert_allclose(q.fields_std["ta"], p.fields_std["ta"] * scale["ta"], rtol=1e-5)
    assert q.scalars_std["global_mean_ts"] == pytest.approx(
        p.scalars_std["global_mean_ts"] * scale["global_mean_ts"], rel=1e-5)
    assert q.metadata()["uncertainty"]["std_scale"] == scale


def test_evaluation_scores_the_gaussian(tiny_std_head: TinyStdHead, tiny_model: TinyModel,
                                        tmp_path: Path) -> None:
    result = evaluate_checkpoint(tiny_std_head.manifest, tiny_std_head.store,
                                 out_dir=tmp_path / "e", with_baselines=False,
                                 database_url=tiny_model.database_url)
    m = result.metrics
    assert set(m["models"]) == {"unet", "climatology"}
    u = m["uncertainty"]
    assert u["method"] == STD_HEAD and u["n_members"] == 1
    for name, r in {**u["variables"], **u["scalars"]}.items():
        assert r["spread"] > 0 and np.isfinite(r["spread_skill"]), name
        assert r["crps"] == r["crps_gaussian"] > 0
        assert r["coverage"] == sorted(r["coverage"]) and 0 <= r["coverage"][0] <= 1
    fm = m["field_metrics"]["unet"]["ta"]
    assert {"spread_skill", "crps", "energy_score"} <= set(fm)
    assert u["variables"]["ta"]["rmse_ensemble_mean"] == pytest.approx(
        m["models"]["unet"]["fields"]["ta"]["rmse"], rel=1e-9)
    report = result.report_path.read_text()
    assert "Uncertainty: std head" in report and (tmp_path / "e" / "calibration.png").is_file()
    # on the validation runs it was calibrated on, every spread-skill ratio is 1
    val = evaluate_checkpoint(tiny_std_head.manifest, tiny_std_head.store,
                              out_dir=tmp_path / "v", with_baselines=False, split="val",
                              database_url=tiny_model.database_url)
    for name, r in {**val.metrics["uncertainty"]["variables"],
                    **val.metrics["uncertainty"]["scalars"]}.items():
        assert r["spread_skill"] == pytest.approx(1.0, rel=1e-6), name


def test_cli_predict_writes_the_std(tiny_std_head: TinyStdHead, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("EXOCUBE_DATABASE_URL", tiny_std_head.database_url)
    get_settings.cache_clear()
    s = _surrogate(tiny_std_head.database_url, tiny_std_head.calibrated_id)
    params = _planet(s)
    out = tmp_path / "p.nc"
    with pytest.raises(SystemExit) as info:
        exocube_main(["predict", *[f"--param={k}={v!r}" for k, v in params.items()],
                      "--out", str(out), "--mode", "joint", "--model",
                      str(tiny_std_head.calibrated_id)])
    assert info.value.code in (0, None)
    assert "uncertainty: std head" in capsys.readouterr().out
    with xr.open_dataset(out) as ds:
        np.testing.assert_array_equal(ds["ta_std"].values,
                                      s.predict(params, "joint").fields_std["ta"])
    get_settings.cache_clear()


def test_one_member_without_a_std_head_is_refused(tiny_model: TinyModel,
                                                  tiny_std_head: TinyStdHead,
                                                  tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailableError, match="without a std head"):
        make_ensemble(tiny_model.database_url, [1], "one", tmp_path / "one.json")
    # two std-head networks (the same checkpoint recorded twice): the mixture is not built
    db_file = tmp_path / "catalog.sqlite"
    with sqlite3.connect(tiny_std_head.database_url.removeprefix("sqlite:///")) as src, \
            sqlite3.connect(db_file) as dst:
        src.backup(dst)
    db = f"sqlite:///{db_file}"
    row = next(r for r in catalogue_rows(db) if r.id == tiny_std_head.model_id)
    again = record_model("again", row.mode, row.checkpoint_uri, row.dataset_version,
                         row.metrics, row.config, db)
    with pytest.raises(ModelUnavailableError, match="member 0 has a std head"):
        make_ensemble(db, [tiny_std_head.model_id, again], "two", tmp_path / "two.json")
    assert not list(tmp_path.glob("*.json"))
