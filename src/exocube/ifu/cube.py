"""JWST s3d cubes: read into a typed, frozen :class:`IFUCube`, select, write back.

An s3d file (JWST ``cube_build``) has HDU 0 PRIMARY and then, found by
EXTNAME (only SCI's position is fixed), SCI (float32), ERR (float32), DQ
(uint32), WMAP (float32), optionally WCS-TABLE (the wavelength of each plane
when ``CTYPE3 = 'WAVE-TAB'``), HDRTAB and ASDF. The primary keywords FLUXEXT,
ERREXT, ERRTYPE and MASKEXT name the extensions. SCI carries the WCS:
RA---TAN / DEC--TAN in degrees and CTYPE3 'WAVE' (or 'WAVE-TAB') in CUNIT3.

Reading checks every HDU's CHECKSUM/DATASUM when present, turns DQ into a
mask through a configurable flag set (:mod:`exocube.ifu.dq`), computes the
wavelengths (um) and each spaxel's offset (arcsec, east and north of the
reference pixel CRPIX1/2) from the WCS with astropy, and records the file's
sha256 and header provenance.
"""

from __future__ import annotations

import hashlib
import logging
import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import astropy.units as u
import numpy as np
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning

from exocube.errors import CubeChecksumError, CubeFormatError
from exocube.ifu.dq import DEFAULT_MASK_FLAGS, mask_bits
from exocube.ifu.lines import Line, check_covered, velocity_kms

log = logging.getLogger(__name__)

PROVENANCE_KEYS = ("TELESCOP", "INSTRUME", "DETECTOR", "GRATING", "FILTER", "EXP_TYPE",
                   "PROGRAM", "OBSERVTN", "VISIT", "OBS_ID", "TARGNAME", "TARG_RA", "TARG_DEC",
                   "DATE-OBS", "TIME-OBS", "CAL_VER", "CRDS_CTX", "FILENAME", "DATE")
