"""A JWST program's IFU products through the acquisition engine's MAST source.

``exocube ifu fetch --program 3149`` sets the MAST source's options to the
program (``proposal_id``, no target filter, the requested product subgroups)
and runs the ordinary acquisition: the plan is stored in the catalogue, files
are downloaded with resume and retries, checked (size, FITS CHECKSUM/DATASUM,
the expected extensions) and recorded with their provenance, and
``exocube acquire --resume RUN`` continues an interrupted run. A dry run
prints the plan and downloads nothing.

Planning asks MAST for the program's observations and product lists. With
``record`` those answers are saved in a folder while planning online; with
``answers`` the plan is built from such a folder with no network
(:mod:`exocube.ifu.answers`). Downloads always use the network.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

from exocube.acquire import Plan, Quotas, destination_for, plan_sources, run_acquisition, start_run
from exocube.config import Settings
from exocube.errors import ConfigError
from exocube.ifu.answers import RecordingTransport, ReplayTransport

DEFAULT_PRODUCTS = ("S3D", "X1D", "CAL")
KNOWN_PRODUCTS = ("S3D", "X1D", "CAL", "I2D", "X1DINTS", "RATE", "UNCAL")


def program_id(program: str | int) -> str:
    """MAST's proposal_id of a JWST program: its number without leading zeros."""
    text = str(program).strip()
    if not re.fullmatch(r"\d{1,5}", text) or int(text) == 0:
        raise ConfigError(f"program {program!r} is not a JWST program number (1 to 5 digits, "
                          "e.g. 3149)")
    return str(int(text))


def program_settings(settings: Settings, program: str | int, products: list[str] | None = None,
                     instrument: str | None = None, max_observations: int = 50) -> Settings:
    """``settings`` with the MAST source pointed at one program's products."""
    wanted = [p.strip().upper() for p in (products or DEFAULT_PRODUCTS) if p.strip()]
    unknown = sorted(set(wanted) - set(KNOWN_PRODUCTS))
    if unknown or not wanted:
        raise ConfigError(f"product subgroups {unknown or wanted}: expected some of "
                          f"{', '.join(KNOWN_PRODUCTS)}")
    mast = settings.acquire.mast.model_copy(update={
        "obs_collection": "JWST", "target_name": None, "proposal_id": program_id(program),
        "instrument_name": instrument, "product_subgroups": wanted,
        "max_observations": max_observations})
    return settings.model_copy(update={
        "acquire": settings.acquire.model_copy(update={"mast": mast})})


def plan_program(settings: Settings, record: Path | None = None,
                 answers: Path | None = None) -> Plan:
    """The files of the program (``settings`` from :func:`program_settings`);
    MAST's answers saved in ``record``, or read from ``answers`` instead of MAST."""
    if record is not None and answers is not None:
        raise ConfigError("--record and --answers together: record answers online with "
                          "--record DIR, or plan from them offline with --answers DIR")
    transport = None
    if record is not None:
        transport = RecordingTransport(record, settings.acquire.plan_max_bytes)
    elif answers is not None:
        transport = ReplayTransport(answers)
    return asyncio.run(plan_sources(settings, ["mast"], transport=transport))


def fetch_program(settings: Settings, plan: Plan, dest: str | None, quotas: Quotas,
                  progress: Any = None) -> dict[str, Any]:
    """Run the acquisition of ``plan``; the run's summary (its id under ``run_id``)."""
    destination = destination_for(settings, dest)
    run_id = start_run(settings, plan, destination, quotas,
                       {"sources": ["mast"], "program": settings.acquire.mast.proposal_id,
                        "products": settings.acquire.mast.product_subgroups})
    return asyncio.run(run_acquisition(settings, plan, destination, quotas, run_id, None,
                                       progress))
