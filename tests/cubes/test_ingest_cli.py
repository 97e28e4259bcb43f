"""``exocube ingest`` from the command line, on an existing Dask scheduler."""

from __future__ import annotations

import pytest

from exocube.cubes import open_store


def test_cli_ingest_then_again_changes_nothing(make_runs, store_dir, dask_client,
                                               capsys) -> None:
    from exocube.cli import main

    files = make_runs(2)
    address = dask_client.scheduler.address
    for expected in ("2 runs added, 0 already present", "0 runs added, 2 already present"):
        with pytest.raises(SystemExit) as exit_info:
            main(["ingest", *files, "--store", store_dir, "--scheduler", address])
        assert exit_info.value.code == 0
        assert expected in capsys.readouterr().out
    assert list(open_store(store_dir)["run"].values) == ["run000", "run001"]


def test_cli_reports_bad_input_without_traceback(make_runs, store_dir, dask_client, tmp_path,
                                                 capsys) -> None:
    from exocube.cli import main

    bad = tmp_path / "notes.nc"
    bad.write_text("not netcdf")
    with pytest.raises(SystemExit) as exit_info:
        main(["ingest", str(bad), "--store", store_dir, "--scheduler",
              dask_client.scheduler.address])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert "not a readable NetCDF file" in err and "Traceback" not in err
