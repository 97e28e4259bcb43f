"""Real ExoPlaSim runs (T21, a few model days): simulate -> NetCDF -> ingest -> store, a
blow-up recorded as failed, and a SIGKILL'd ensemble resumed from restart files.

ExoPlaSim compiles its model at first use (about a minute) into its own package directory
in the virtual environment, never into the home directory; later tests reuse the build.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import netCDF4
import pytest
import sqlalchemy as sa

from exocube.catalog import Simulation, session_scope
from exocube.config import get_settings
from exocube.cubes import ingest, open_store
from services import service_unavailable

pytestmark = pytest.mark.slow

HEADER = ("run_id,radius_earth,mass_earth,orbital_period_days,insolation_earth,stellar_teff_k,"
          "stellar_logg_cgs,stellar_metallicity_dex,host_mass_msun,surface_pressure_bar,"
          "pco2_bar,rotation_period_days,timestep_minutes")
EARTH = "earth,1.0,1.0,365.0,1.0,5772,4.44,0.0,1.0,1.0,0.0004,1.0,45"
LOCKED = "mdwarf,1.1,1.3,12.0,0.9,3100,5.0,0.0,0.2,1.5,0.01,12.0,30"
BLOWUP = "blowup,1.0,1.0,365.0,1.0,5772,4.44,0.0,1.0,1.0,0.0004,1.0,240"
EXOCUBE = str(Path(sys.executable).parent / "exocube")
SHORT = ["--year-days", "2", "--write-days", "1", "--times", "2"]


@pytest.fixture(scope="module")
def exoplasim_ready() -> None:
    if shutil.which("gfortran") is None:
        service_unavailable("gfortran", "not on PATH (Debian package gfortran)")
    try:
        import exoplasim  # noqa: F401
    except ImportError as exc:
        service_unavailable("ExoPlaSim", f"not installed ({exc}); pip install 'exocube[gcm]'")


def design(tmp_path: Path, *rows: str) -> Path:
    path = tmp_path / "design.csv"
    path.write_text("\n".join([HEADER, *rows]) + "\n")
    return path


def simulate(design_csv: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    cmd = [EXOCUBE, "simulate", "exoplasim", "--design", str(design_csv), "--out", str(out),
           *SHORT, *extra]
    return subprocess.run(["nice", "-n", "10", *cmd], capture_output=True, text=True,
                          timeout=900, check=False)


def rows() -> dict[str, Simulation]:
    with session_scope(get_settings().database_url) as session:
        return {r.run_id: r for r in session.scalars(sa.select(Simulation))}


def state(out: Path, run_id: str) -> dict:
    return json.loads((out / "runs" / run_id / "state.json").read_text())


def test_simulate_netcdf_ingest_store_without_csv(exoplasim_ready, tmp_path: Path,
                                                  dask_client) -> None:
    out = tmp_path / "ens"
    done = simulate(design(tmp_path, LOCKED), out, "--years", "2")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "mdwarf: complete, 2 years, not equilibrated" in done.stdout
    with netCDF4.Dataset(out / "mdwarf.nc") as ds:
        assert ds.run_id == "mdwarf" and ds.source.startswith("ExoPlaSim 3.4.2")
        assert ds.surface_pressure_bar == 1.5 and ds.pco2_bar == 0.01
        assert ds.tidally_locked == 1 and ds.years_run == 2 and ds.equilibrated == 0
        assert ds["ts"].shape == (2, 32, 64)
    result = ingest([str(out / "mdwarf.nc")], str(tmp_path / "store.zarr"), client=dask_client)
    assert result.added == ["mdwarf"] or list(result.added) == ["mdwarf"]
    store = open_store(str(tmp_path / "store.zarr"))
    assert float(store["surface_pressure_bar"].sel(run="mdwarf")) == 1.5
    assert float(store["orbital_period_days"].sel(run="mdwarf")) == 12.0
    assert float(store["tidally_locked"].sel(run="mdwarf")) == 1.0
    assert 150.0 < float(store["ts"].sel(run="mdwarf").mean()) < 350.0
    row = rows()["mdwarf"]
    assert row.status == "complete" and row.generator == "exoplasim"
    assert row.version.startswith("3.4.2") and row.years_run == 2 and row.wall_time_s > 0
    assert row.equilibrated is False and "toa_net_flux_w_m2" in row.diagnostics
    assert row.output_uri == (out / "mdwarf.nc").resolve().as_uri()


def test_blowup_is_recorded_failed_while_the_other_run_completes(exoplasim_ready,
                                                                tmp_path: Path) -> None:
    out = tmp_path / "ens"
    done = simulate(design(tmp_path, EARTH, BLOWUP), out, "--years", "3")
    assert done.returncode == 2, done.stdout + done.stderr
    catalogue = rows()
    assert catalogue["earth"].status == "complete" and catalogue["earth"].years_run == 3
    failed = catalogue["blowup"]
    assert failed.status == "failed" and failed.output_uri is None
    assert "SIGFPE" in failed.error and "runtime crash" in failed.error
    assert "Floating point exception" in failed.log_tail
    assert (out / "runs" / "blowup" / "blowup_crashed").is_dir()
    again = simulate(design(tmp_path, EARTH, BLOWUP), out, "--years", "3")
    assert "2 were already finished" in again.stdout, again.stdout + again.stderr
    assert state(out, "earth")["years_done"] == 3


def test_sigkill_mid_ensemble_resumes_from_restart_files(exoplasim_ready,
                                                         tmp_path: Path) -> None:
    out = tmp_path / "ens"
    csv = design(tmp_path, EARTH, LOCKED)
    cmd = [EXOCUBE, "simulate", "exoplasim", "--design", str(csv), "--out", str(out),
           "--years", "4", "--workers", "1", *SHORT]
    proc = subprocess.Popen(["nice", "-n", "10", *cmd], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        _wait_for_a_year(out, proc)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    killed = {r: state(out, r) for r in ("earth", "mdwarf")
              if (out / "runs" / r / "state.json").exists()}
    unfinished = [r for r, s in killed.items() if s["status"] == "running"
                  and 1 <= s["years_done"] < 4]
    assert unfinished, killed
    done = simulate(csv, out, "--years", "4", "--workers", "1")
    assert done.returncode == 0, done.stdout + done.stderr
    for run_id in ("earth", "mdwarf"):
        s = state(out, run_id)
        assert s["status"] == "complete" and s["years_done"] == 4
        assert [seg["year"] for seg in s["segments"]] == [0, 1, 2, 3]
        assert [seg["start"] for seg in s["segments"]].count("cold") == 1
    for run_id in unfinished:
        s = state(out, run_id)
        year = killed[run_id]["years_done"]
        assert s["resumes"][0] == {"year": year, "restart": f"MOST_REST.{year - 1:05d}",
                                   "pid": s["resumes"][0]["pid"]}
        diag = out / "runs" / run_id / "model" / f"MOST_DIAG.{year:05d}"
        assert "plasim_restart" in diag.read_text(errors="replace")  # read, not cold-started
    assert {r.status for r in rows().values()} == {"complete"}


def _wait_for_a_year(out: Path, proc: subprocess.Popen, timeout: float = 600.0) -> None:
    """Until some run has finished a year but not all four."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        assert proc.poll() is None, "the ensemble ended before it could be killed"
        for path in out.glob("runs/*/state.json"):
            try:
                doc = json.loads(path.read_text())
            except ValueError:
                continue
            if doc["status"] == "running" and 1 <= doc["years_done"] < 4:
                return
        time.sleep(0.2)
    pytest.fail("no run finished a model year in time")


