"""A model on the climate drivers (inputs v2, hard constraints) behind the request paths.

It is trained through ``exocube train fit`` on the tiny model's store, recorded in a
copy of that catalogue (the session's tiny catalogue keeps its one model):
``tiny_model.build_tiny_v2_catalogue``, shared with the service tests.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from tiny_model import CATALOGUE_CSV, TinyModel, build_tiny_v2_catalogue

from exocube.errors import ParameterError
from exocube.params import MODEL_INPUT_NAMES_V2
from exocube.serve.openapi import nearest_to_earth
from exocube.surrogate import ModelChoice, Surrogate, check_request
from exocube.surrogate.planets import predict_catalogue

STAR_ONLY = ("stellar_logg_cgs", "stellar_metallicity_dex", "host_mass_msun")


@pytest.fixture(scope="module")
def v2_catalogue(tiny_model: TinyModel, tmp_path_factory: pytest.TempPathFactory) -> str:
    return build_tiny_v2_catalogue(tmp_path_factory, tiny_model)


@pytest.fixture(scope="module")
def v2(v2_catalogue: str) -> Surrogate:
    return Surrogate.from_catalogue(v2_catalogue, max_hull_distance=0.5,
                                    choice=ModelChoice("newest"))


@pytest.fixture(scope="module")
def v1(tiny_model: TinyModel) -> Surrogate:
    return Surrogate.from_catalogue(tiny_model.database_url, max_hull_distance=0.5)


def a_request(s: Surrogate) -> dict[str, float]:
    """A full request (every field) for a training planet of the v2 model."""
    return {**nearest_to_earth(s.models["datacube"]), "stellar_logg_cgs": 4.6,
            "stellar_metallicity_dex": 0.1, "host_mass_msun": 0.6}


def test_v2_model_is_on_the_drivers(v2: Surrogate, v1: Surrogate) -> None:
    task = v2.models["datacube"].task
    assert task.spec.params.names == MODEL_INPUT_NAMES_V2
    assert task.hparams.constraints == "hard"
    assert v1.models["datacube"].task.hparams.constraints == "soft"  # old default kept


def test_star_only_fields_do_not_change_a_v2_prediction(v2: Surrogate) -> None:
    base = a_request(v2)
    ref = v2.predict(base, "joint")
    for field, value in (("host_mass_msun", 1.4), ("stellar_logg_cgs", 3.6),
                         ("stellar_metallicity_dex", -0.9)):
        other = v2.predict({**base, field: value}, "joint")
        for v in ref.fields:
            np.testing.assert_array_equal(other.fields[v], ref.fields[v], err_msg=field)
        assert other.scalars == ref.scalars
        assert other.hull_distance == ref.hull_distance
    lean = v2.predict({k: v for k, v in base.items() if k not in STAR_ONLY}, "joint")
    for v in ref.fields:
        np.testing.assert_array_equal(lean.fields[v], ref.fields[v])


def test_host_mass_does_change_a_v1_prediction(v1: Surrogate) -> None:
    """The contrast: a v1 model reads host mass, so the check above can fail."""
    spec = v1.models["datacube"].task.spec
    base = spec.params.mapping(spec.split.train[0])
    a = v1.predict(base, "datacube")
    b = v1.predict({**base, "host_mass_msun": base["host_mass_msun"] * 1.5}, "datacube",
                   allow_extrapolation=True)
    assert not np.array_equal(a.fields["ta"], b.fields["ta"])


def test_v1_model_still_requires_the_star_fields(v1: Surrogate) -> None:
    spec = v1.models["datacube"].task.spec
    base = spec.params.mapping(spec.split.train[0])
    for field in STAR_ONLY:
        with pytest.raises(ParameterError) as info:
            v1.predict({k: v for k, v in base.items() if k != field}, "datacube")
        assert info.value.field == field


def test_v2_model_still_requires_what_it_uses(v2: Surrogate) -> None:
    base = a_request(v2)
    for field in ("mass_earth", "orbital_period_days", "stellar_teff_k"):
        with pytest.raises(ParameterError) as info:
            v2.predict({k: v for k, v in base.items() if k != field}, "datacube")
        assert info.value.field == field
    with pytest.raises(ParameterError) as info:  # still validated when given
        v2.predict({**base, "stellar_metallicity_dex": 5.0}, "datacube")
    assert info.value.field == "stellar_metallicity_dex"


def test_request_example_is_inside_the_v2_model_hull(v2: Surrogate) -> None:
    model = v2.models["datacube"]
    example = nearest_to_earth(model)
    assert set(example) <= set(check_request(example, model.task.spec.params.names).params)
    assert v2.predict(example, "datacube").hull_distance < 1e-3


def test_catalogue_batch_predicts_a_planet_missing_st_met(v2: Surrogate, v1: Surrogate,
                                                          tmp_path: Path) -> None:
    src = pd.read_csv(CATALOGUE_CSV, comment="#", low_memory=False)
    rows = src[src.pl_name.isin(["Proxima Cen b", "TRAPPIST-1 e"])]
    assert rows.set_index("pl_name").loc["Proxima Cen b", "st_met"] != rows.set_index(
        "pl_name").loc["Proxima Cen b", "st_met"]  # NaN: the archive has no metallicity
    path = tmp_path / "two.csv"
    rows.to_csv(path, index=False)
    old = predict_catalogue(path, tmp_path / "v1", v1, mode="joint", allow_extrapolation=True)
    assert old.skipped == {"Proxima Cen b": "missing value: st_met (stellar_metallicity_dex)"}
    new = predict_catalogue(path, tmp_path / "v2", v2, mode="joint", allow_extrapolation=True)
    assert sorted(new.predicted) == ["Proxima Cen b", "TRAPPIST-1 e"] and not new.skipped
    with xr.open_dataset(tmp_path / "v2" / "predictions.nc") as ds:
        met = ds["stellar_metallicity_dex"]
        assert np.isnan(float(met.sel(planet="Proxima Cen b")))
        assert float(met.sel(planet="TRAPPIST-1 e")) == pytest.approx(
            float(rows.set_index("pl_name").loc["TRAPPIST-1 e", "st_met"]))
        assert np.isfinite(ds["ta"].sel(planet="Proxima Cen b")).any()
        assert "pch4_bar" in ds.attrs["defaulted_params"]
