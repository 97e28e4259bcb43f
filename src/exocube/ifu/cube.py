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
import math
import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import astropy.units as u
import numpy as np
from astropy.io import fits
from astropy.io.fits.verify import VerifyError
from astropy.wcs import WCS, FITSFixedWarning

from exocube.errors import CubeChecksumError, CubeFormatError, LineCoverageError
from exocube.ifu.dq import DEFAULT_MASK_FLAGS, mask_bits
from exocube.ifu.lines import Line, check_covered, velocity_kms

log = logging.getLogger(__name__)

PROVENANCE_KEYS = ("TELESCOP", "INSTRUME", "DETECTOR", "GRATING", "FILTER", "EXP_TYPE",
                   "PROGRAM", "OBSERVTN", "VISIT", "OBS_ID", "TARGNAME", "TARG_RA", "TARG_DEC",
                   "DATE-OBS", "TIME-OBS", "CAL_VER", "CRDS_CTX", "FILENAME", "DATE")
SPECTRAL_CTYPES = ("WAVE", "WAVE-TAB")
# Numeric WCS keywords of the three axes: each, when present, must be a finite number.
WCS_NUMERIC_KEYS = tuple(f"{k}{i}" for i in (1, 2, 3) for k in ("CRVAL", "CDELT", "CRPIX")) + \
    tuple(f"{k}{i}_{j}" for i in (1, 2, 3) for j in (1, 2, 3) for k in ("PC", "CD"))
# Errors astropy raises on a truncated or corrupted HDU when its data are read.
_READ_ERRORS = (OSError, ValueError, TypeError, VerifyError, IndexError)
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
    ``mask_bits`` set, its flux or error is not finite, or its error is not
    positive (an error <= 0 would give the voxel infinite weight in a fit). ``x_arcsec`` and
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
        where = self.source or "cube"
        if not (math.isfinite(half_width_kms) and half_width_kms > 0):
            raise LineCoverageError(f"{where}: half width {half_width_kms!r} km/s; give a "
                                    "positive window half width (e.g. 800)")
        if not (math.isfinite(z) and z > -1):
            raise LineCoverageError(f"{where}: redshift z={z!r}; give a finite z > -1")
        check_covered(self.wavelength_um, lines, z, half_width_kms, where)
        out = []
        for line in lines:
            v = velocity_kms(self.wavelength_um, line, z)
            idx = np.flatnonzero(np.abs(v) <= half_width_kms)
            if idx.size < 2:
                raise LineCoverageError(
                    f"{where}: the +-{half_width_kms} km/s window of {line.name} holds "
                    f"{idx.size} channel(s); widen it (a channel is about "
                    f"{abs(float(np.median(np.diff(v)))):.0f} km/s here)")
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
    with np.errstate(invalid="ignore"):
        bad_err = ~(np.isfinite(err) & (err > 0))
    return ((dq & np.uint32(bits)) != 0) | ~np.isfinite(flux) | bad_err


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
        _data(hdu, i, where)  # a truncated HDU fails here, naming itself
        if "DATASUM" in hdu.header and hdu.verify_datasum() == 0:
            raise CubeChecksumError(
                f"{where}: HDU {i} ({name}) fails its DATASUM: the data bytes are corrupted; "
                "download the file again (exocube ifu fetch resumes and re-verifies)")
        if "CHECKSUM" in hdu.header and hdu.verify_checksum() == 0:
            raise CubeChecksumError(
                f"{where}: HDU {i} ({name}) fails its CHECKSUM: the header or data are "
                "corrupted; download the file again")


def _data(hdu: Any, index: int | str, where: str | Path) -> np.ndarray | None:
    """An HDU's data, or a :class:`CubeFormatError` naming the HDU if it cannot be read."""
    try:
        return hdu.data
    except _READ_ERRORS as exc:
        raise CubeFormatError(
            f"{where}: HDU {index} ({hdu.name}) cannot be read ({exc}): the file is truncated "
            "or corrupted; download it again (exocube ifu fetch resumes and re-verifies)"
        ) from None


