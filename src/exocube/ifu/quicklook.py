"""Quick-look products: per-line moment maps and position-velocity diagrams (FITS, PNG).

Moments of one line over the channels within ``half_width_kms`` of it
(optical velocity v_k of channel k, flux f_k after the optional continuum
subtraction):

    flux  = sum_k f_k / u_k            (line surface brightness, 1e-18 erg/s/cm^2/arcsec^2;
                                        u_k the unit factor of :mod:`exocube.ifu.instrument`)
    v     = sum_k f_k v_k / sum_k f_k  (moment 1, km/s)
    sigma = sqrt(sum_k f_k (v_k - v)^2 / sum_k f_k)   (moment 2, km/s, as observed)

and ``sigma_intrinsic`` = sqrt(sigma^2 - sigma_LSF^2) (0 where negative). A
spaxel with any masked voxel in the window gets NaN; ``min_snr`` blanks
spaxels whose line signal-to-noise (flux over its propagated error) is lower.
``continuum='sidebands'`` subtracts the median of the unmasked channels
between ``half_width_kms`` and twice that from the line.

A position-velocity diagram averages the unmasked spaxels within
``slit_width/2`` of the axis through ``centre`` at position angle ``pa_deg``
(N through E), in bins one spaxel long along the axis (positive offsets
towards the PA), over the line's velocity window.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits

from exocube.errors import CubeFormatError
from exocube.ifu.cube import IFUCube, LineWindow, write_fits_atomic
from exocube.ifu.instrument import ResolvingPower, channel_edges_um, unit_factors
from exocube.ifu.lines import C_KMS, Line

CONTINUUM_MODES = ("none", "sidebands")


@dataclass(frozen=True, eq=False)
class MomentMaps:
    """Moment maps of one line (ny, nx each)."""

    line: str
    flux: np.ndarray
    flux_err: np.ndarray
    velocity: np.ndarray
    dispersion: np.ndarray
    dispersion_intrinsic: np.ndarray


@dataclass(frozen=True, eq=False)
class PVDiagram:
    """data[velocity, offset] in the cube's unit, the mean over the slit."""

    line: str
    offset_arcsec: np.ndarray
    velocity_kms: np.ndarray
    data: np.ndarray
    pa_deg: float
    slit_width_arcsec: float
    centre_arcsec: tuple[float, float]


def _window(cube: IFUCube, line: Line, z: float, half_width_kms: float) -> LineWindow:
    (win,) = cube.line_windows([line], z, half_width_kms)
    return win


def _continuum(cube: IFUCube, line: Line, z: float, half_width_kms: float) -> np.ndarray:
    v = C_KMS * (cube.wavelength_um / line.observed_um(z) - 1.0)
    side = (np.abs(v) > half_width_kms) & (np.abs(v) <= 2 * half_width_kms)
    if not side.any():
        raise CubeFormatError(f"{cube.source or 'cube'}: no channels beside {line.name} for "
                              "the continuum; use continuum='none' or a wider cube")
    data = np.where(cube.mask[side], np.nan, cube.flux[side])
    return np.nanmedian(data, axis=0)


