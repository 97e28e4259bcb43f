"""Latin hypercube sampling and CSV parameter rows, over the generator's own ranges."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from exocube.data import PSCOMPPARS_SNAPSHOT
from exocube.errors import InputDataError, ParameterError
from exocube.gcm.generator import generate
from exocube.gcm.ranges import GENERATOR_RANGES, SAMPLED_NAMES
from exocube.gcm.sampling import latin_hypercube, read_csv_runs, sample_runs
from exocube.params import SPECS, validate_params
from exocube.planet import derive

NASA_CSV = PSCOMPPARS_SNAPSHOT
ROW = {
    "radius_earth": 1.1, "mass_earth": 1.3, "orbital_period_days": 12.0,
    "insolation_earth": 0.9, "stellar_teff_k": 3300.0, "stellar_logg_cgs": 4.9,
    "stellar_metallicity_dex": 0.1, "host_mass_msun": 0.3,
}


@pytest.mark.parametrize("n", [1, 7, 64])
def test_every_stratum_of_every_axis_is_sampled_once(n: int) -> None:
    unit = latin_hypercube(n, 5, seed=3)
    assert unit.shape == (n, 5)
    assert np.all((unit >= 0) & (unit < 1))
    for axis in range(5):
        assert sorted(np.floor(unit[:, axis] * n).astype(int)) == list(range(n))


def test_samples_cover_each_range_once_per_stratum_on_its_scale() -> None:
    n = 40
    runs = sample_runs(n, seed=11)
    for name in SAMPLED_NAMES:
        if name in ("pco2_bar", "mass_earth"):
            continue
        spec = GENERATOR_RANGES[name]
        x = np.array([r.params[name] for r in runs])
        assert np.all((x >= spec.low) & (x <= spec.high))
        if spec.log_scale:
            u = (np.log(x) - math.log(spec.low)) / (math.log(spec.high) - math.log(spec.low))
        else:
            u = (x - spec.low) / (spec.high - spec.low)
        assert sorted(np.floor(u * n).astype(int)) == list(range(n)), name


def test_co2_never_exceeds_surface_pressure() -> None:
    runs = sample_runs(200, seed=5)
    assert all(r.params["pco2_bar"] <= r.params["surface_pressure_bar"] for r in runs)
    assert all(r.params["pco2_bar"] >= GENERATOR_RANGES["pco2_bar"].low for r in runs)


def test_sampled_masses_give_plausible_densities() -> None:
    runs = sample_runs(300, seed=6)
    density = np.array([r.params["mass_earth"] / r.params["radius_earth"] ** 3 for r in runs])
    assert density.min() >= 0.25 * (1 - 1e-12) and density.max() <= 2.0 * (1 + 1e-12)
    masses = np.array([r.params["mass_earth"] for r in runs])
    spec = GENERATOR_RANGES["mass_earth"]
    assert masses.min() >= spec.low and masses.max() <= spec.high
    assert masses.max() / masses.min() > 50  # still spans most of the mass range


def test_same_seed_same_runs_and_other_seed_other_runs() -> None:
    a, b, c = sample_runs(10, 4), sample_runs(10, 4), sample_runs(10, 5)
    assert a == b
    assert a != c
    assert [r.run_id for r in a] == [f"gen-s4-n10-{i:05d}" for i in range(10)]


def test_ensembles_of_other_sizes_never_share_a_run_id() -> None:
    """The hypercube's points depend on its size: the same seed and index is another run."""
    six, three = sample_runs(6, 7), sample_runs(3, 7)
    assert six[0].params != three[0].params
    assert not {r.run_id for r in six} & {r.run_id for r in three}


def test_runs_count_must_be_positive() -> None:
    with pytest.raises(ParameterError, match="runs=0"):
        sample_runs(0, 1)


def write_csv(path: Path, rows: list[dict[str, object]]) -> Path:
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_csv_with_exocube_names_and_optional_columns(tmp_path: Path) -> None:
    rows = [{**ROW, "name": "TOI 700 d", "surface_pressure_bar": 0.5},
            {**ROW, "name": "TOI-700 e", "surface_pressure_bar": None}]
    runs = read_csv_runs(write_csv(tmp_path / "p.csv", rows))
    assert [r.run_id for r in runs] == ["TOI_700_d", "TOI-700_e"]
    assert runs[0].params["surface_pressure_bar"] == 0.5
    assert runs[1].params["surface_pressure_bar"] == SPECS["surface_pressure_bar"].default


def test_csv_without_names_uses_a_parameter_digest_and_the_row_index(tmp_path: Path) -> None:
    runs = read_csv_runs(write_csv(tmp_path / "p.csv", [ROW, ROW]))
    digest = runs[0].run_id.split("-")[1]
    assert [r.run_id for r in runs] == [f"csv-{digest}-00000", f"csv-{digest}-00001"]
    assert read_csv_runs(tmp_path / "p.csv") == runs  # a re-run gives the same ids
    other = read_csv_runs(write_csv(tmp_path / "q.csv", [{**ROW, "radius_earth": 1.2}]))
    assert other[0].run_id.startswith("csv-") and other[0].run_id != runs[0].run_id