def _open(path: Path) -> fits.HDUList:
    if not path.is_file():
        raise CubeFormatError(f"{path}: no such file; give the path of an s3d FITS cube")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            hdul = fits.open(path, memmap=False, lazy_load_hdus=False)
    except (*_READ_ERRORS, EOFError) as exc:
        raise CubeFormatError(f"{path}: not a readable FITS file ({exc}); give an s3d cube "
                              "(*_s3d.fits)") from exc
    # astropy only warns when the file ends early or an HDU after the first cannot be
    # parsed (it drops that HDU): a lost HDU must not read as an absent one.
    broken = [" ".join(str(w.message).split()) for w in caught
              if "truncated" in str(w.message) or "corrupted" in str(w.message)]
    if broken:
        hdul.close()
        raise CubeFormatError(f"{path}: the file is truncated or corrupted ({broken[0]}); "
                              "download it again (exocube ifu fetch resumes and re-verifies)")
    for w in caught:
        log.warning("%s: %s", path, w.message)
    return hdul


def _hdu(hdul: fits.HDUList, name: str, path: Path, what: str) -> fits.ImageHDU:
    try:
        return hdul[name]
    except KeyError:
        names = [h.name for h in hdul]
        raise CubeFormatError(
            f"{path}: no {name} extension ({what}); HDUs are {names}: this is not an s3d "
            "cube (JWST cube_build writes PRIMARY, SCI, ERR, DQ, WMAP). If the HDU has "
            f"another EXTNAME, name it in the primary header ({_EXT_KEYS.get(what, 'FLUXEXT')})"
        ) from None


_EXT_KEYS = {"the flux": "FLUXEXT", "the flux uncertainty": "ERREXT",
             "the data quality": "MASKEXT"}


def _check_wcs_numbers(header: fits.Header, where: str) -> None:
    """Every numeric WCS keyword present is a finite number; CDELTi and CDi_i are not 0."""
    for key in WCS_NUMERIC_KEYS:
        if key not in header:
            continue
        try:
            value = header[key]
        except VerifyError:
            value = header.cards[key].image.split("=", 1)[-1].split("/")[0].strip(" '")
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(
                value):
            raise CubeFormatError(f"{where}: {key}={value!r} is not a finite number; fix the "
                                  "keyword (the WCS cannot be computed without it)")
        if key[:-1] in ("CDELT",) and value == 0:
            raise CubeFormatError(f"{where}: {key}=0: a pixel cannot have zero width; fix "
                                  "the keyword")


def _spectral_unit(header: fits.Header, where: str) -> u.UnitBase:
    """CUNIT3 (default um) as an astropy length unit; 'micron', 'Angstrom', 'm' all work."""
    text = str(header.get("CUNIT3", "um")).strip() or "um"
    for fmt in ("fits", None):
        try:
            unit = u.Unit(text, format=fmt, parse_strict="raise")
            break
        except ValueError:
            continue
    else:
        raise CubeFormatError(f"{where}: CUNIT3={text!r} is not a unit astropy understands; "
                              "set CUNIT3 to a length unit such as 'um'")
    if unit.physical_type != "length":
        raise CubeFormatError(f"{where}: CUNIT3={text!r} is a {unit.physical_type}, not a "
                              "length: CTYPE3 'WAVE' needs a wavelength unit such as 'um'")
    return unit


def _unit(header: fits.Header, path: Path, hdu: str = "SCI") -> u.UnitBase:
    bunit = str(header.get("BUNIT", "")).strip()
    if not bunit:
        raise CubeFormatError(f"{path}: {hdu} has no BUNIT; set BUNIT (e.g. 'MJy/sr')")
    try:
        return u.Unit(bunit, format="fits", parse_strict="raise")
    except ValueError:
        try:
            return u.Unit(bunit, parse_strict="raise")
        except ValueError as exc:
            raise CubeFormatError(f"{path}: {hdu} BUNIT={bunit!r} is not a unit astropy "
                                  f"understands ({exc})") from exc


