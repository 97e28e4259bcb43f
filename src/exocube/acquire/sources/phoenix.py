"""PHOENIX high-resolution synthetic stellar spectra (domain: spectroscopy).

Husser et al. (2013), PHOENIX-ACES-AGSS-COND-2011, served as one FITS file per
grid point under ``<base>/<library>/Z<[Fe/H]>/lte<Teff>-<logg><[Fe/H]>.<library>-HiRes.fits``,
e.g. ``Z-0.0/lte05800-4.50-0.0.PHOENIX-ACES-AGSS-COND-2011-HiRes.fits``, with the
common wavelength grid in ``<base>/WAVE_<library>.fits``. The grid: Teff 2300 to
7000 K in steps of 100 and 7000 to 12000 K in steps of 200; log g 0.0 to 6.0 in
steps of 0.5; [Fe/H] in {-4, -3, -2, -1.5, -1, -0.5, 0, +0.5, +1}. Validation
opens the FITS file and checks its PHXTEFF/PHXLOGG/PHXM_H against the grid point.
"""

from __future__ import annotations

from pathlib import Path

from exocube.acquire.options import AcquireOptions
from exocube.acquire.plan import PlanContext, PlannedFile
from exocube.acquire.quality import QualityReport
from exocube.acquire.quality.fits import validate_fits
from exocube.errors import ConfigError

NAME = "phoenix"
DOMAIN = "spectroscopy"
DESCRIPTION = "PHOENIX-ACES high-resolution stellar spectra (FITS grid by Teff, log g, [Fe/H])"
MAX_REQUESTS_PER_SECOND: float | None = None  # the settings' limits only

TEFF_GRID = (*range(2300, 7000, 100), *range(7000, 12001, 200))
LOGG_GRID = tuple(x / 2 for x in range(13))
FEH_GRID = (-4.0, -3.0, -2.0, -1.5, -1.0, -0.5, 0.0, 0.5, 1.0)


def base_url(opts: AcquireOptions) -> str:
    return opts.phoenix.base_url


def feh_label(feh: float) -> str:
    """PHOENIX spells solar metallicity ``-0.0``."""
    return "-0.0" if feh == 0 else f"{feh:+.1f}"


def _on_grid(name: str, value: float, grid: tuple[float, ...]) -> None:
    if value not in grid:
        nearest = sorted(grid, key=lambda g: abs(g - value))[:2]
        raise ConfigError(f"phoenix.{name}={value} is not a PHOENIX grid point; "
                          f"nearest: {nearest}. Set acquire.phoenix.{name} to grid values")


def spectrum_url(base: str, library: str, teff: int, logg: float, feh: float) -> str:
    """The URL of one grid point's spectrum."""
    for name, value, grid in (("teff", teff, TEFF_GRID), ("logg", logg, LOGG_GRID),
                              ("feh", feh, FEH_GRID)):
        _on_grid(name, value, grid)
    z = feh_label(feh)
    return (f"{base.rstrip('/')}/{library}/Z{z}/"
            f"lte{teff:05d}-{logg:.2f}{z}.{library}-HiRes.fits")


async def plan(ctx: PlanContext) -> list[PlannedFile]:
    o = ctx.opts.phoenix
    files = []
    if o.include_wavelength:
        files.append(PlannedFile(
            source=NAME, domain=DOMAIN, relpath=f"{NAME}/WAVE_{o.library}.fits",
            url=f"{o.base_url.rstrip('/')}/WAVE_{o.library}.fits",
            media_type="application/fits", kind="fits", meta={"wavelength": True}))
    for teff in o.teff:
        for logg in o.logg:
            for feh in o.feh:
                url = spectrum_url(o.base_url, o.library, teff, logg, feh)
                files.append(PlannedFile(
                    source=NAME, domain=DOMAIN, relpath=f"{NAME}/{url.rsplit('/', 2)[-2]}/"
                    f"{url.rsplit('/', 1)[-1]}", url=url, media_type="application/fits",
                    kind="fits", meta={"teff": teff, "logg": logg, "feh": feh}))
    await ctx.fill_sizes(files)
    return files


def validate(path: Path, item: PlannedFile) -> QualityReport:
    from astropy.io import fits

    report = validate_fits(path)
    if report.errors or item.meta.get("wavelength"):
        return report
    header = fits.getheader(path, 0)
    for key, field in (("PHXTEFF", "teff"), ("PHXLOGG", "logg"), ("PHXM_H", "feh")):
        if key in header and abs(float(header[key]) - float(item.meta[field])) > 1e-6:
            report.error("phoenix.grid", f"header {key}={header[key]} but the file was "
                         f"requested as {field}={item.meta[field]}", penalty=0.6)
    return report
