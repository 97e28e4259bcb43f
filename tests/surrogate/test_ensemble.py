"""Deep ensembles: recorded, loaded, predicting mean and std; broken members; evaluation."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from tiny_model import TinyEnsemble, TinyModel

from exocube.catalog import upgrade
from exocube.cli import main as exocube_main
from exocube.config import get_settings
from exocube.errors import ModelUnavailableError, ParameterError
from exocube.ml import evaluate_checkpoint, read_manifest, record_model
from exocube.ml.uncertainty import COVERAGE_LEVELS
from exocube.surrogate import ModelChoice, Surrogate, catalogue_rows, make_ensemble


def _surrogate(db: str, model_id: int) -> Surrogate:
    return Surrogate.from_catalogue(db, choice=ModelChoice("model", str(model_id)))


def _planet(s: Surrogate, k: int = 0) -> dict[str, float]:
    spec = s.models["joint"].task.spec
    return spec.params.mapping(spec.split.train[k])


def test_ensemble_prediction_is_members_mean_and_numpy_std(tiny_ensemble: TinyEnsemble
                                                           ) -> None:
    ens = _surrogate(tiny_ensemble.database_url, tiny_ensemble.ensemble_id)
    params = _planet(ens)
    p = ens.predict(params, "joint")
    singles = [_surrogate(tiny_ensemble.database_url, i).predict(params, "joint")
               for i in tiny_ensemble.member_ids]
    assert p.n_members == 3 and p.model.members == tiny_ensemble.member_ids
    assert set(p.fields_std) == set(p.fields) and set(p.scalars_std) == set(p.scalars)
    for name in p.fields:
        stack = np.stack([q.fields[name] for q in singles]).astype(np.float64)
        np.testing.assert_allclose(p.fields[name], stack.mean(axis=0), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(p.fields_std[name], np.std(stack, axis=0, ddof=1),
                                   rtol=1e-4, atol=1e-6)
        assert (np.nanmax(p.fields_std[name]) > 0), name  # the seeds differ
    for name in p.scalars:
        values = [q.scalars[name] for q in singles]
        assert p.scalars_std[name] == pytest.approx(np.std(values, ddof=1), rel=1e-4)
    # a single model's prediction has no std fields
    assert all(not q.fields_std and not q.scalars_std and not q.has_uncertainty
               for q in singles)
    assert not any(v.endswith("_std") for v in singles[0].to_dataset().data_vars)
    ds = p.to_dataset()
    assert ds["ta_std"].attrs["units"] == "K" and ds["ta_std"].dims == ("plev", "lat", "lon")
    assert ds.attrs["ensemble_members"] == 3
    assert p.metadata()["uncertainty"]["n_members"] == 3


def test_scalar_mode_of_an_ensemble_has_scalar_std(tiny_ensemble: TinyEnsemble) -> None:
    ens = _surrogate(tiny_ensemble.database_url, tiny_ensemble.ensemble_id)
    p = ens.predict(_planet(ens, 1), "scalar")
    assert not p.fields and not p.fields_std
    assert set(p.scalars_std) == set(p.scalars) and all(v >= 0 for v in p.scalars_std.values())


def _copied_ensemble(tiny_ensemble: TinyEnsemble, tmp_path: Path) -> tuple[str, int, list[Path]]:
    """An ensemble of copies of the tiny members in a fresh catalogue under ``tmp_path``."""
    db = f"sqlite:///{tmp_path / 'catalog.sqlite'}"
    upgrade(db)
    manifest = read_manifest(tiny_ensemble.manifest)
    copies, ids = [], []
    for i, m in enumerate(manifest.members):
        copy = tmp_path / f"member{i}.ckpt"
        shutil.copyfile(m.checkpoint, copy)
        copies.append(copy)
        ids.append(record_model(f"member{i}", "datacube", str(copy), None, {"val/loss": i},
                                {}, db))
    ens_id = make_ensemble(db, ids, "copied", tmp_path / "copied.json")
    return db, ens_id, copies


def test_missing_or_corrupt_member_is_a_clear_error(tiny_ensemble: TinyEnsemble,
                                                    tmp_path: Path) -> None:
    db, ens_id, copies = _copied_ensemble(tiny_ensemble, tmp_path)
    row = next(r for r in catalogue_rows(db) if r.id == ens_id)
    assert row.metrics == {"val/loss": pytest.approx(1.0)}  # the members' mean
    assert _surrogate(db, ens_id).models["joint"].members  # loads while intact
    good = copies[1].read_bytes()
    copies[1].write_bytes(good[:1000])  # truncated
    with pytest.raises(ModelUnavailableError, match=r"member 1 .*SHA-256 mismatch"):
        _surrogate(db, ens_id)
    copies[1].write_bytes(good)
    copies[2].unlink()
    with pytest.raises(ModelUnavailableError,
                       match=r"ensemble member 2 .*checkpoint file is missing") as info:
        _surrogate(db, ens_id)
    assert str(tmp_path) not in str(info.value)  # no server paths (HTTP clients see these)
    # by default the newest usable model answers: not the broken ensemble, nor member 2
    s = Surrogate.from_catalogue(db)
    assert s.models["joint"].info.name == "member1" and not s.models["joint"].members


def test_make_ensemble_refuses_bad_groups(tiny_ensemble: TinyEnsemble, tmp_path: Path) -> None:
    db = tiny_ensemble.database_url
    first = tiny_ensemble.member_ids[0]
    with pytest.raises(ModelUnavailableError, match="one member without a std head"):
        make_ensemble(db, [first], "one", tmp_path / "a.json")
    with pytest.raises(ParameterError, match="distinct model ids"):
        make_ensemble(db, [first, first], "twice", tmp_path / "b.json")
    with pytest.raises(ModelUnavailableError, match="no catalogue model has id 999"):
        make_ensemble(db, [first, 999], "unknown", tmp_path / "c.json")
    with pytest.raises(ParameterError, match="not an ensemble"):
        make_ensemble(db, [first, tiny_ensemble.ensemble_id], "nested", tmp_path / "d.json")
    assert not list(tmp_path.glob("*.json"))


def test_cli_predict_writes_std_fields(tiny_ensemble: TinyEnsemble, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("EXOCUBE_DATABASE_URL", tiny_ensemble.database_url)
    get_settings.cache_clear()
    ens = _surrogate(tiny_ensemble.database_url, tiny_ensemble.ensemble_id)
    params = _planet(ens)
    out = tmp_path / "ens.nc"
    with pytest.raises(SystemExit) as info:
        exocube_main(["predict", *[f"--param={k}={v!r}" for k, v in params.items()],
                      "--out", str(out), "--mode", "joint", "--model",
                      str(tiny_ensemble.ensemble_id)])
    assert info.value.code in (0, None)
    text = capsys.readouterr().out
    assert "deep ensemble of 3 members" in text and "+-" in text
    expected = ens.predict(params, "joint")
    with xr.open_dataset(out) as ds:
        for name in ("ta", "hus", "ts", "global_mean_ts"):
            assert f"{name}_std" in ds.data_vars
        np.testing.assert_array_equal(ds["ta_std"].values, expected.fields_std["ta"])
        assert float(ds["global_mean_ts_std"]) == pytest.approx(
            expected.scalars_std["global_mean_ts"])
    get_settings.cache_clear()


def test_evaluate_an_ensemble(tiny_ensemble: TinyEnsemble, tiny_model: TinyModel,
                              tmp_path: Path) -> None:
    out = tmp_path / "eval"
    result = evaluate_checkpoint(tiny_ensemble.manifest, tiny_ensemble.store, out_dir=out,
                                 with_baselines=False, database_url=tiny_model.database_url)
    m = json.loads(result.json_path.read_text())
    assert set(m["models"]) == {"unet", "unet_member_0", "climatology"}
    u = m["uncertainty"]
    assert u["n_members"] == 3 and u["coverage_levels"] == list(COVERAGE_LEVELS)
    for name, r in {**u["variables"], **u["scalars"]}.items():
        assert r["spread"] > 0 and np.isfinite(r["spread_skill"]), name
        assert r["crps"] > 0 and r["crps_gaussian"] > 0
        assert all(0 <= c <= 1 for c in r["coverage"]) and r["coverage"] == sorted(
            r["coverage"])
    fm = m["field_metrics"]
    assert "spread_skill" in fm["unet"]["ta"] and "spread_skill" not in fm["climatology"]["ta"]
    for name in fm:
        assert fm[name]["ta"]["rmse_per_run_mean"] > 0
    # the ensemble mean's RMSE in the uncertainty table is the unet's overall RMSE
    assert u["variables"]["ta"]["rmse_ensemble_mean"] == pytest.approx(
        m["models"]["unet"]["fields"]["ta"]["rmse"], rel=1e-9)
    report = result.report_path.read_text()
    assert "Uncertainty: deep ensemble of 3 members" in report
    assert "calibration.png" in report and (out / "calibration.png").is_file()
    assert "Per-run lat-weighted RMSE" in report


def test_calibrated_ensemble_scales_std_to_spread_skill_one_on_val(
        tiny_ensemble: TinyEnsemble, tiny_model: TinyModel, tmp_path: Path) -> None:
    manifest = tmp_path / "calibrated.json"
    ens_id = make_ensemble(tiny_ensemble.database_url, list(tiny_ensemble.member_ids), "cal",
                           manifest, calibrate=True, store_database_url=tiny_model.database_url)
    scale = read_manifest(manifest).std_scale
    assert set(scale) == {"ta", "ua", "va", "hus", "zg", "ps", "ts", "global_mean_ts",
                          "day_night_contrast", "habitable_fraction"}
    assert all(v > 0 for v in scale.values())
    plain = _surrogate(tiny_ensemble.database_url, tiny_ensemble.ensemble_id)
    cal = _surrogate(tiny_ensemble.database_url, ens_id)
    params = _planet(plain)
    p, q = plain.predict(params, "joint"), cal.predict(params, "joint")
    np.testing.assert_array_equal(q.fields["ta"], p.fields["ta"])  # the mean is unchanged
    np.testing.assert_allclose(q.fields_std["ta"], p.fields_std["ta"] * scale["ta"], rtol=1e-5)
    assert q.scalars_std["global_mean_ts"] == pytest.approx(
        p.scalars_std["global_mean_ts"] * scale["global_mean_ts"], rel=1e-5)
    assert q.metadata()["uncertainty"]["std_scale"] == scale
    # scored on the runs it was fitted on, every spread-skill ratio is 1
    result = evaluate_checkpoint(str(manifest), tiny_ensemble.store, out_dir=tmp_path / "e",
                                 with_baselines=False, split="val",
                                 database_url=tiny_model.database_url)
    u = result.metrics["uncertainty"]
    for name, r in {**u["variables"], **u["scalars"]}.items():
        assert r["spread_skill"] == pytest.approx(1.0, rel=1e-6), name
