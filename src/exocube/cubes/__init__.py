"""Cube store: NetCDF GCM output -> one versioned, chunked Zarr store (local or S3).

Entry points: :func:`ingest`, :func:`open_store`, :func:`validate_store`,
:func:`quarantined_runs`. The store layout and the versioning scheme are
described in ``docs/cube_store.md``.
"""

from __future__ import annotations

from exocube.cubes.ingest import IngestResult, ingest
from exocube.cubes.validate import StoreReport, quarantined_runs, validate_store
from exocube.cubes.versions import list_versions, open_store

__all__ = [
    "IngestResult",
    "StoreReport",
    "ingest",
    "list_versions",
    "open_store",
    "quarantined_runs",
    "validate_store",
]
