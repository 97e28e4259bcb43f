"""``exocube predict`` for one planet and for the real catalogue."""

from __future__ import annotations

from pathlib import Path

import pytest
import xarray as xr
from tiny_model import CATALOGUE_CSV, TinyModel

from exocube.cli import main as exocube_main
from exocube.config import get_settings
from exocube.errors import InputDataError
from exocube.surrogate import Surrogate


@pytest.fixture
def use_tiny_catalogue(tiny_model: TinyModel, monkeypatch: pytest.MonkeyPatch) -> TinyModel:
    monkeypatch.setenv("EXOCUBE_DATABASE_URL", tiny_model.database_url)
    get_settings.cache_clear()
    return tiny_model


def run(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as info:
        exocube_main(argv)
    return int(info.value.code or 0)


def test_predict_one_planet_writes_netcdf(use_tiny_catalogue: TinyModel, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    s = Surrogate.from_catalogue(use_tiny_catalogue.database_url)
    spec = s.models["joint"].task.spec
    values = spec.params.mapping(spec.split.train[0])
    args = [f"--param={k}={v!r}" for k, v in values.items()]
    args[2] = f"--param=orbital_period={values['orbital_period_days']!r}"  # legacy name
    out = tmp_path / "cube.nc"
    assert run(["predict", *args, "--out", str(out), "--mode", "joint"]) == 0
    text = capsys.readouterr().out
    assert "out of domain: False" in text and "global_mean_ts" in text
    with xr.open_dataset(out) as ds:
        expected = s.predict(values, "joint")
        assert ds.attrs["model_id"] == expected.model.id
        assert float(ds["global_mean_ts"]) == pytest.approx(expected.scalars["global_mean_ts"])
        assert ds["ta"].shape == expected.fields["ta"].shape


def test_predict_reports_unavailable_mode(use_tiny_catalogue: TinyModel, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    code = run(["predict", "--param", "radius_earth=1", "--out", str(tmp_path / "x.nc"),
                "--mode", "spectral"])
    assert code == 1
    assert "no spectral surrogate exists" in capsys.readouterr().err.replace("\n", " ")
    assert not (tmp_path / "x.nc").exists()


def test_predict_catalogue_prints_counts_and_reasons(use_tiny_catalogue: TinyModel,
                                                     tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    code = run(["predict", "--catalog", str(CATALOGUE_CSV), "--out", str(tmp_path / "out"),
                "--mode", "scalar", "--allow-extrapolation", "--show", "TRAPPIST-1 e",
                "--show", "Proxima Cen b"])
    assert code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "5766 planets: 2570 predicted, 3196 skipped" in text  # inside the validity bounds
    assert "skipped, missing value:" in text and "skipped, out of domain:" in text
    assert "Proxima Cen b" in text and "st_met" in text
    assert (tmp_path / "out" / "scalars.csv").is_file()


def test_demo_planets_step(use_tiny_catalogue: TinyModel, tmp_path: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    from exocube.cli.serve import PSCOMPPARS, demo_planets

    assert PSCOMPPARS.resolve() == CATALOGUE_CSV.resolve()
    demo_planets(tmp_path / "planets")
    lines = capsys.readouterr().out.splitlines()
    named = {ln.split(":", 1)[0]: ln for ln in lines if ln.startswith(("TRAPPIST", "LHS",
                                                                       "TOI", "Proxima"))}
    assert "global mean Ts" in named["TRAPPIST-1 e"] and "out of domain True" in named["TOI-700 d"]
    assert "skipped (missing value: st_met" in named["Proxima Cen b"]
    missing = tmp_path / "absent.csv"  # the shipped table is always there; another must exist
    with pytest.raises(InputDataError, match=r"cannot read the planet table .*absent\.csv"):
        demo_planets(tmp_path / "p2", catalog=missing)
