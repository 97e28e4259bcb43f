"""Source adapters, one module per archive.

Every module has ``NAME``, ``DOMAIN``, ``DESCRIPTION``, ``base_url(opts)``,
``async plan(ctx) -> list[PlannedFile]`` (which speaks the archive's own
protocol: TAP, the MAST API, a grid layout, REST, an index file, a listing) and
``validate(path, item) -> QualityReport``. Fetching is the shared transfer
layer (:mod:`exocube.acquire.transfer` for HTTP(S), :mod:`exocube.acquire.ftp`
for FTP), chosen by the URL's scheme. A module may set
``MAX_REQUESTS_PER_SECOND`` when the archive asks for a limit.
"""

from __future__ import annotations

from types import ModuleType

from exocube.acquire.sources import (
    gcm_outputs,
    genomes1000,
    geocarb,
    iris_emc,
    kegg,
    mast,
    nasa_exoplanet_archive,
    phoenix,
    pypi,
)

SOURCES: dict[str, ModuleType] = {
    m.NAME: m
    for m in (nasa_exoplanet_archive, mast, phoenix, kegg, genomes1000, gcm_outputs, geocarb,
              iris_emc, pypi)
}
