"""Planet-parameter sampling and the built-in GCM ensemble generator.

- :mod:`~exocube.gcm.sampling`: Latin hypercube over the valid ranges, or CSV rows
- :mod:`~exocube.gcm.derived`: gravity, orbit, equilibrium temperature, tidal locking
- :mod:`~exocube.gcm.generator`: the physical fields of one run
- :mod:`~exocube.gcm.netcdf`: the CF NetCDF file of one run (the ingest contract)
- :mod:`~exocube.gcm.ensemble`: many runs in parallel, recorded in the catalogue
"""

from exocube.gcm.derived import Planet, derive
from exocube.gcm.ensemble import EnsembleResult, RunRecord, run_ensemble
from exocube.gcm.generator import Climate, generate
from exocube.gcm.netcdf import write_run
from exocube.gcm.sampling import RunSpec, read_csv_runs, sample_runs

__all__ = [
    "Climate",
    "EnsembleResult",
    "Planet",
    "RunRecord",
    "RunSpec",
    "derive",
    "generate",
    "read_csv_runs",
    "run_ensemble",
    "sample_runs",
    "write_run",
]
