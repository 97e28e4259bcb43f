"""Acquisition: resumable, verified, polite downloads and their provenance.

Layout: ``transfer`` (HTTP), ``ftp``, ``partial`` (``.part`` files and
sidecars), ``retry``, ``ratelimit``, ``breaker``, ``destination`` (local or
S3), ``plan`` and ``run`` (runs with catalogue checkpoints), ``provenance``,
``units`` (readable sizes, quotas), ``sources/`` (one module per archive) and
``quality/`` (one validator per format). The settings (:mod:`exocube.acquire.options`)
are defined in the root module :mod:`exocube.config`, which imports no stage.
"""