SPECTRAL_CTYPES = ("WAVE", "WAVE-TAB")
ERRTYPES = ("ERR", "UNCERTAINTY", "VAR", "IVAR")


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _readonly(a: np.ndarray | None) -> np.ndarray | None:
    if a is not None:
        a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class IFUCube:
    """An IFU cube in (wavelength, y, x) order, with its WCS facts and provenance.

    ``mask`` is True where a voxel must not be used: its DQ has a bit of
    ``mask_bits`` set, or its flux or error is not finite. ``x_arcsec`` and
    ``y_arcsec`` are the offsets of each spaxel centre east and north of the
    reference pixel (standard coordinates of the TAN projection).
    """

    flux: np.ndarray
    err: np.ndarray
    dq: np.ndarray
    mask: np.ndarray
    wavelength_um: np.ndarray
    x_arcsec: np.ndarray
    y_arcsec: np.ndarray
    unit: u.UnitBase
    primary_header: fits.Header
    sci_header: fits.Header
    wmap: np.ndarray | None = None
    wave_table: bool = False
    mask_bits: int = 1 | 512
    source: str = ""
    sha256: str = ""
    extra_hdus: tuple[fits.hdu.base.ExtensionHDU, ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        for name in ("flux", "err", "dq", "mask", "wavelength_um", "x_arcsec", "y_arcsec",
                     "wmap"):
            _readonly(getattr(self, name))

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.flux.shape)  # type: ignore[return-value]

    @property
    def flux_quantity(self) -> u.Quantity:
        return u.Quantity(self.flux, self.unit, copy=False)

    @property
    def err_quantity(self) -> u.Quantity:
        return u.Quantity(self.err, self.unit, copy=False)

    @property
    def spaxel_arcsec(self) -> float:
        """The spaxel size (arcsec), from the pixel scale matrix of the celestial WCS."""
        return float(np.sqrt(abs(np.linalg.det(_celestial(self.sci_header).pixel_scale_matrix)))
                     * 3600.0)

    @property
    def provenance(self) -> dict[str, Any]:
        """The header facts worth keeping with any product made from this cube."""
        out: dict[str, Any] = {"source": self.source, "sha256": self.sha256}
        for key in PROVENANCE_KEYS:
            if key in self.primary_header:
                out[key] = self.primary_header[key]
        return out

    def select_window(self, wmin_um: float, wmax_um: float) -> IFUCube:
        """The planes with ``wmin_um <= wavelength <= wmax_um`` (an error if none)."""
        idx = np.flatnonzero((self.wavelength_um >= wmin_um) & (self.wavelength_um <= wmax_um))
        if idx.size == 0:
            raise CubeFormatError(
                f"{self.source}: no plane between {wmin_um} and {wmax_um} um (the cube covers "
                f"{self.wavelength_um[0]:.5f}-{self.wavelength_um[-1]:.5f} um)")
        return self.planes(int(idx[0]), int(idx[-1]) + 1)

    def planes(self, start: int, stop: int) -> IFUCube:
        """Planes ``start:stop``, with the SCI header's spectral WCS shifted to match."""
        hdr = self.sci_header.copy()
        if not self.wave_table:
            hdr["CRPIX3"] = float(hdr.get("CRPIX3", 1.0)) - start
        sl = slice(start, stop)
        return replace(self, flux=self.flux[sl].copy(), err=self.err[sl].copy(),
                       dq=self.dq[sl].copy(), mask=self.mask[sl].copy(),
                       wavelength_um=self.wavelength_um[sl].copy(), sci_header=hdr,
                       wmap=None if self.wmap is None else self.wmap[sl].copy())

    def line_windows(self, lines: Sequence[Line], z: float,
                     half_width_kms: float = 1500.0) -> list[LineWindow]:
        """The planes within ``half_width_kms`` of each line at ``z``, with velocity axes."""
        check_covered(self.wavelength_um, lines, z, half_width_kms, self.source or "cube")
        out = []
        for line in lines:
            v = velocity_kms(self.wavelength_um, line, z)
            idx = np.flatnonzero(np.abs(v) <= half_width_kms)
            sub = self.planes(int(idx[0]), int(idx[-1]) + 1)
            out.append(LineWindow(line, z, sub, velocity_kms(sub.wavelength_um, line, z)))
        return out

    def with_data(self, flux: np.ndarray, err: np.ndarray | None = None,
                  dq: np.ndarray | None = None) -> IFUCube:
        """The same cube (header, WCS, provenance) with new data; the mask is recomputed."""
        err = self.err if err is None else err
        dq = np.array(self.dq if dq is None else dq, dtype=np.uint32)  # copies: the cube
        flux = np.array(flux, dtype=np.float32)  # freezes its arrays, not the caller's
        err = np.array(err, dtype=np.float32)
        if flux.shape != self.shape or err.shape != self.shape or dq.shape != self.shape:
            raise CubeFormatError(f"new data of shape {flux.shape}/{err.shape}/{dq.shape} "
                                  f"does not match the cube's {self.shape}")
        return replace(self, flux=flux, err=err, dq=dq,
                       mask=_mask(flux, err, dq, self.mask_bits), source="", sha256="")


@dataclass(frozen=True, eq=False)
class LineWindow:
    """The planes of a cube around one line, with the line's velocity axis (km/s)."""

    line: Line
    z: float
    cube: IFUCube
    velocity_kms: np.ndarray


def _mask(flux: np.ndarray, err: np.ndarray, dq: np.ndarray, bits: int) -> np.ndarray:
    return ((dq & np.uint32(bits)) != 0) | ~np.isfinite(flux) | ~np.isfinite(err)


