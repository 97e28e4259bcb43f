"""Planet-parameter sampling and the built-in GCM ensemble generator.

- :mod:`~exocube.gcm.sampling`: Latin hypercube over the valid ranges, or CSV rows
- :mod:`~exocube.gcm.generator`: the physical fields of one run
- :mod:`~exocube.gcm.netcdf`: the CF NetCDF file of one run (the ingest contract)
- :mod:`~exocube.gcm.runs`: one run, generated or reused (what Dask workers import)
- :mod:`~exocube.gcm.ensemble`: many runs in parallel, recorded in the catalogue

The planet's derived quantities (gravity, orbit, equilibrium temperature, tidal
locking, gas constants) are :mod:`exocube.planet`, shared with every stage.

The package imports nothing eagerly, so that Dask workers load only
:mod:`~exocube.gcm.runs` and what it needs.
"""
