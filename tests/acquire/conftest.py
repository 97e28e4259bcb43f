"""Fixtures for acquisition tests: the fault-injecting HTTP server, an FTP
server (pyftpdlib), recorded archive answers, and settings pointing at them."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from astropy.io import fits
from fault_server import FaultServer

from exocube.acquire.options import PSCOMPPARS_COLUMNS
from exocube.config import get_settings

SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
PSCOMPPARS = SHARED_DATA / "nasa_exoplanet_archive_pscomppars_2024-10-15.csv"
PSCOMPPARS_SHA256 = "0bd320b5d3943ff8e57a5cdb9d15683fb309d63928137e32d049df51cd96ad40"


@pytest.fixture(scope="session")
def http_server() -> Iterator[FaultServer]:
    server = FaultServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def server(http_server: FaultServer) -> FaultServer:
    """The session's server with no resources, faults or counters left from other tests."""
    http_server.reset_state()
    return http_server


@pytest.fixture
def fast_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Short backoffs and timeouts so fault tests stay quick."""
    for key, value in {
        "BACKOFF_BASE": "0.01", "BACKOFF_MAX": "0.05", "RETRY_AFTER_MAX": "2",
        "READ_TIMEOUT": "1.0", "CONNECT_TIMEOUT": "1.0", "MAX_ATTEMPTS": "4",
        "BREAKER_COOLDOWN": "30", "REQUESTS_PER_SECOND": "1000", "BURST": "1000",
        "CHUNK_SIZE": "65536", "RESUME_MIN_BYTES": "1024",
    }.items():
        monkeypatch.setenv(f"EXOCUBE_ACQUIRE__{key}", value)
    get_settings.cache_clear()


def pscomppars_bytes() -> bytes:
    if not PSCOMPPARS.is_file():
        pytest.skip(f"real pscomppars snapshot not found at {PSCOMPPARS} (shared/ beside the repo)")
    return PSCOMPPARS.read_bytes()


def fits_bytes(extname: str = "EXTRACT1D", header: dict[str, Any] | None = None,
               corrupt: bool = False) -> bytes:
    """A small FITS file with CHECKSUM/DATASUM, optionally with one data byte flipped."""
    primary = fits.PrimaryHDU()
    for k, v in (header or {}).items():
        primary.header[k] = v
    table = fits.BinTableHDU.from_columns(
        [fits.Column(name="WAVELENGTH", format="D", array=np.linspace(1, 5, 64)),
         fits.Column(name="FLUX", format="D", array=np.ones(64))], name=extname)
    buf = io.BytesIO()
    fits.HDUList([primary, table]).writeto(buf, checksum=True)
    data = bytearray(buf.getvalue())
    if corrupt:
        data[-100] ^= 0xFF
    return bytes(data)


def vcf_gz(n: int = 2000) -> bytes:
    lines = ["##fileformat=VCFv4.1", "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"]
    lines += [f"Y\t{1000 + i * 37}\t.\tA\tG\t100\tPASS\tAC=1" for i in range(n)]
    return gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0)


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def index_line(path: str, data: bytes, md5sum: str | None = None) -> str:
    return f"vol1/ftp/{path}\tfile\t{len(data)}\t2015-06-01 00:00:00\t{md5sum or md5(data)}"


def mast_handler(products: list[dict[str, Any]]):
    """A recorded MAST Mashup API: Mast.Caom.Filtered then Mast.Caom.Products."""

    def handle(form: dict[str, list[str]]) -> tuple[int, str, bytes]:
        req = json.loads(form["request"][0])
        if req["service"] == "Mast.Caom.Filtered":
            data = [{"obsid": "87602009", "obs_id": "jw01366-o004_t001_nirspec_clear-prism",
                     "target_name": "WASP-39", "obs_collection": "JWST"}]
        elif req["service"] == "Mast.Caom.Products":
            data = products
        else:
            return 400, "application/json", b'{"status":"ERROR"}'
        body = {"status": "COMPLETE", "msg": "", "data": data,
                "paging": {"page": 1, "pageSize": len(data), "rows": len(data)}}
        return 200, "application/json", json.dumps(body).encode()

    return handle


__all__ = ["PSCOMPPARS_COLUMNS", "PSCOMPPARS_SHA256"]
