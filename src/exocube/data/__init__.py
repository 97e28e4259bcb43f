"""Data shipped with exocube.

``PSCOMPPARS_SNAPSHOT``: a real, unmodified download of the NASA Exoplanet
Archive's Planetary Systems Composite Parameters table (``pscomppars``),
produced by the archive on 2024-10-15 (5,766 planets, 84 columns, sha256
``0bd320b5d3943ff8e57a5cdb9d15683fb309d63928137e32d049df51cd96ad40``). The demo
predicts every usable planet of it, and the tests use it as the archive's TAP
answer. Provenance and citation: ``README.md`` beside it.

``PRETRAINED_SURROGATE``: an exported surrogate (:mod:`exocube.ml.export`): the U-Net
of ``configs/surrogate_cpu_small.yaml`` with a std head, trained on the demo's default
ensemble (``exocube generate -n 500 --seed 0``) and calibrated on its validation runs.
``exocube demo`` evaluates it; its ``provenance.json`` gives the training command,
the data and the metrics.
"""

from __future__ import annotations

from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent
PSCOMPPARS_SNAPSHOT = DATA_DIR / "nasa_exoplanet_archive_pscomppars_2024-10-15.csv"
PSCOMPPARS_SHA256 = "0bd320b5d3943ff8e57a5cdb9d15683fb309d63928137e32d049df51cd96ad40"
PRETRAINED_SURROGATE = DATA_DIR / "surrogate"

__all__ = ["DATA_DIR", "PRETRAINED_SURROGATE", "PSCOMPPARS_SHA256", "PSCOMPPARS_SNAPSHOT"]
