"""Acquisition: resumable, verified, polite downloads and their provenance.

Layout. The download protocol: ``transfer`` (HTTP: request, resume, verify),
``ftp``, ``retry`` (the one retry loop and :class:`~exocube.acquire.retry.Politeness`),
``partial`` (``.part`` files and their typed sidecar). How bytes move:
``client`` (the httpx client and its scoped httpcore setting), ``bodies`` (the
body readers and the one choice between them), ``pipes`` (write paths),
``threads`` (cancellable worker threads). Around them: ``ratelimit``,
``breaker``, ``budget`` (download quota), ``destination`` (local or S3),
``plan`` and ``run`` (runs with catalogue checkpoints), ``provenance``,
``units`` (readable sizes, quotas), ``names`` (remote names made safe),
``sources/`` (one module per archive, each a ``SourceAdapter``) and
``quality/`` (one validator per format). docs/acquire.md walks through one
download step by step. The settings (:mod:`exocube.acquire.options`) are
defined in the root module :mod:`exocube.config`, which imports no stage.
"""
