"""Planet-parameter sampling and the built-in GCM ensemble generator.

- :mod:`~exocube.gcm.sampling`: Latin hypercube over the valid ranges, or CSV rows
- :mod:`~exocube.gcm.generator`: the physical fields of one run
- :mod:`~exocube.gcm.netcdf`: the CF NetCDF file of one run (the ingest contract)
- :mod:`~exocube.gcm.runs`: one run, generated or reused (what Dask workers import)
- :mod:`~exocube.gcm.ensemble`: many runs in parallel, recorded in the catalogue

The planet's derived quantities (gravity, orbit, equilibrium temperature, tidal
locking, gas constants) are :mod:`exocube.planet`, shared with every stage.

- :mod:`~exocube.gcm.exoplasim_config`, :mod:`~exocube.gcm.exoplasim`,
  :mod:`~exocube.gcm.exoplasim_ensemble`, :mod:`~exocube.gcm.equilibrium`: the
  ExoPlaSim driver (design rows, one restartable run, the ensemble, equilibrium)
- :mod:`~exocube.gcm.ship`: a finished ensemble's time means and manifest, as shipped
- :mod:`~exocube.gcm.status`: where an ensemble stands, run by run (also while it runs)

Other stages import the names in ``__all__``, not the modules. Importing the package
loads the driver's modules but not ExoPlaSim itself (that happens when a run starts).
"""

from __future__ import annotations

from exocube.gcm.ensemble import EnsembleResult, run_ensemble
from exocube.gcm.equilibrium import EquilibriumCriteria
from exocube.gcm.exoplasim import RunOutcome
from exocube.gcm.exoplasim_config import RESOLUTIONS, RunLength, read_design
from exocube.gcm.exoplasim_ensemble import ExoPlaSimEnsembleResult, plan_ensemble, run_plan
from exocube.gcm.sampling import runs_from, sample_runs
from exocube.gcm.ship import ShippedRun, read_manifest, ship_ensemble
from exocube.gcm.status import RunStatus, ensemble_status, markdown_table

__all__ = [
    "RESOLUTIONS",
    "EnsembleResult",
    "EquilibriumCriteria",
    "ExoPlaSimEnsembleResult",
    "RunLength",
    "RunOutcome",
    "RunStatus",
    "ShippedRun",
    "ensemble_status",
    "markdown_table",
    "plan_ensemble",
    "read_design",
    "read_manifest",
    "run_ensemble",
    "run_plan",
    "runs_from",
    "sample_runs",
    "ship_ensemble",
]
