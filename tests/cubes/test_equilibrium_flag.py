"""The ExoPlaSim driver's ``equilibrated`` flag reaches validation through the store."""

from __future__ import annotations

import json
import math
from pathlib import Path

import netCDF4
import numpy as np
import pytest
import sqlalchemy as sa

from exocube.catalog import RunQuality, session_scope
from exocube.cubes import ingest, quarantined_runs, validate_store
from exocube.cubes.schema import EQUILIBRIUM_ATTRS
from exocube.cubes.validate import NOT_EQUILIBRATED_SCORE
from exocube.errors import InputDataError

NOT_EQUILIBRATED = {"equilibrated": 0, "toa_net_flux_w_m2": 2.5,
                    "ts_drift_k_per_year": -0.25, "ts_global_mean_k": 281.0,
                    "years_evaluated": 2, "max_toa_imbalance_w_m2": 1.0,
                    "max_ts_drift_k_per_year": 0.1}
EQUILIBRATED = {**NOT_EQUILIBRATED, "equilibrated": 1, "toa_net_flux_w_m2": 0.4,
                "ts_drift_k_per_year": 0.02}


def flag(path: str, attrs: dict[str, object]) -> str:
    """Add attributes the way the driver's ``write_output`` does (ints, float64)."""
    with netCDF4.Dataset(path, "a") as ds:
        for key, value in attrs.items():
            ds.setncattr(key, np.float64(value) if isinstance(value, float) else value)
    return path


def by_run(report) -> dict:
    return {r.run_id: r for r in report.runs}


def test_not_equilibrated_run_is_flagged_and_quarantined(make_runs, store_dir, dask_client,
                                                         catalog_url) -> None:
    files = make_runs(3)
    flag(files[1], EQUILIBRATED)
    flag(files[2], NOT_EQUILIBRATED)
    ingest(files, store_dir, client=dask_client)
    for f in files:  # validation reads the store, not the source files
        Path(f).unlink()
    runs = by_run(validate_store(store_dir))
    plain, good, bad = runs["run000"], runs["run001"], runs["run002"]
    assert plain.score > 0.99 and not plain.quarantined and plain.reasons == []
    assert "equilibrated" not in plain.metrics
    assert good.score == pytest.approx(plain.score, abs=0.01) and not good.quarantined
    assert good.reasons == [] and good.metrics["equilibrated"] == 1.0
    assert bad.reasons == [
        "not equilibrated: TOA net flux 2.5 W m-2, ts drift -0.25 K/yr over the last year "
        "(thresholds |TOA| <= 1 W m-2, |drift| <= 0.1 K/yr)"]
    assert bad.score == NOT_EQUILIBRATED_SCORE and bad.quarantined
    assert bad.metrics["equilibrated"] == 0.0
    assert bad.metrics["toa_net_flux_w_m2"] == 2.5
    assert quarantined_runs(store_dir) == {"run002"}
    with session_scope(catalog_url) as session:
        row = session.scalars(sa.select(RunQuality).where(RunQuality.run_id == "run002")).one()
        assert row.quarantined and row.score == NOT_EQUILIBRATED_SCORE
        assert row.reasons == bad.reasons
    # a lower threshold keeps it (the reason stays)
    runs = by_run(validate_store(store_dir, threshold=0.4))
    assert not runs["run002"].quarantined and runs["run002"].reasons == bad.reasons
    assert quarantined_runs(store_dir) == set()


def test_one_year_run_has_unknown_drift_and_string_flags_are_read(make_runs, store_dir,
                                                                  dask_client) -> None:
    files = make_runs(2)
    flag(files[0], {**NOT_EQUILIBRATED, "ts_drift_k_per_year": math.nan, "years_evaluated": 1})
    flag(files[1], {"equilibrated": "True"})
    ingest(files, store_dir, client=dask_client)
    runs = by_run(validate_store(store_dir))
    assert runs["run000"].quarantined
    assert runs["run000"].reasons == [
        "not equilibrated: TOA net flux 2.5 W m-2, ts drift unknown over the last year "
        "(thresholds |TOA| <= 1 W m-2, |drift| <= 0.1 K/yr)"]
    assert "ts_drift_k_per_year" not in runs["run000"].metrics
    assert not runs["run001"].quarantined
    assert runs["run001"].reasons == [] and runs["run001"].metrics["equilibrated"] == 1.0


@pytest.mark.parametrize("value", ["maybe", 2])
def test_bad_flag_is_refused_naming_the_value(make_runs, store_dir, dask_client,
                                              value: object) -> None:
    path = flag(make_runs(1)[0], {"equilibrated": value})
    with pytest.raises(InputDataError, match=rf"equilibrated = '?{value}'? is not 0/1"):
        ingest([path], store_dir, client=dask_client)


def test_store_without_the_attributes_validates_as_before(make_runs, store_dir,
                                                          dask_client) -> None:
    """A store ingested before the flag was kept: summaries without it, scores unchanged."""
    files = make_runs(2)
    flag(files[1], NOT_EQUILIBRATED)
    ingest(files, store_dir, client=dask_client)
    for summary in Path(store_dir).glob("runs/*/summary.json"):
        doc = json.loads(summary.read_text())
        doc["attrs"] = {k: v for k, v in doc["attrs"].items() if k not in EQUILIBRIUM_ATTRS}
        summary.write_text(json.dumps(doc))
    runs = by_run(validate_store(store_dir))
    assert not runs["run001"].quarantined and runs["run001"].reasons == []
    assert runs["run001"].score == pytest.approx(runs["run000"].score, abs=0.01)
    assert "equilibrated" not in runs["run001"].metrics
