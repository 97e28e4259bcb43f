"""Two ExoPlaSim runs submitted through a real single-node SLURM (dask-jobqueue
SLURMCluster, one job per worker) complete and are catalogued.

SLURM must be running (``.ci/slurm-up.sh`` starts munged, slurmctld and slurmd); the test
skips when it does not answer, and fails under EXOCUBE_REQUIRE_SERVICES=1.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import sqlalchemy as sa

from exocube import parallel
from exocube.catalog import Simulation, session_scope
from exocube.config import get_settings
from exocube.errors import ExocubeError
from exocube.gcm.exoplasim_config import RunLength, read_design
from exocube.gcm.exoplasim_ensemble import simulate_ensemble
from services import service_unavailable

pytestmark = pytest.mark.slow

HEADER = ("run_id,radius_earth,mass_earth,orbital_period_days,insolation_earth,stellar_teff_k,"
          "stellar_logg_cgs,stellar_metallicity_dex,host_mass_msun,rotation_period_days")


@pytest.fixture
def slurm_up() -> None:
    if shutil.which("gfortran") is None:
        service_unavailable("gfortran", "not on PATH (Debian package gfortran)")
    pytest.importorskip("dask_jobqueue")
    try:
        parallel.check_slurm()
    except (ExocubeError, subprocess.TimeoutExpired) as exc:
        service_unavailable("SLURM", f"{exc} (start it with .ci/slurm-up.sh)")


def test_two_runs_through_slurm_complete_and_are_catalogued(slurm_up, tmp_path: Path) -> None:
    csv = tmp_path / "design.csv"
    csv.write_text("\n".join([HEADER, "s1,1.0,1.0,365.0,1.0,5772,4.44,0.0,1.0,1.0",
                              "s2,1.1,1.3,12.0,0.9,3100,5.0,0.0,0.2,12.0"]) + "\n")
    out = tmp_path / "ens"
    options = parallel.SlurmOptions(jobs=2, memory="1GiB", walltime="00:30:00",
                                    log_directory=str(tmp_path / "slurm-logs"),
                                    start_timeout_s=240)
    with parallel.cluster_client("slurm", slurm=options) as client:
        result = simulate_ensemble(read_design(csv), out, get_settings().database_url, client,
                                   length=RunLength(years=2, year_days=2, write_days=1,
                                                    times=2))
        job_ids = client.run(os.getenv, "SLURM_JOB_ID")
    assert [o.status for o in result.outcomes] == ["complete", "complete"]
    assert all(Path(o.output).is_file() for o in result.outcomes)
    assert job_ids and all(job_ids.values()), job_ids  # every worker is a SLURM job
    with session_scope(get_settings().database_url) as session:
        catalogue = {r.run_id: r for r in session.scalars(sa.select(Simulation))}
    assert {k: v.status for k, v in catalogue.items()} == {"s1": "complete", "s2": "complete"}
    logs = list((tmp_path / "slurm-logs").glob("*.err")) + list(
        (tmp_path / "slurm-logs").glob("*.out"))
    assert logs, "SLURM wrote no job logs, so the workers did not run as SLURM jobs"
