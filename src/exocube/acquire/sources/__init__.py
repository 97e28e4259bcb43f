"""Source adapters, one module per archive.

Every module is a :class:`~exocube.acquire.sources.adapter.SourceAdapter`: it
has ``NAME``, ``DOMAIN``, ``DESCRIPTION``, ``MAX_REQUESTS_PER_SECOND`` (``None``
unless the archive asks for a limit), ``base_url(opts)``, ``async plan(ctx) ->
list[PlannedFile]`` (which speaks the archive's own protocol: TAP, the MAST API,
a grid layout, REST, an index file, a listing) and ``validate(path, item) ->
QualityReport``. Fetching is the shared transfer layer
(:mod:`exocube.acquire.transfer` for HTTP(S), :mod:`exocube.acquire.ftp` for
FTP), chosen by the URL's scheme. A new source is a module here, added to the
list below; :func:`~exocube.acquire.sources.adapter.adapters` checks it.
"""

from __future__ import annotations

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
from exocube.acquire.sources.adapter import SourceAdapter, adapters

SOURCES: dict[str, SourceAdapter] = adapters(
    nasa_exoplanet_archive, mast, phoenix, kegg, genomes1000, gcm_outputs, geocarb, iris_emc,
    pypi,
)