def moment_maps(cube: IFUCube, line: Line, z: float, *, half_width_kms: float = 1000.0,
                continuum: str = "none", min_snr: float | None = None,
                resolving_power: ResolvingPower | None = None) -> MomentMaps:
    """Flux, velocity and dispersion maps of ``line`` at redshift ``z``."""
    if continuum not in CONTINUUM_MODES:
        raise CubeFormatError(f"continuum={continuum!r}; expected one of {CONTINUUM_MODES}")
    win = _window(cube, line, z, half_width_kms)
    sub = win.cube
    f = np.array(sub.flux, dtype=np.float64)
    if continuum == "sidebands":
        f = f - _continuum(cube, line, z, half_width_kms)[None]
    edges = channel_edges_um(cube.wavelength_um)[_edge_slice(cube, sub)]
    factors = unit_factors(sub.wavelength_um, edges, cube.unit, cube.source)[:, None, None]
    bad = sub.mask.any(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        # Moments weight each channel by its line flux (SB units), not by the cube's
        # density: per-frequency units (MJy/sr) would tilt the weights by lambda^2.
        per_channel = f / factors
        flux = per_channel.sum(axis=0)
        flux_err = np.sqrt(((np.array(sub.err, np.float64) / factors) ** 2).sum(axis=0))
        v = win.velocity_kms[:, None, None]
        m1 = (per_channel * v).sum(axis=0) / flux
        m2 = np.sqrt(np.clip((per_channel * (v - m1[None]) ** 2).sum(axis=0) / flux, 0, None))
        lsf = (resolving_power or ResolvingPower.linear()).sigma_um(line.observed_um(z))
        lsf_kms = C_KMS * float(lsf) / line.observed_um(z)
        # Channels of width dv add dv^2 / 12 to the second moment (Sheppard's correction).
        dv = C_KMS * float(np.mean(np.diff(edges))) / line.observed_um(z)
        intrinsic = np.sqrt(np.clip(m2**2 - lsf_kms**2 - dv**2 / 12.0, 0, None))
        if min_snr is not None:
            bad = bad | ~(flux / flux_err >= min_snr)
    maps = [np.where(bad, np.nan, a).astype(np.float32)
            for a in (flux, flux_err, m1, m2, intrinsic)]
    return MomentMaps(line.name, *maps)


def _edge_slice(cube: IFUCube, sub: IFUCube) -> slice:
    start = int(np.searchsorted(cube.wavelength_um, sub.wavelength_um[0]))
    return slice(start, start + sub.shape[0] + 1)


def pv_diagram(cube: IFUCube, line: Line, z: float, *, pa_deg: float,
               slit_width_arcsec: float = 0.3, centre_arcsec: tuple[float, float] = (0.0, 0.0),
               half_width_kms: float = 1000.0) -> PVDiagram:
    """The position-velocity diagram of ``line`` along the axis at ``pa_deg``."""
    if not slit_width_arcsec > 0:
        raise CubeFormatError(f"slit width {slit_width_arcsec} arcsec; give a positive width")
    win = _window(cube, line, z, half_width_kms)
    pa = np.radians(pa_deg)
    dx, dy = cube.x_arcsec - centre_arcsec[0], cube.y_arcsec - centre_arcsec[1]
    along = dx * np.sin(pa) + dy * np.cos(pa)
    across = dx * np.cos(pa) - dy * np.sin(pa)
    step = cube.spaxel_arcsec
    in_slit = np.abs(across) <= slit_width_arcsec / 2
    if not in_slit.any():
        raise CubeFormatError(f"the slit through {centre_arcsec} at PA {pa_deg} misses the "
                              "field; move its centre or widen it")
    bins = np.round(along / step).astype(int)
    lo, hi = bins[in_slit].min(), bins[in_slit].max()
    good = ~win.cube.mask
    flux = np.where(good, win.cube.flux, 0.0)
    data = np.full((win.cube.shape[0], hi - lo + 1), np.nan, dtype=np.float32)
    for b in range(lo, hi + 1):
        sel = in_slit & (bins == b)
        count = good[:, sel].sum(axis=1)
        total = flux[:, sel].sum(axis=1)
        data[:, b - lo] = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return PVDiagram(line.name, np.arange(lo, hi + 1) * step, win.velocity_kms, data,
                     float(pa_deg), float(slit_width_arcsec), centre_arcsec)


def _celestial_header(cube: IFUCube) -> fits.Header:
    keep = ("CTYPE1", "CTYPE2", "CUNIT1", "CUNIT2", "CRPIX1", "CRPIX2", "CRVAL1", "CRVAL2",
            "CDELT1", "CDELT2", "PC1_1", "PC1_2", "PC2_1", "PC2_2", "RADESYS")
    return fits.Header({k: cube.sci_header[k] for k in keep if k in cube.sci_header})


def write_moments(maps: MomentMaps, cube: IFUCube, path: str | os.PathLike[str]) -> Path:
    """FLUX, FLUX_ERR, VELOCITY, DISPERSION, DISP_INT image HDUs with the cube's sky WCS."""
    hdr = _celestial_header(cube)
    primary = fits.Header({"LINE": maps.line, "SOURCE": os.path.basename(cube.source),
                           "SRCSHA": cube.sha256})
    hdus = [fits.PrimaryHDU(header=primary)]
    for name, data, unit in (("FLUX", maps.flux, "1e-18 erg/(s cm2 arcsec2)"),
                             ("FLUX_ERR", maps.flux_err, "1e-18 erg/(s cm2 arcsec2)"),
                             ("VELOCITY", maps.velocity, "km/s"),
                             ("DISPERSION", maps.dispersion, "km/s"),
                             ("DISP_INT", maps.dispersion_intrinsic, "km/s")):
        h = hdr.copy()
        h["BUNIT"] = unit
        hdus.append(fits.ImageHDU(data, header=h, name=name))
    return write_fits_atomic(fits.HDUList(hdus), path)


def write_pv(pv: PVDiagram, cube: IFUCube, path: str | os.PathLike[str]) -> Path:
    """The PV diagram as an image: axis 1 offset (arcsec), axis 2 optical velocity (km/s)."""
    dv = float(pv.velocity_kms[1] - pv.velocity_kms[0]) if pv.velocity_kms.size > 1 else 1.0
    hdr = fits.Header({
        "CTYPE1": "OFFSET", "CUNIT1": "arcsec", "CRPIX1": 1.0,
        "CRVAL1": float(pv.offset_arcsec[0]), "CDELT1": cube.spaxel_arcsec,
        "CTYPE2": "VOPT", "CUNIT2": "km/s", "CRPIX2": 1.0,
        "CRVAL2": float(pv.velocity_kms[0]), "CDELT2": dv,
        "BUNIT": cube.unit.to_string("fits"), "LINE": pv.line, "PA": pv.pa_deg,
        "SLITWID": pv.slit_width_arcsec, "CENTX": pv.centre_arcsec[0],
        "CENTY": pv.centre_arcsec[1], "SRCSHA": cube.sha256,
    })
    return write_fits_atomic(fits.HDUList([fits.PrimaryHDU(pv.data, header=hdr)]), path)


def _savefig(fig, path: Path) -> Path:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.png")
    fig.savefig(tmp, dpi=120, bbox_inches="tight")
    os.replace(tmp, path)
    return path


def plot_moments(maps: MomentMaps, cube: IFUCube, path: str | os.PathLike[str]) -> Path:
    """A PNG of the three maps, east left and north up (offsets in arcsec)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ext = [float(cube.x_arcsec.max()), float(cube.x_arcsec.min()),
           float(cube.y_arcsec.min()), float(cube.y_arcsec.max())]
    fig, axes = plt.subplots(1, 3, figsize=(12, 4))
    for ax, (title, data, cmap) in zip(axes, (("flux", maps.flux, "magma"),
                                              ("velocity (km/s)", maps.velocity, "RdBu_r"),
                                              ("dispersion (km/s)", maps.dispersion,
                                               "viridis")), strict=True):
        shown = data[:, ::-1] if cube.x_arcsec[0, 0] < cube.x_arcsec[0, -1] else data
        finite = shown[np.isfinite(shown)]
        lims = np.percentile(finite, [2, 98]) if finite.size else (0.0, 1.0)
        im = ax.imshow(shown, origin="lower", extent=ext, cmap=cmap, vmin=lims[0],
                       vmax=lims[1])
        ax.set_title(f"{maps.line} {title}")
        ax.set_xlabel("east offset (arcsec)")
        fig.colorbar(im, ax=ax, shrink=0.8)
    axes[0].set_ylabel("north offset (arcsec)")
    try:
        return _savefig(fig, Path(path))
    finally:
        plt.close(fig)


def plot_pv(pv: PVDiagram, path: str | os.PathLike[str]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5))
    ext = [float(pv.offset_arcsec[0]), float(pv.offset_arcsec[-1]),
           float(pv.velocity_kms[0]), float(pv.velocity_kms[-1])]
    im = ax.imshow(pv.data, origin="lower", aspect="auto", extent=ext, cmap="magma")
    ax.set_xlabel(f"offset along PA {pv.pa_deg:g} deg (arcsec)")
    ax.set_ylabel("velocity (km/s)")
    ax.set_title(f"{pv.line}, slit {pv.slit_width_arcsec:g} arcsec")
    fig.colorbar(im, ax=ax)
    try:
        return _savefig(fig, Path(path))
    finally:
        plt.close(fig)
