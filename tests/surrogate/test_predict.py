"""The predict entry: modes, provenance, domain flag and refusal, compat functions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tiny_model import TINY_GRID, TinyModel

from exocube.errors import ModelUnavailableError, ParameterError
from exocube.ml.hull import ExtrapolationWarning
from exocube.ml.scalar import SCALAR_NAMES
from exocube.ml.task import SurrogateTask
from exocube.params import MODEL_INPUT_NAMES_V1, REQUIRED_NAMES
from exocube.surrogate import (
    SPECTRAL_REASON,
    Surrogate,
    default_surrogate,
    get_data_module,
    get_surrogate_model,
    predict,
)


@pytest.fixture(scope="module")
def surrogate(tiny_model: TinyModel) -> Surrogate:
    return Surrogate.from_catalogue(tiny_model.database_url, max_hull_distance=0.5)


def training_point(s: Surrogate, k: int = 0) -> dict[str, float]:
    """The parameters of the model's k-th training run (inside the hull by definition)."""
    spec = s.models["datacube"].task.spec
    return spec.params.mapping(spec.split.train[k])


def test_modes_and_provenance(surrogate: Surrogate, tiny_model: TinyModel) -> None:
    p = training_point(surrogate)
    joint = surrogate.predict(p, "joint")
    assert joint.model.checkpoint == tiny_model.checkpoint
    assert joint.dataset_version is not None and len(joint.dataset_version) > 4
    assert joint.hull_distance < 1e-3 and not joint.out_of_domain
    assert joint.fields["ta"].shape == TINY_GRID.shape
    assert joint.fields["ts"].shape == TINY_GRID.shape[1:]
    assert set(joint.scalars) == set(SCALAR_NAMES)
    scalar = surrogate.predict(p, "scalar")
    assert scalar.fields == {} and scalar.scalars.keys() == joint.scalars.keys()
    # The scalar fast path runs the same head as the full model.
    for n in SCALAR_NAMES:
        assert scalar.scalars[n] == pytest.approx(joint.scalars[n], rel=1e-5, abs=1e-5)
    cube = surrogate.predict(p, "datacube")
    assert cube.scalars == {}
    np.testing.assert_array_equal(cube.fields["ta"], joint.fields["ta"])


def test_answers_match_the_checkpoint(surrogate: Surrogate, tiny_model: TinyModel) -> None:
    p = training_point(surrogate, 1)
    ours = surrogate.predict(p, "joint")
    task = SurrogateTask.load_from_checkpoint(tiny_model.checkpoint, map_location="cpu")
    row = np.array([[ours.params[n] for n in MODEL_INPUT_NAMES_V1]])
    ref = task.predict_physical(torch.tensor(row, dtype=torch.float32),
                                torch.tensor([ours.tidally_locked]))
    np.testing.assert_allclose(ours.fields["ta"], ref["ta"][0].numpy(), rtol=1e-6)
    assert ours.scalars["global_mean_ts"] == pytest.approx(float(ref["global_mean_ts"][0]))


def test_defaults_are_reported(surrogate: Surrogate) -> None:
    p = {k: v for k, v in training_point(surrogate).items() if k in REQUIRED_NAMES}
    out = surrogate.predict(p, "scalar", allow_extrapolation=True)
    assert set(out.defaulted) == {"surface_pressure_bar", "pco2_bar", "rotation_period_days"}
    assert out.params["pco2_bar"] == pytest.approx(4e-4)


def test_far_requests_are_refused_unless_extrapolation(surrogate: Surrogate) -> None:
    p = training_point(surrogate)
    far = {**p, "radius_earth": 2.5, "insolation_earth": 3.0, "stellar_teff_k": 7000.0,
           "mass_earth": 0.1}
    with pytest.raises(ParameterError, match="allow_extrapolation") as info:
        surrogate.predict(far, "scalar")
    assert info.value.field in MODEL_INPUT_NAMES_V1
    out = surrogate.predict(far, "scalar", allow_extrapolation=True)
    assert out.out_of_domain and out.hull_distance > 0.5


def test_invalid_parameters_name_the_field(surrogate: Surrogate) -> None:
    p = {**training_point(surrogate), "radius_earth": 9.0}
    with pytest.raises(ParameterError, match=r"radius_earth=9\.0.*3\.0"):  # validity bound
        surrogate.predict(p, "datacube")


