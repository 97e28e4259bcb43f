"""Batch predictions over the real NASA Exoplanet Archive snapshot."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from tiny_model import CATALOGUE_CSV, TinyEnsemble, TinyModel

from exocube.errors import InputDataError
from exocube.surrogate import ModelChoice, Surrogate
from exocube.surrogate.planets import predict_catalogue

N_ROWS = 5766


@pytest.fixture(scope="module")
def surrogate(tiny_model: TinyModel) -> Surrogate:
    return Surrogate.from_catalogue(tiny_model.database_url, max_hull_distance=0.5)


@pytest.fixture(scope="module")
def extrapolated(surrogate: Surrogate, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("batch")
    return predict_catalogue(CATALOGUE_CSV, out, surrogate, mode="joint",
                             allow_extrapolation=True), out


def test_real_catalogue_counts_and_reasons(extrapolated) -> None:
    summary, out = extrapolated
    assert summary.n_rows == N_ROWS
    assert len(summary.predicted) + len(summary.skipped) == N_ROWS
    assert set(summary.predicted).isdisjoint(summary.skipped)
    assert {"TRAPPIST-1 e", "LHS 1140 b", "TOI-700 d"} <= set(summary.predicted)
    assert summary.skipped["Proxima Cen b"] == (
        "missing value: st_met (stellar_metallicity_dex)")
    assert set(summary.reason_counts) == {"missing value", "out of domain"}
    status = pd.read_csv(out / "summary.csv", keep_default_na=False)
    assert len(status) == N_ROWS
    assert (status["status"] == "skipped").sum() == len(summary.skipped)
    assert (status.loc[status.status == "skipped", "reason"] != "").all()


def test_real_catalogue_outputs_round_trip(extrapolated, surrogate: Surrogate) -> None:
    summary, out = extrapolated
    scal = pd.read_csv(out / "scalars.csv")
    assert list(scal["pl_name"]) == summary.predicted
    assert scal["out_of_domain"].all()  # a 12-run model: every real planet is outside its hull
    assert (scal["defaulted"] == "surface_pressure_bar;pco2_bar;rotation_period_days").all()
    row = scal.set_index("pl_name").loc["TRAPPIST-1 e"]
    assert row["radius_earth"] == 0.92 and row["stellar_teff_k"] == 2566.0
    with xr.open_dataset(out / "predictions.nc") as ds:
        assert ds.sizes["planet"] == len(summary.predicted)
        assert ds["ta"].dims == ("planet", "plev", "lat", "lon")
        one = ds.sel(planet="TRAPPIST-1 e")
        direct = surrogate.predict({k: float(one[k]) for k in
                                    ("radius_earth", "mass_earth", "orbital_period_days",
                                     "insolation_earth", "stellar_teff_k", "stellar_logg_cgs",
                                     "stellar_metallicity_dex", "host_mass_msun")},
                                   "joint", allow_extrapolation=True)
        np.testing.assert_allclose(one["ta"].values, direct.fields["ta"], rtol=1e-5, atol=1e-2)
        assert float(one["global_mean_ts"]) == pytest.approx(row["global_mean_ts"], rel=1e-5)
        assert ds.attrs["model_id"] == direct.model.id
        assert not [v for v in ds.data_vars if str(v).endswith("_std")]  # a single model
        assert "uncertainty_method" not in ds.attrs
    assert not [c for c in scal.columns if c.endswith("_std")]
    assert not list(out.glob("*.tmp"))


def test_far_planets_are_skipped_without_extrapolation(surrogate: Surrogate,
                                                       tmp_path: Path) -> None:
    summary = predict_catalogue(CATALOGUE_CSV, tmp_path, surrogate, mode="scalar")
    assert len(summary.predicted) + len(summary.skipped) == N_ROWS
    assert summary.reason_counts["outside the training data"] >= 90
    assert "allow_extrapolation" in summary.skipped["TRAPPIST-1 e"]


def test_rows_with_bad_values_are_skipped_not_invented(surrogate: Surrogate,
                                                       tmp_path: Path) -> None:
    src = pd.read_csv(CATALOGUE_CSV, comment="#", low_memory=False)
    rows = src[src.pl_name.isin(["TRAPPIST-1 e", "LHS 1140 b"])].copy()
    rows["st_teff"] = rows["st_teff"].astype(object)
    rows.loc[rows.pl_name == "LHS 1140 b", "st_teff"] = "n/a"
    path = tmp_path / "two.csv"
    rows.to_csv(path, index=False)
    summary = predict_catalogue(path, tmp_path / "out", surrogate, mode="scalar",
                                allow_extrapolation=True)
    assert summary.predicted == ["TRAPPIST-1 e"]
    assert summary.skipped == {"LHS 1140 b": "missing value: st_teff (stellar_teff_k)"}


def test_wrong_table_is_an_input_error(surrogate: Surrogate, tmp_path: Path) -> None:
    path = tmp_path / "other.csv"
    path.write_text("pl_name,pl_rade\nX,1.0\n")
    with pytest.raises(InputDataError, match="lacks the columns"):
        predict_catalogue(path, tmp_path / "out", surrogate)


def test_ensemble_batch_writes_std_columns_and_variables(tiny_ensemble: TinyEnsemble,
                                                         tmp_path: Path) -> None:
    src = pd.read_csv(CATALOGUE_CSV, comment="#", low_memory=False)
    names = ["TRAPPIST-1 e", "LHS 1140 b", "TOI-700 d"]
    path = tmp_path / "three.csv"
    src[src.pl_name.isin(names)].to_csv(path, index=False)
    ens = Surrogate.from_catalogue(tiny_ensemble.database_url,
                                   choice=ModelChoice("model", str(tiny_ensemble.ensemble_id)))
    summary = predict_catalogue(path, tmp_path / "out", ens, mode="joint",
                                allow_extrapolation=True)
    assert sorted(summary.predicted) == sorted(names)
    scal = pd.read_csv(tmp_path / "out" / "scalars.csv").set_index("pl_name")
    with xr.open_dataset(tmp_path / "out" / "predictions.nc") as ds:
        assert ds.attrs["ensemble_members"] == 3
        for name in names:
            row, one = scal.loc[name], ds.sel(planet=name)
            params = {k: float(row[k]) for k in ("radius_earth", "mass_earth",
                                                 "orbital_period_days", "insolation_earth",
                                                 "stellar_teff_k", "stellar_logg_cgs",
                                                 "stellar_metallicity_dex", "host_mass_msun")}
            direct = ens.predict(params, "joint", allow_extrapolation=True)
            for s, std in direct.scalars_std.items():
                assert std > 0 and row[s + "_std"] == pytest.approx(std, rel=1e-4), s
                assert float(one[s + "_std"]) == pytest.approx(std, rel=1e-4), s
            for f, std in direct.fields_std.items():
                assert one[f + "_std"].dims == one[f].dims, f
                scale = float(np.nanmax(np.abs(direct.fields[f])))  # float32 round-off
                np.testing.assert_allclose(one[f + "_std"].values, std, rtol=1e-4,
                                           atol=1e-6 * scale, equal_nan=True, err_msg=f)
                assert np.nanmax(one[f + "_std"].values) > 0, f
