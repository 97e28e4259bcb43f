"""Published GCM output (domain: climate).

ROCKE-3D (NASA GISS) publication supplements and ExoPlaSim runs are published
as directory listings of NetCDF files. Each configured listing URL is read
either as an HTML directory index (Apache/nginx autoindex: ``<a href=...>``) or as
a JSON manifest (a list of ``{"name", "size", "sha256"}`` objects); files matching
the include patterns are planned, sizes come from the manifest or HEAD requests.
An href is fetched as written and stored under its decoded name (without a
leading ``./``, which Apache writes before names holding a colon); parent and
absolute links of an autoindex, and links with a scheme (``https://other.host/x.nc``),
are navigation and are not followed. A name
that would leave the destination (``%2e%2e/x``, ``a/../../x.nc``) is refused by
:func:`~exocube.acquire.names.safe_relpath` and the listing is not planned.
Validation opens each NetCDF file and applies CF checks (Conventions, units,
coordinate ranges, time units), which is what ingest needs.
"""

from __future__ import annotations

import json
import re
from fnmatch import fnmatch
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

from exocube.acquire.options import AcquireOptions
from exocube.acquire.plan import PlanContext, PlannedFile
from exocube.acquire.quality import QualityReport
from exocube.acquire.quality.netcdf import validate_netcdf
from exocube.errors import InputDataError

NAME = "gcm_outputs"
DOMAIN = "climate"
DESCRIPTION = "ROCKE-3D / ExoPlaSim NetCDF output from published directory listings"
MAX_REQUESTS_PER_SECOND: float | None = None  # the settings' limits only

HREF = re.compile(r"""href\s*=\s*["']([^"'?#]+)["']""", re.IGNORECASE)
SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")  # http://other.host/x.nc, mailto:


def base_url(opts: AcquireOptions) -> str:
    return opts.gcm_outputs.listings[0] if opts.gcm_outputs.listings else ""


def parse_listing(text: str, listing_url: str) -> list[dict[str, Any]]:
    """Entries ``{"url", "name", "size", "sha256"}`` from an HTML index or JSON manifest."""
    stripped = text.lstrip()
    if stripped.startswith(("[", "{")):
        data = json.loads(text)
        rows = data.get("files", []) if isinstance(data, dict) else data
        out = []
        for row in rows:
            if not isinstance(row, dict) or not isinstance(row.get("name"), str):
                raise InputDataError(f"manifest {listing_url} has an entry without a 'name' "
                                     f"string: {row!r:.200}")
            out.append({"url": urljoin(listing_url, row["name"]), "name": row["name"],
                        "size": row.get("size"), "sha256": row.get("sha256")})
        return out
    links = HREF.findall(text)
    if not links:  # an autoindex, even of an empty folder, links to its parent
        raise InputDataError(f"listing {listing_url} has no links and is not a JSON manifest: "
                             f"not a directory index (it starts {text[:60]!r})")
    hrefs = [h for h in links if not (h.startswith(("/", "..", "?")) or SCHEME.match(h))]
    return [{"url": urljoin(listing_url, h), "name": unquote(h.removeprefix("./")),
             "size": None, "sha256": None}
            for h in dict.fromkeys(hrefs) if not h.endswith("/")]


async def plan(ctx: PlanContext) -> list[PlannedFile]:
    o = ctx.opts.gcm_outputs
    files: list[PlannedFile] = []
    for listing in o.listings:
        url = listing if listing.endswith(("/", ".json")) else listing + "/"
        entries = parse_listing((await ctx.get(url)).text, url)
        slug = urlsplit(url).path.strip("/").replace("/", "_") or urlsplit(url).netloc
        for e in entries:
            if any(fnmatch(e["name"], p) for p in o.include) and len(files) < o.max_files:
                files.append(PlannedFile(
                    source=NAME, domain=DOMAIN, relpath=f"{NAME}/{slug}/{e['name']}",
                    url=e["url"], size=e["size"], sha256=e["sha256"],
                    media_type="application/x-netcdf", kind="netcdf",
                    meta={"listing": url}))
    await ctx.fill_sizes(files)
    return files


def validate(path: Path, item: PlannedFile) -> QualityReport:
    return validate_netcdf(path)
