"""FITS: the file opens, every HDU passes astropy's structural verification,
``CHECKSUM``/``DATASUM`` match where present, and expected extensions exist."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from exocube.acquire.quality import QualityReport

if TYPE_CHECKING:
    from astropy.io import fits


def validate_fits(path: Path, expected_extensions: Sequence[str] = ()) -> QualityReport:
    """Quality of one FITS file."""
    from astropy.io import fits  # heavy: imported when a FITS file is checked

    report = QualityReport()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with fits.open(path, memmap=False, lazy_load_hdus=False) as hdul:
                _check_hdus(hdul, report, expected_extensions)
    except (OSError, ValueError, TypeError, IndexError) as exc:
        report.error("fits.open", f"not a readable FITS file: {exc}", penalty=1.0)
        return report
    for w in caught:
        report.flag("fits.warning", str(w.message)[:200], penalty=0.02)
    return report


def _check_hdus(hdul: fits.HDUList, report: QualityReport, expected: Sequence[str]) -> None:
    from astropy.io import fits

    for index, hdu in enumerate(hdul):
        name = hdu.name or f"HDU {index}"
        if "DATASUM" in hdu.header and hdu.verify_datasum() == 0:
            report.error("fits.datasum", f"{name}: DATASUM does not match the data", penalty=1.0)
        if "CHECKSUM" in hdu.header and hdu.verify_checksum() == 0:
            report.error("fits.checksum", f"{name}: CHECKSUM does not match the HDU",
                         penalty=1.0)
        try:
            hdu.verify("exception")
        except fits.VerifyError as exc:
            report.flag("fits.verify", f"{name}: {str(exc)[:200]}", penalty=0.02)
    present = {h.name.upper() for h in hdul}
    for ext in expected:
        if ext.upper() not in present:
            report.error("fits.extension", f"expected extension {ext!r} is missing; "
                         f"present: {sorted(present)}", penalty=0.5)

