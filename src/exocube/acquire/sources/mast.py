"""MAST, the Mikulski Archive for Space Telescopes (domain: astrophysics).

JWST/HST products through the MAST Mashup API: ``POST <base>/api/v0/invoke``
with a form field ``request`` holding JSON. ``Mast.Caom.Filtered`` finds
observations (collection, target, instrument), ``Mast.Caom.Products`` lists each
observation's products with their ``dataURI`` and size, and files come from the
download endpoint ``<base>/api/v0.1/Download/file?uri=<dataURI>``.
Validation opens the FITS file, checks ``CHECKSUM``/``DATASUM`` (JWST pipeline
products carry them) and, for 1-D spectra (X1D), the ``EXTRACT1D`` extension.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

from exocube.acquire.options import AcquireOptions
from exocube.acquire.plan import PlanContext, PlannedFile
from exocube.acquire.quality import QualityReport
from exocube.acquire.quality.fits import validate_fits
from exocube.errors import TransferError

NAME = "mast"
DOMAIN = "astrophysics"
DESCRIPTION = "MAST (JWST/HST) products via the MAST API query and download endpoints"
MAX_REQUESTS_PER_SECOND: float | None = None  # the settings' limits only

EXPECTED_EXTENSIONS = {"X1D": ("EXTRACT1D",), "X1DINTS": ("EXTRACT1D",), "CAL": ("SCI",),
                       "S3D": ("SCI",), "I2D": ("SCI",)}


def base_url(opts: AcquireOptions) -> str:
    return opts.mast.base_url


def observations_request(opts: AcquireOptions) -> dict[str, Any]:
    """The ``Mast.Caom.Filtered`` request for the configured observations."""
    o = opts.mast
    filters = [{"paramName": "obs_collection", "values": [o.obs_collection]}]
    if o.target_name:
        filters.append({"paramName": "target_name", "values": [o.target_name]})
    if o.proposal_id:
        filters.append({"paramName": "proposal_id", "values": [o.proposal_id]})
    if o.instrument_name:
        filters.append({"paramName": "instrument_name", "values": [o.instrument_name]})
    return {"service": "Mast.Caom.Filtered", "format": "json", "pagesize": o.max_observations,
            "page": 1, "params": {"columns": "*", "filters": filters}}


def products_request(obsid: str) -> dict[str, Any]:
    return {"service": "Mast.Caom.Products", "format": "json", "params": {"obsid": obsid}}


async def _invoke(ctx: PlanContext, request: dict[str, Any]) -> list[dict[str, Any]]:
    url = f"{ctx.opts.mast.base_url.rstrip('/')}/api/v0/invoke"
    resp = await ctx.post(url, data={"request": json.dumps(request)})
    body = resp.json()
    if body.get("status") not in (None, "COMPLETE"):
        raise TransferError(f"MAST {request['service']} answered status {body.get('status')!r}: "
                            f"{body.get('msg', '')}; retry later or narrow the query")
    return list(body.get("data", []))


async def plan(ctx: PlanContext) -> list[PlannedFile]:
    o = ctx.opts.mast
    observations = (await _invoke(ctx, observations_request(ctx.opts)))[: o.max_observations]
    files: list[PlannedFile] = []
    wanted = {s.upper() for s in o.product_subgroups}
    for obs in observations:
        for prod in await _invoke(ctx, products_request(str(obs["obsid"]))):
            subgroup = str(prod.get("productSubGroupDescription") or "").upper()
            if wanted and subgroup not in wanted:
                continue
            files.append(_planned(ctx.opts, obs, prod, subgroup))
    return files


def _planned(
    opts: AcquireOptions, obs: dict[str, Any], prod: dict[str, Any], subgroup: str
) -> PlannedFile:
    uri = str(prod["dataURI"])
    size = prod.get("size")
    return PlannedFile(
        source=NAME, domain=DOMAIN,
        relpath=f"{NAME}/{obs.get('obs_id', obs['obsid'])}/{prod['productFilename']}",
        url=f"{opts.mast.base_url.rstrip('/')}/api/v0.1/Download/file?uri={quote(uri, safe='')}",
        size=None if size in (None, "") else size,  # checked by PlannedFile
        media_type="application/fits", kind="fits",
        meta={"dataURI": uri, "obsid": str(obs["obsid"]), "subgroup": subgroup},
    )


def validate(path: Path, item: PlannedFile) -> QualityReport:
    return validate_fits(path, EXPECTED_EXTENSIONS.get(item.meta.get("subgroup", ""), ()))
