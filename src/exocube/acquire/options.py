"""Acquisition settings: transfers, politeness, quality, and one block per source.

They live under ``acquire`` in :class:`exocube.config.Settings`, so a TOML file
sets them as ``[acquire]``, ``[acquire.kegg]`` ... and the environment as
``EXOCUBE_ACQUIRE__READ_TIMEOUT=30`` or
``EXOCUBE_ACQUIRE__KEGG__BASE_URL=https://mirror.example/kegg``.

They are defined in :mod:`exocube.config`, a root module that imports no stage;
the acquire stage imports them from here.
"""

from __future__ import annotations

from exocube.config import (
    PREM_COLUMNS,
    PSCOMPPARS_COLUMNS,
    AcquireOptions,
    GcmOutputsOptions,
    Genomes1000Options,
    GeocarbOptions,
    IrisEmcModel,
    IrisEmcOptions,
    KeggOptions,
    MastOptions,
    NasaExoplanetArchiveOptions,
    PhoenixOptions,
    PypiOptions,
)

__all__ = [
    "PREM_COLUMNS",
    "PSCOMPPARS_COLUMNS",
    "AcquireOptions",
    "GcmOutputsOptions",
    "Genomes1000Options",
    "GeocarbOptions",
    "IrisEmcModel",
    "IrisEmcOptions",
    "KeggOptions",
    "MastOptions",
    "NasaExoplanetArchiveOptions",
    "PhoenixOptions",
    "PypiOptions",
]