def test_min_years_stops_an_equilibrated_run_before_the_cap(exoplasim_ready,
                                                            tmp_path: Path) -> None:
    out = tmp_path / "ens"
    done = simulate(design(tmp_path, EARTH), out, "--years", "5", "--min-years", "2",
                    "--max-toa-imbalance", "1e6", "--max-ts-drift", "1e9")
    assert done.returncode == 0, done.stdout + done.stderr
    s = state(out, "earth")
    assert s["years_done"] == 2 and s["diagnostics"]["equilibrated"] is True
    assert rows()["earth"].equilibrated is True


def test_driver_killed_alone_leaves_no_model_running_into_the_resumed_run(
        exoplasim_ready, tmp_path: Path) -> None:
    """SIGKILL of the driver process only (the OOM-killer case): its Dask worker dies with
    it, but the Fortran model runs on; the re-run stops that leftover before resuming."""
    from exocube.gcm.exoplasim import stray_models

    out = tmp_path / "ens"
    csv = design(tmp_path, EARTH)
    long_year = ["--year-days", "60", "--write-days", "5", "--times", "2"]
    cmd = [EXOCUBE, "simulate", "exoplasim", "--design", str(csv), "--out", str(out),
           "--years", "1", "--workers", "1", *long_year]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    workdir = out / "runs" / "earth" / "model"
    try:
        end = time.monotonic() + 600
        while not (workdir.is_dir() and stray_models(workdir)):
            assert proc.poll() is None and time.monotonic() < end, "no model process seen"
            time.sleep(0.2)
        proc.kill()  # the driver only, not its process group
        proc.wait()
        time.sleep(1.0)
        left = stray_models(workdir)
        assert left, "the model did not outlive its driver; this test proves nothing here"
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # whatever of the first run remains
    assert done.returncode == 0, done.stdout + done.stderr
    s = state(out, "earth")
    assert s["status"] == "complete" and [g["year"] for g in s["segments"]] == [0]
    assert s["stopped_models"] == [{"year": 0, "pids": left}]
    assert not stray_models(workdir)


def test_a_higher_year_cap_extends_complete_runs_from_their_restart(exoplasim_ready,
                                                                    tmp_path: Path) -> None:
    out = tmp_path / "ens"
    csv = design(tmp_path, LOCKED)
    first = simulate(csv, out, "--years", "2")
    assert first.returncode == 0, first.stdout + first.stderr
    sha_2 = state(out, "mdwarf")["sha256"]
    more = simulate(csv, out, "--years", "3")
    assert more.returncode == 0, more.stdout + more.stderr
    s = state(out, "mdwarf")
    assert s["status"] == "complete" and [g["year"] for g in s["segments"]] == [0, 1, 2]
    assert s["resumes"][-1]["year"] == 2 and s["resumes"][-1]["restart"] == "MOST_REST.00001"
    assert s["sha256"] != sha_2 and rows()["mdwarf"].years_run == 3
    with netCDF4.Dataset(out / "mdwarf.nc") as ds:
        assert ds.years_run == 3