def _celestial(header: fits.Header) -> WCS:
    if str(header.get("CTYPE3", "")).strip().endswith("-TAB"):
        header = header.copy()  # the celestial axes do not need the table
        header["CTYPE3"] = "WAVE"
        for key in ("PS3_0", "PS3_1", "PS3_2"):
            header.remove(key, ignore_missing=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        return WCS(header, naxis=[1, 2])


def verify_checksums(hdul: fits.HDUList, where: str) -> None:
    """Check CHECKSUM and DATASUM of every HDU that has them; name the first bad HDU."""
    for i, hdu in enumerate(hdul):
        name = hdu.name or f"#{i}"
        if "DATASUM" in hdu.header and hdu.verify_datasum() == 0:
            raise CubeChecksumError(
                f"{where}: HDU {i} ({name}) fails its DATASUM: the data bytes are corrupted; "
                "download the file again (exocube ifu fetch resumes and re-verifies)")
        if "CHECKSUM" in hdu.header and hdu.verify_checksum() == 0:
            raise CubeChecksumError(
                f"{where}: HDU {i} ({name}) fails its CHECKSUM: the header or data are "
                "corrupted; download the file again")


def _open(path: Path) -> fits.HDUList:
    if not path.is_file():
        raise CubeFormatError(f"{path}: no such file; give the path of an s3d FITS cube")
    try:
        return fits.open(path, memmap=False, lazy_load_hdus=False)
    except OSError as exc:
        raise CubeFormatError(f"{path}: not a readable FITS file ({exc}); give an s3d cube "
                              "(*_s3d.fits)") from exc


def _hdu(hdul: fits.HDUList, name: str, path: Path, what: str) -> fits.ImageHDU:
    try:
        return hdul[name]
    except KeyError:
        names = [h.name for h in hdul]
        raise CubeFormatError(
            f"{path}: no {name} extension ({what}); HDUs are {names}: this is not an s3d "
            "cube (JWST cube_build writes PRIMARY, SCI, ERR, DQ, WMAP)") from None


def _unit(header: fits.Header, path: Path) -> u.UnitBase:
    bunit = str(header.get("BUNIT", "")).strip()
    if not bunit:
        raise CubeFormatError(f"{path}: SCI has no BUNIT; set BUNIT (e.g. 'MJy/sr')")
    try:
        return u.Unit(bunit, format="fits", parse_strict="raise")
    except ValueError:
        try:
            return u.Unit(bunit, parse_strict="raise")
        except ValueError as exc:
            raise CubeFormatError(f"{path}: SCI BUNIT={bunit!r} is not a unit astropy "
                                  f"understands ({exc})") from exc


def wavelengths_um(header: fits.Header, hdul: fits.HDUList | None, where: str) -> np.ndarray:
    """Wavelength (um) of each plane from the SCI WCS: linear 'WAVE' or tabular 'WAVE-TAB'."""
    ctype = str(header.get("CTYPE3", "")).strip()
    if ctype not in SPECTRAL_CTYPES:
        raise CubeFormatError(f"{where}: SCI CTYPE3={ctype!r}; an s3d cube has 'WAVE' or "
                              "'WAVE-TAB' on axis 3")
    n = int(header["NAXIS3"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        try:
            w = WCS(header, fobj=hdul) if ctype == "WAVE-TAB" else WCS(header)
        except (ValueError, KeyError, MemoryError) as exc:
            raise CubeFormatError(f"{where}: SCI WCS cannot be parsed ({exc})") from exc
    spec = w.sub([3])
    unit = spec.world_axis_units[0] or str(header.get("CUNIT3", "um"))
    values = spec.pixel_to_world_values(np.arange(n, dtype=np.float64))
    wave = (np.asarray(values, dtype=np.float64) * u.Unit(unit)).to_value(u.um)
    if not np.all(np.isfinite(wave)) or np.any(np.diff(wave) <= 0):
        raise CubeFormatError(f"{where}: wavelengths from the SCI WCS are not finite and "
                              "increasing; check CRVAL3/CDELT3/CRPIX3 or the WCS-TABLE")
    return wave


def spaxel_offsets(header: fits.Header, ny: int, nx: int) -> tuple[np.ndarray, np.ndarray]:
    """Offsets (arcsec) east and north of CRPIX1/2 for each spaxel centre (TAN plane)."""
    cel = _celestial(header)
    if not cel.wcs.ctype[0].startswith("RA---") or not cel.wcs.ctype[1].startswith("DEC--"):
        raise CubeFormatError(f"SCI CTYPE1/2={list(cel.wcs.ctype)}: expected RA---TAN/DEC--TAN")
    m = cel.pixel_scale_matrix * 3600.0
    yy, xx = np.mgrid[0:ny, 0:nx].astype(np.float64)
    dx = xx - (cel.wcs.crpix[0] - 1.0)
    dy = yy - (cel.wcs.crpix[1] - 1.0)
    # Intermediate world coordinate x grows with RA (east), y with Dec (north).
    return m[0, 0] * dx + m[0, 1] * dy, m[1, 0] * dx + m[1, 1] * dy


def _errors(hdul: fits.HDUList, primary: fits.Header, path: Path, shape: tuple) -> np.ndarray:
    name = str(primary.get("ERREXT", "ERR")).strip() or "ERR"
    hdu = _hdu(hdul, name, path, "the flux uncertainty")
    errtype = str(primary.get("ERRTYPE", hdu.header.get("ERRTYPE", "ERR"))).strip().upper()
    if errtype not in ERRTYPES:
        raise CubeFormatError(f"{path}: ERRTYPE={errtype!r}; expected one of {ERRTYPES}")
    data = np.asarray(hdu.data, dtype=np.float32)
    if data.shape != shape:
        raise CubeFormatError(f"{path}: {name} has shape {data.shape}, SCI has {shape}")
    with np.errstate(divide="ignore", invalid="ignore"):
        if errtype == "VAR":
            data = np.sqrt(data)
        elif errtype == "IVAR":
            data = 1.0 / np.sqrt(data)
    return data.astype(np.float32)


def read_s3d(path: str | os.PathLike[str], mask_flags: Iterable[str | int] = DEFAULT_MASK_FLAGS,
             verify: bool = True) -> IFUCube:
    """Read an s3d cube; ``mask_flags`` names the DQ bits that mask a voxel."""
    path = Path(path)
    bits = mask_bits(mask_flags)
    with _open(path) as hdul:
        if verify:
            verify_checksums(hdul, str(path))
        primary = hdul[0].header.copy()
        sci = _hdu(hdul, str(primary.get("FLUXEXT", "SCI")).strip() or "SCI", path, "the flux")
        if sci.data is None or sci.data.ndim != 3:
            shape = None if sci.data is None else sci.data.shape
            raise CubeFormatError(f"{path}: SCI holds data of shape {shape}; an s3d cube is "
                                  "3-D (wavelength, y, x). For a drizzled image use "
                                  "read_drizzled")
        flux = np.asarray(sci.data, dtype=np.float32)
        err = _errors(hdul, primary, path, flux.shape)
        dq_hdu = _hdu(hdul, str(primary.get("MASKEXT", "DQ")).strip() or "DQ", path,
                      "the data quality")
        dq = np.asarray(dq_hdu.data).astype(np.uint32)
        if dq.shape != flux.shape:
            raise CubeFormatError(f"{path}: DQ has shape {dq.shape}, SCI has {flux.shape}")
        header = sci.header.copy()
        wave = wavelengths_um(header, hdul, f"{path} HDU SCI")
        wave_table = str(header.get("CTYPE3", "")).strip() == "WAVE-TAB"
        wmap = np.asarray(hdul["WMAP"].data, dtype=np.float32) if "WMAP" in hdul else None
        known = {"PRIMARY", sci.name, dq_hdu.name, "WMAP", "WCS-TABLE",
                 str(primary.get("ERREXT", "ERR")).strip()}
        extra = tuple(h.copy() for h in hdul[1:] if h.name not in known)
    try:
        x, y = spaxel_offsets(header, flux.shape[1], flux.shape[2])
    except CubeFormatError as exc:
        raise CubeFormatError(f"{path} HDU SCI: {exc}") from None
    mask = _mask(flux, err, dq, bits)
    if mask.all():
        raise CubeFormatError(f"{path}: every voxel is NaN or flagged (DQ bits {bits}); the "
                              "cube has no usable data: check the file or the mask flags")
    log.info("read %s: %s, %.0f%% masked", path, flux.shape, 100 * mask.mean())
    return IFUCube(flux=flux, err=err, dq=dq, mask=mask, wavelength_um=wave, x_arcsec=x,
                   y_arcsec=y, unit=_unit(header, path), primary_header=primary,
                   sci_header=header, wmap=wmap, wave_table=wave_table, mask_bits=bits,
                   source=str(path), sha256=sha256_of(path), extra_hdus=extra)


def wave_table_hdu(wave_um: np.ndarray) -> fits.BinTableHDU:
    """The WCS-TABLE extension of a 'WAVE-TAB' cube (one row, wavelength array (1, n))."""
    n = wave_um.size
    col = fits.Column(name="wavelength", format=f"{n}D", dim=f"(1,{n})", unit="um",
                      array=wave_um.reshape(1, n, 1))
    return fits.BinTableHDU.from_columns([col], name="WCS-TABLE")


def set_wave_table_wcs(header: fits.Header) -> None:
    """Point the SCI header's axis 3 at the WCS-TABLE (pixel p maps to table index p)."""
    for key in ("CDELT3", "CRVAL3", "CRPIX3", "PC3_3", "CUNIT3"):
        header.remove(key, ignore_missing=True)
    header.update({"CTYPE3": "WAVE-TAB", "CUNIT3": "um", "CRPIX3": 1.0, "CRVAL3": 1.0,
                   "CDELT3": 1.0, "PC3_3": 1.0, "PS3_0": "WCS-TABLE", "PS3_1": "wavelength"})


def _sci_header(cube: IFUCube) -> fits.Header:
    hdr = cube.sci_header.copy()
    for key in ("SIMPLE", "XTENSION", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "NAXIS3",
                "EXTEND", "PCOUNT", "GCOUNT", "CHECKSUM", "DATASUM"):
        hdr.remove(key, ignore_missing=True, remove_all=True)
    hdr["BUNIT"] = cube.unit.to_string("fits") if cube.unit != u.dimensionless_unscaled else ""
    if cube.wave_table:
        set_wave_table_wcs(hdr)
    return hdr


def cube_hdulist(cube: IFUCube) -> fits.HDUList:
    """The s3d layout of ``cube``: PRIMARY, SCI, ERR, DQ[, WMAP][, WCS-TABLE], extras."""
    primary = cube.primary_header.copy()
    primary.update({"FLUXEXT": "SCI", "ERREXT": "ERR", "ERRTYPE": "ERR", "MASKEXT": "DQ"})
    for key in ("CHECKSUM", "DATASUM"):
        primary.remove(key, ignore_missing=True)
    sci_hdr = _sci_header(cube)
    hdus: list[Any] = [fits.PrimaryHDU(header=primary),
                       fits.ImageHDU(cube.flux.astype(np.float32), header=sci_hdr, name="SCI")]
    err_hdr = fits.Header({"BUNIT": sci_hdr["BUNIT"], "ERRTYPE": "ERR"})
    hdus.append(fits.ImageHDU(cube.err.astype(np.float32), header=err_hdr, name="ERR"))
    hdus.append(fits.ImageHDU(cube.dq.astype(np.uint32), name="DQ"))
    if cube.wmap is not None:
        hdus.append(fits.ImageHDU(cube.wmap.astype(np.float32), name="WMAP"))
    if cube.wave_table:
        hdus.append(wave_table_hdu(cube.wavelength_um))
    hdus.extend(h.copy() for h in cube.extra_hdus)
    return fits.HDUList(hdus)


def write_fits_atomic(hdul: fits.HDUList, path: str | os.PathLike[str]) -> Path:
    """Write with CHECKSUM/DATASUM to a temporary name in the same folder, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        hdul.writeto(tmp, checksum=True, overwrite=True)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_s3d(cube: IFUCube, path: str | os.PathLike[str]) -> Path:
    """Write ``cube`` in the s3d layout (atomically, with checksums); the path."""
    return write_fits_atomic(cube_hdulist(cube), path)