def wavelengths_um(header: fits.Header, hdul: fits.HDUList | None, where: str) -> np.ndarray:
    """Wavelength (um) of each plane from the SCI WCS: linear 'WAVE' or tabular 'WAVE-TAB'."""
    ctype = str(header.get("CTYPE3", "")).strip()
    if ctype not in SPECTRAL_CTYPES:
        raise CubeFormatError(f"{where}: SCI CTYPE3={ctype!r}; an s3d cube has 'WAVE' or "
                              "'WAVE-TAB' on axis 3")
    n = int(header["NAXIS3"])
    _check_wcs_numbers(header, where)
    header = header.copy()
    if ctype == "WAVE":  # wcslib knows only the FITS spelling ('um', not 'micron')
        header["CUNIT3"] = _spectral_unit(header, where).to_string("fits")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        try:
            w = WCS(header, fobj=hdul) if ctype == "WAVE-TAB" else WCS(header)
            spec = w.sub([3])
            unit = spec.world_axis_units[0] or str(header.get("CUNIT3", "um"))
            values = spec.pixel_to_world_values(np.arange(n, dtype=np.float64))
            wave = (np.asarray(values, dtype=np.float64) * u.Unit(unit)).to_value(u.um)
        except (ValueError, KeyError, MemoryError, IndexError, TypeError,
                u.UnitsError) as exc:
            raise CubeFormatError(f"{where}: SCI WCS cannot be parsed ({exc}); check CTYPE3, "
                                  "CUNIT3, CRVAL3/CDELT3/CRPIX3 or the WCS-TABLE") from None
    if wave.shape != (n,) or not np.all(np.isfinite(wave)):
        raise CubeFormatError(f"{where}: wavelengths from the SCI WCS are not {n} finite "
                              "values; check CRVAL3/CDELT3/CRPIX3 or the WCS-TABLE")
    step = np.diff(wave)
    if not (np.all(step > 0) or np.all(step < 0)):
        raise CubeFormatError(f"{where}: wavelengths from the SCI WCS are not monotonic "
                              f"({wave[0]:.6g}-{wave[-1]:.6g} um); check CRVAL3/CDELT3/CRPIX3 "
                              "or the WCS-TABLE")
    return wave


def _flip_spectral_header(header: fits.Header, n: int) -> fits.Header:
    """The SCI header of the same cube with its planes in reverse order (linear WCS)."""
    hdr = header.copy()
    if str(hdr.get("CTYPE3", "")).strip() == "WAVE-TAB":
        return hdr  # written back from the (reversed) wavelengths as a new table
    hdr["CRPIX3"] = n + 1.0 - float(hdr.get("CRPIX3", 0.0))
    if "CD3_3" in hdr:
        hdr["CD3_3"] = -float(hdr["CD3_3"])
    else:
        hdr["CDELT3"] = -float(hdr.get("CDELT3", 1.0))
    return hdr


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