def test_predict_many_keeps_row_errors(surrogate: Surrogate) -> None:
    good = training_point(surrogate)
    rows = [good, {**good, "stellar_teff_k": float("nan")}, training_point(surrogate, 2)]
    out = surrogate.predict_many(rows, "joint")
    assert isinstance(out[1], ParameterError) and out[1].field == "stellar_teff_k"
    single = surrogate.predict(good, "joint")
    np.testing.assert_allclose(out[0].fields["ta"], single.fields["ta"], rtol=1e-5, atol=1e-3)


def test_spectral_is_reported_unavailable(surrogate: Surrogate) -> None:
    with pytest.raises(ModelUnavailableError, match="no spectral surrogate"):
        surrogate.predict(training_point(surrogate), "spectral")
    status = surrogate.status()
    assert status["spectral"] == {"available": False, "model_id": None, "model_name": None,
                                  "dataset_version": None, "reason": SPECTRAL_REASON,
                                  "selected_by": None}
    assert all(status[m]["available"] for m in ("scalar", "datacube", "joint"))


def test_empty_catalogue_reports_why(sqlite_url: str) -> None:
    s = Surrogate.from_catalogue(sqlite_url)
    with pytest.raises(ModelUnavailableError, match="has no trained models"):
        s.predict({}, "datacube")


def test_module_level_entry_and_compat(tiny_model: TinyModel) -> None:
    default_surrogate.cache_clear()
    cfg = {"database_url": tiny_model.database_url}
    try:
        task = get_surrogate_model("datacube", cfg)
        assert isinstance(task, SurrogateTask)
        dm = get_data_module("joint", cfg)
        assert dm.spec.split.as_dict() == task.spec.split.as_dict()
        assert dm.spec.version == task.spec.version
        with pytest.raises(ModelUnavailableError, match="spectral"):
            get_data_module("spectral", cfg)
        s = default_surrogate(tiny_model.database_url)
        out = predict(training_point(s), "scalar", database_url=tiny_model.database_url)
        assert out.model.id == s.models["scalar"].info.id
    finally:
        default_surrogate.cache_clear()


def test_no_extrapolation_warning_leaks(surrogate: Surrogate) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", ExtrapolationWarning)
        surrogate.predict(training_point(surrogate), "datacube")


def test_newest_loadable_model_is_used(tiny_model: TinyModel, sqlite_url: str) -> None:
    from exocube.catalog import upgrade
    from exocube.ml.record import record_model

    upgrade(sqlite_url)
    good = record_model("good", "datacube", tiny_model.checkpoint, "v-good", {}, {},
                        database_url=sqlite_url)
    record_model("gone", "datacube", "/nonexistent/best.ckpt", "v-gone", {}, {},
                 database_url=sqlite_url)
    s = Surrogate.from_catalogue(sqlite_url)
    assert {m.info.id for m in s.models.values()} == {good}
    assert s.models["joint"].info.dataset_version == "v-good"
    upgrade_only = f"{sqlite_url}-other"
    upgrade(upgrade_only)
    record_model("gone", "datacube", "/nonexistent/best.ckpt", None, {}, {},
                 database_url=upgrade_only)
    with pytest.raises(ModelUnavailableError, match="checkpoint file is missing"):
        Surrogate.from_catalogue(upgrade_only).model_for("datacube")


def test_models_load_from_sqlite_and_postgresql(tiny_model: TinyModel, catalog_url: str) -> None:
    from exocube.ml.record import record_model

    mid = record_model("tiny", "datacube", tiny_model.checkpoint, "v1", {"val/loss": 0.5},
                       {"depth": 1}, database_url=catalog_url)
    s = Surrogate.from_catalogue()  # catalog_url is the settings' database here
    assert s.models["datacube"].info.id == mid
    assert s.models["datacube"].info.metrics == {"val/loss": 0.5}
    assert s.status()["scalar"]["available"] is True


def test_combination_outside_the_hull_names_the_distance(tiny_model: TinyModel) -> None:
    """Every parameter inside its training range (the per-parameter median of the training
    runs), yet off the 8-dimensional hull of 9 runs in 12 dimensions."""
    strict = Surrogate.from_catalogue(tiny_model.database_url, max_hull_distance=0.1)
    table = strict.models["scalar"].task.spec.params
    train, _ = strict.models["scalar"].task.spec.training_params()
    median = np.median(train, axis=0)
    p = dict(zip(table.names, median, strict=True))
    with pytest.raises(ParameterError, match="their combination does not") as info:
        strict.predict(p, "scalar")
    out = strict.predict(p, "scalar", allow_extrapolation=True)
    assert info.value.field == "hull_distance"
    assert info.value.value == pytest.approx(out.hull_distance, abs=1e-4)
    assert out.hull_distance > 0.1 and out.out_of_domain
