"""Evaluation: metrics with analytic answers, baselines, the report, bad checkpoints."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from ml_store import make_store, write_run_files
from typer.testing import CliRunner

from exocube.cli import app
from exocube.errors import StoreError
from exocube.grid import Grid
from exocube.ml.baselines import PCARegression
from exocube.ml.evaluate import evaluate_checkpoint
from exocube.ml.scores import field_scores


def test_field_scores_analytic() -> None:
    rng = np.random.default_rng(0)
    lat = np.array([-45.0, 0.0, 45.0])
    truth = rng.normal(size=(4, 2, 3, 5))
    clim = np.zeros((2, 3, 5))
    mask = np.ones(truth.shape, bool)
    s = field_scores(truth + 1.5, truth, mask, clim, lat)
    assert s.rmse == pytest.approx(1.5) and s.bias == pytest.approx(1.5)
    perfect = field_scores(truth, truth, mask, clim, lat)
    np.testing.assert_allclose(perfect.per_level.acc, 1.0)
    assert perfect.rmse == 0.0
    anti = field_scores(-truth, truth, mask, clim, lat)
    np.testing.assert_allclose(anti.per_level.acc, -1.0)
    bad = truth.copy()
    bad[~mask | (np.arange(5) == 0)] = 1e6  # huge errors only where masked out
    mask[..., 0] = False
    assert field_scores(bad, truth, mask, clim, lat).rmse == 0.0


def test_pca_regression_rejects_unknown_regressor() -> None:
    with pytest.raises(ValueError, match="ridge"):
        PCARegression("forest")


def test_evaluate_writes_metrics_report_and_figures(trained: Path, tiny_store: str,
                                                     store_db: str, tmp_path: Path) -> None:
    ckpt = sorted(trained.rglob("best-*.ckpt"))[0]
    out = tmp_path / "eval"
    result = evaluate_checkpoint(str(ckpt), tiny_store, out_dir=out, map_levels=[50000.0],
                                 database_url=store_db)
    m = json.loads(result.json_path.read_text())
    assert set(m["models"]) == {"unet", "climatology", "pca_ridge", "pca_gp"}
    assert m["n_runs"] == 2 and m["split"] == "test"
    for name, scores in m["models"].items():
        assert np.isfinite(scores["fields"]["ta"]["rmse"]), name
        assert set(scores["physics"]) == set(m["truth"]["physics"])
    # the store's fields are hydrostatic and sub-saturated: the truth's residuals say so
    assert m["truth"]["physics"]["hydrostatic_rel_rms"] < 1e-3
    assert m["truth"]["physics"]["humidity_violation_fraction"] == 0.0
    # the climatology's anomaly correlation is 0 by construction (no anomaly predicted)
    acc = [a for a in m["models"]["climatology"]["fields"]["ta"]["per_level"]["acc"] if a]
    assert all(a == 0 for a in acc) or not acc
    # the per-run metrics sit beside the old keys; a single checkpoint has no uncertainty
    assert "uncertainty" not in m and set(m["field_metrics"]) == set(m["models"])
    unet = m["field_metrics"]["unet"]["ta"]
    assert "spread_skill" not in unet and unet["rmse_per_run_mean"] > 0
    assert unet["energy_score"] > 0 and unet["crps"] > 0
    report = result.report_path.read_text()
    assert "Physics residuals" in report and "| truth |" in report
    assert "Per-run lat-weighted RMSE" in report and "Uncertainty" not in report
    assert not (out / "calibration.png").exists()
    for fig in ("zonal_mean_ta.png", "parity_scalars.png", "training_curves.png",
                "rmse_by_level_ta.png"):
        assert (out / fig).is_file() and fig in report
    assert list(out.glob("map_ta_*Pa.png"))


@pytest.mark.slow  # loads, collects and plots again: about 20 s on 2 busy cores
def test_evaluate_cli(trained: Path, tiny_store: str, store_db: str, tmp_path: Path,
                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXOCUBE_DATABASE_URL", store_db)
    from exocube.config import get_settings
    get_settings.cache_clear()
    ckpt = sorted(trained.rglob("best-*.ckpt"))[0]
    res = CliRunner().invoke(app, ["evaluate", str(ckpt), "--store", tiny_store, "--out",
                                   str(tmp_path / "e"), "--no-baselines"])
    assert res.exit_code == 0, res.output
    assert "unet: lat-weighted RMSE ta" in res.output
    assert (tmp_path / "e" / "report.md").is_file()


def test_checkpoint_from_a_different_grid_is_refused(trained: Path, tmp_path: Path,
                                                     dask_client, store_db: str) -> None:
    grid = Grid.with_levels(nlat=4, nlon=8, nlev=6, p_bottom=2.0e5, p_top=1.0e3)
    files = write_run_files(tmp_path / "gcm", 4, grid=grid)
    other = make_store(str(tmp_path / "coarse.zarr"), files, dask_client, store_db)
    ckpt = sorted(trained.rglob("best-*.ckpt"))[0]
    with pytest.raises(StoreError, match="grid"):
        evaluate_checkpoint(str(ckpt), other, out_dir=tmp_path / "eval", database_url=store_db)