def _errors(hdul: fits.HDUList, primary: fits.Header, path: Path, shape: tuple,
            unit: u.UnitBase) -> np.ndarray:
    name = str(primary.get("ERREXT", "ERR")).strip() or "ERR"
    hdu = _hdu(hdul, name, path, "the flux uncertainty")
    errtype = str(primary.get("ERRTYPE", hdu.header.get("ERRTYPE", "ERR"))).strip().upper()
    if errtype not in ERRTYPES:
        raise CubeFormatError(f"{path}: ERRTYPE={errtype!r}; expected one of {ERRTYPES}")
    data = _data(hdu, name, path)
    shape_of = None if data is None else np.shape(data)
    if shape_of != shape or hdu.is_image is False:
        raise CubeFormatError(f"{path}: HDU {name} has shape {shape_of}, SCI has {shape}: "
                              "ERR must be an image of the same shape")
    data = np.asarray(data, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        if errtype == "VAR":
            data = np.sqrt(data)
        elif errtype == "IVAR":
            data = 1.0 / np.sqrt(data)
    err_bunit = str(hdu.header.get("BUNIT", "")).strip()
    if err_bunit and errtype in ("ERR", "UNCERTAINTY"):
        err_unit = _unit(hdu.header, path, name)
        try:
            data = data * err_unit.to(unit)
        except u.UnitConversionError:
            raise CubeFormatError(f"{path}: {name} BUNIT={err_bunit!r} cannot be converted to "
                                  f"SCI's {unit}; ERR must be in the unit of SCI") from None
    return data.astype(np.float32)


def _quality(hdul: fits.HDUList, primary: fits.Header, path: Path, shape: tuple
             ) -> tuple[np.ndarray, str | None]:
    """DQ as uint32 and its EXTNAME; zeros (a warning) if the file has no DQ extension."""
    name = str(primary.get("MASKEXT", "DQ")).strip() or "DQ"
    if name == "DQ" and name not in hdul:  # MASKEXT naming another HDU must find it
        log.warning("%s: no DQ extension; only NaN voxels and ERR <= 0 are masked", path)
        return np.zeros(shape, dtype=np.uint32), None
    hdu = _hdu(hdul, name, path, "the data quality")
    data = _data(hdu, name, path)
    if data is None or np.shape(data) != shape:
        raise CubeFormatError(f"{path}: HDU {name} has shape "
                              f"{None if data is None else np.shape(data)}, SCI has {shape}: "
                              "DQ must be an image of the same shape")
    data = np.asarray(data)
    if data.dtype.kind not in "ui":
        with np.errstate(invalid="ignore"):
            integral = np.isfinite(data) & (data == np.round(data))
        if data.dtype.kind != "f" or not integral.all():
            raise CubeFormatError(f"{path}: HDU {name} holds non-integer values; DQ must be "
                                  "JWST bit flags (unsigned integers)")
    if data.size and (data.min() < 0 or data.max() >= 2**32):
        raise CubeFormatError(f"{path}: HDU {name} has values outside 0..2**32-1 "
                              f"({data.min()}..{data.max()}); DQ must be 32-bit flags")
    return data.astype(np.uint32), hdu.name


def _orient(flux: np.ndarray, err: np.ndarray, dq: np.ndarray, wmap: np.ndarray | None,
            wave: np.ndarray, header: fits.Header, path: Path) -> tuple:
    """Planes in increasing wavelength: a cube stored red to blue is reversed on reading."""
    if wave.size < 2 or wave[1] > wave[0]:
        return flux, err, dq, wmap, wave, header
    log.info("%s: wavelengths decrease along axis 3; planes reversed to increase", path)
    rev = np.s_[::-1]
    return (flux[rev].copy(), err[rev].copy(), dq[rev].copy(),
            None if wmap is None else wmap[rev].copy(), wave[rev].copy(),
            _flip_spectral_header(header, wave.size))


def read_s3d(path: str | os.PathLike[str], mask_flags: Iterable[str | int] = DEFAULT_MASK_FLAGS,
             verify: bool = True) -> IFUCube:
    """Read an s3d cube; ``mask_flags`` names the DQ bits that mask a voxel.

    Planes are returned in increasing wavelength (a cube stored with
    decreasing wavelengths is reversed, its header to match). A file without
    a DQ extension (and no MASKEXT) reads with DQ = 0.
    """
    path = Path(path)
    bits = mask_bits(mask_flags)
    with _open(path) as hdul:
        if verify:
            verify_checksums(hdul, str(path))
        primary = hdul[0].header.copy()
        sci_name = str(primary.get("FLUXEXT", "SCI")).strip() or "SCI"
        sci = _hdu(hdul, sci_name, path, "the flux")
        data = _data(sci, sci_name, path)
        if data is None or not sci.is_image or data.ndim != 3:
            shape = None if data is None else np.shape(data)
            raise CubeFormatError(f"{path}: {sci_name} holds data of shape {shape}; an "
                                  "s3d cube is 3-D (wavelength, y, x). For a drizzled image "
                                  "use read_drizzled")
        flux = np.asarray(data, dtype=np.float32)
        header = sci.header.copy()
        unit = _unit(header, path)
        err = _errors(hdul, primary, path, flux.shape, unit)
        dq, dq_name = _quality(hdul, primary, path, flux.shape)
        wave = wavelengths_um(header, hdul, f"{path} HDU {sci_name}")
        wave_table = str(header.get("CTYPE3", "")).strip() == "WAVE-TAB"
        wmap = None
        if "WMAP" in hdul:
            wmap = np.asarray(_data(hdul["WMAP"], "WMAP", path), dtype=np.float32)
            if wmap.shape != flux.shape:
                raise CubeFormatError(f"{path}: HDU WMAP has shape {wmap.shape}, SCI has "
                                      f"{flux.shape}; fix or remove the WMAP extension")
        known = {"PRIMARY", sci.name, dq_name, "WMAP", "WCS-TABLE",
                 str(primary.get("ERREXT", "ERR")).strip()}
        extra = tuple(h.copy() for h in hdul[1:] if h.name not in known)
    flux, err, dq, wmap, wave, header = _orient(flux, err, dq, wmap, wave, header, path)
    try:
        x, y = spaxel_offsets(header, flux.shape[1], flux.shape[2])
    except CubeFormatError as exc:
        raise CubeFormatError(f"{path} HDU SCI: {exc}") from None
    mask = _mask(flux, err, dq, bits)
    if mask.all():
        raise CubeFormatError(f"{path}: every voxel is NaN or flagged (or has ERR <= 0; DQ "
                              f"bits {bits}); the cube has no usable data: check the file, "
                              "its ERR extension or the mask flags")
    log.info("read %s: %s, %.0f%% masked", path, flux.shape, 100 * mask.mean())
    return IFUCube(flux=flux, err=err, dq=dq, mask=mask, wavelength_um=wave, x_arcsec=x,
                   y_arcsec=y, unit=unit, primary_header=primary,
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
