"""``--params`` CSVs that name each row's file (column ``file``), as a user writes them."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from builders import PARAMS, SMALL_GRID, rocke3d_file

from exocube.cli import main
from exocube.cubes import ingest, open_store
from exocube.cubes.runparams import read_params_csv
from exocube.errors import InputDataError
from exocube.params import ARCHIVE_COLUMNS


def write_csv(path: Path, rows: list[dict[str, object]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


@pytest.fixture
def two_runs(tmp_path: Path) -> tuple[Path, Path]:
    """ROCKE-3D-shaped files without parameter attributes: runs/a.nc, runs/deep/b.nc."""
    (tmp_path / "runs" / "deep").mkdir(parents=True)
    return (rocke3d_file(tmp_path / "runs" / "a.nc", seed=2),
            rocke3d_file(tmp_path / "runs" / "deep" / "b.nc", seed=3))


def test_cli_ingest_matches_rows_by_file_name_and_relative_path(
        two_runs: tuple[Path, Path], tmp_path: Path, dask_client, capsys,
        monkeypatch: pytest.MonkeyPatch) -> None:
    csv = write_csv(tmp_path / "runs" / "params.csv", [
        {"file": "a.nc", **PARAMS, "mass_earth": 2.0},           # a bare file name
        {"file": "deep/b.nc", **PARAMS, "mass_earth": 3.0},      # relative to the CSV
    ])
    store = str(tmp_path / "store")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(["ingest", "runs/a.nc", "runs/deep/b.nc", "--store", store, "--params", str(csv),
              "--nlat", str(SMALL_GRID.nlat), "--nlon", str(SMALL_GRID.nlon),
              "--nlev", str(len(SMALL_GRID.plev)),
              "--scheduler", dask_client.scheduler.address])
    assert exit_info.value.code == 0, capsys.readouterr().err
    ds = open_store(store)
    mass = dict(zip(ds["run"].values.tolist(), ds["mass_earth"].values.tolist(), strict=True))
    assert mass == {"a": 2.0, "b": 3.0}


def test_paths_relative_to_the_working_directory_and_absolute(
        two_runs: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = two_runs
    monkeypatch.chdir(tmp_path)
    csv = write_csv(tmp_path / "elsewhere" / "p.csv", [
        {"file": "runs/deep/b.nc", **PARAMS, "mass_earth": 3.0},
        {"file": str(a), **PARAMS, "mass_earth": 2.0},
    ])
    rows = read_params_csv(csv, [str(a), str(b)])
    assert {k: v["mass_earth"] for k, v in rows.items()} == {
        str(b.resolve()): 3.0, str(a.resolve()): 2.0}


def test_a_row_naming_no_file_is_refused_before_the_store_is_touched(
        two_runs: tuple[Path, Path], tmp_path: Path, dask_client) -> None:
    a, b = two_runs
    csv = write_csv(tmp_path / "p.csv", [{"file": "a.nc", **PARAMS},
                                         {"file": "runs/deep/b.nc", **PARAMS},
                                         {"file": "c.nc", **PARAMS}])
    store = tmp_path / "store"
    with pytest.raises(InputDataError, match=r"row 3 \('c.nc'\) name no file being ingested"):
        ingest([str(a), str(b)], str(store), params_csv=str(csv), client=dask_client)
    assert not store.exists()


def test_a_file_without_a_row_is_refused(two_runs: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = two_runs
    csv = write_csv(tmp_path / "p.csv", [{"file": "a.nc", **PARAMS}])
    with pytest.raises(InputDataError, match=r"no row for 1 file\(s\) being ingested: .*b\.nc"):
        read_params_csv(csv, [str(a), str(b)])


def test_an_ambiguous_file_name_and_a_repeated_row_are_refused(tmp_path: Path) -> None:
    one = rocke3d_file(write_dir(tmp_path / "x") / "run.nc", seed=2)
    two = rocke3d_file(write_dir(tmp_path / "y") / "run.nc", seed=3)
    csv = write_csv(tmp_path / "p.csv", [{"file": "run.nc", **PARAMS}])
    with pytest.raises(InputDataError, match="could mean any of"):
        read_params_csv(csv, [str(one), str(two)])
    csv = write_csv(tmp_path / "q.csv", [{"file": "x/run.nc", **PARAMS},
                                         {"file": "./x/run.nc", **PARAMS}])
    with pytest.raises(InputDataError, match="rows 1 and 2 both give the file"):
        read_params_csv(csv, [str(one)])


def test_neither_file_nor_run_id_column_says_what_to_add(tmp_path: Path) -> None:
    csv = write_csv(tmp_path / "p.csv", [{"name": "a", **PARAMS}])
    with pytest.raises(InputDataError, match="neither a file nor a run_id column"):
        read_params_csv(csv, [])


def test_a_non_numeric_cell_is_refused_with_the_parameter(
        two_runs: tuple[Path, Path], tmp_path: Path, dask_client) -> None:
    a, _ = two_runs
    csv = write_csv(tmp_path / "p.csv", [{"file": "a.nc", **PARAMS, "mass_earth": "heavy"}])
    result = ingest([str(a)], str(tmp_path / "store"), grid=SMALL_GRID, params_csv=str(csv),
                    client=dask_client, errors="skip")
    (reason,) = result.skipped.values()
    assert "mass_earth" in reason and "nan" in reason


def test_archive_and_earlier_system_column_names_are_read_as_the_parameters(
        tmp_path: Path) -> None:
    row = {ARCHIVE_COLUMNS.get(k, k): v for k, v in PARAMS.items()}
    row["insolation"] = row.pop("pl_insol")  # an earlier-system name beside archive ones
    row["radius_earth"] = 1.5  # the parameter's own name wins over pl_rade
    csv = write_csv(tmp_path / "p.csv", [{"run_id": "a", **row}])
    assert read_params_csv(csv, []) == {"a": {**PARAMS, "radius_earth": 1.5}}


def write_dir(path: Path) -> Path:
    path.mkdir(parents=True)
    return path