def test_real_nasa_snapshot_rows_map_by_archive_column_names(tmp_path: Path) -> None:
    table = pd.read_csv(NASA_CSV, comment="#")
    names = ["TRAPPIST-1 e", "GJ 1002 b", "K2-18 b"]
    subset = table[table.pl_name.isin(names)]
    runs = read_csv_runs(write_csv(tmp_path / "nasa.csv", subset.to_dict("records")))
    by_id = {r.run_id: r.params for r in runs}
    trappist = subset.set_index("pl_name").loc["TRAPPIST-1 e"]
    assert by_id["TRAPPIST-1_e"]["radius_earth"] == trappist.pl_rade
    assert by_id["TRAPPIST-1_e"]["stellar_teff_k"] == trappist.st_teff
    assert by_id["TRAPPIST-1_e"]["host_mass_msun"] == trappist.st_mass


def test_real_nasa_snapshot_fails_on_the_first_bad_row_or_skips_on_request() -> None:
    with pytest.raises(ParameterError, match=r"radius_earth=12\.2.*data row 1 \(11 Com b\)"):
        read_csv_runs(NASA_CSV)
    runs = read_csv_runs(NASA_CSV, on_invalid="skip")
    assert 10 < len(runs) < 1000
    assert all(0.5 <= r.params["radius_earth"] <= 2.5 for r in runs)


@pytest.mark.parametrize(
    ("field", "value", "pattern"),
    [
        ("radius_earth", -1.0, r"radius_earth=-1\.0.*\[0\.5, 2\.5\]"),
        ("radius_earth", float("nan"), r"radius_earth=nan.*finite"),
        ("stellar_teff_k", 9000.0, r"stellar_teff_k=9000\.0.*\[2300\.0, 7000\.0\]"),
        ("mass_earth", "heavy", r"mass_earth='heavy'"),
    ],
)
def test_bad_cell_names_row_field_value_and_range(
    tmp_path: Path, field: str, value: object, pattern: str
) -> None:
    rows = [{**ROW, "name": "ok"}, {**ROW, "name": "bad one", field: value}]
    with pytest.raises(ParameterError, match=pattern) as info:
        read_csv_runs(write_csv(tmp_path / "p.csv", rows))
    assert "data row 2 (bad one)" in str(info.value)


def test_missing_column_names_the_field_and_its_accepted_columns(tmp_path: Path) -> None:
    rows = [{k: v for k, v in ROW.items() if k != "stellar_logg_cgs"}]
    with pytest.raises(InputDataError, match=r"stellar_logg_cgs \(or st_logg, stellar_logg\)"):
        read_csv_runs(write_csv(tmp_path / "p.csv", rows))


@pytest.mark.parametrize("content", [b"", b"\x00\xff\xfe binary \x81\x82"])
def test_unreadable_csv(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "p.csv"
    path.write_bytes(content)
    with pytest.raises(InputDataError, match=str(path)):
        read_csv_runs(path)


def test_nonexistent_csv(tmp_path: Path) -> None:
    with pytest.raises(InputDataError, match="does not exist"):
        read_csv_runs(tmp_path / "nope.csv")


def test_duplicate_names_after_sanitising_are_refused(tmp_path: Path) -> None:
    rows = [{**ROW, "name": "K2-18 b"}, {**ROW, "name": "K2-18/b"}]
    with pytest.raises(InputDataError, match="data rows 1 and 2"):
        read_csv_runs(write_csv(tmp_path / "p.csv", rows))


def test_hypercube_and_ids_are_those_of_earlier_versions() -> None:
    """Adding pch4_bar to the parameters kept the generator's random stream and run ids
    (numbers from exocube before pch4_bar), so older ensembles resume; CH4 stays 0."""
    run = sample_runs(3, 4)[2]
    assert run.run_id == "gen-s4-n3-00002"
    assert run.params["radius_earth"] == 2.453183130205378
    assert run.params["pco2_bar"] == 0.0005292125318420214
    assert run.params["rotation_period_days"] == 61.16290307087055
    assert all(r.params["pch4_bar"] == 0.0 for r in sample_runs(50, 1))


@pytest.mark.parametrize(("extra", "pattern"), [
    ({"surface_pressure_bar": 3.0}, r"surface_pressure_bar=3.0 .*\[0.1, 2.0\] bar, the "
     r"built-in generator's range"),
    ({"pco2_bar": 0.0}, r"pco2_bar=0.0 .*\[1e-06, 1.0\] bar, the built-in generator's range"),
    ({"pch4_bar": 0.01}, r"pch4_bar=0.01 .*\[0.0, 0.0\] bar, the built-in generator's range"),
])
def test_generator_refuses_valid_planets_it_cannot_simulate(
        tmp_path: Path, extra: dict[str, float], pattern: str) -> None:
    """Valid planets (inside the validity bounds) outside the generator's ranges: its CSV
    rows and generate() refuse them with its own range; --on-invalid skip drops them."""
    rows = [{**ROW, "name": "real", **extra}, {**ROW, "name": "ok"}]
    with pytest.raises(ParameterError, match=pattern):
        read_csv_runs(write_csv(tmp_path / "p.csv", rows))
    assert [r.run_id for r in read_csv_runs(tmp_path / "p.csv", on_invalid="skip")] == ["ok"]
    planet = derive(validate_params({**ROW, **extra}))  # a valid planet ...
    with pytest.raises(ParameterError, match=pattern):  # ... the generator refuses
        generate(planet)
