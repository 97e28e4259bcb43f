"""Fixtures for acquisition tests: the fault-injecting HTTP server, an FTP
server (pyftpdlib), recorded archive answers, and settings pointing at them."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import io
import json
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import trustme
from astropy.io import fits
from fault_server import FaultServer

from exocube.acquire.options import PSCOMPPARS_COLUMNS
from exocube.acquire.run import Quotas, destination_for, plan_sources, run_acquisition, start_run
from exocube.catalog import db as catalog_db
from exocube.config import get_settings
from exocube.data import PSCOMPPARS_SHA256, PSCOMPPARS_SNAPSHOT

PSCOMPPARS = PSCOMPPARS_SNAPSHOT


@pytest.fixture(scope="session")
def http_server() -> Iterator[FaultServer]:
    server = FaultServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def tls_ca(tmp_path_factory: pytest.TempPathFactory) -> tuple[trustme.CA, Path]:
    """A throwaway certificate authority and its PEM file."""
    ca = trustme.CA()
    pem = tmp_path_factory.mktemp("tls") / "ca.pem"
    ca.cert_pem.write_to_path(str(pem))
    return ca, pem


@pytest.fixture(scope="session")
def https_server_session(tls_ca: tuple[trustme.CA, Path]) -> Iterator[FaultServer]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls_ca[0].issue_cert("127.0.0.1").configure_cert(context)
    server = FaultServer(tls=context)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def https_server(https_server_session: FaultServer, tls_ca: tuple[trustme.CA, Path],
                 monkeypatch: pytest.MonkeyPatch) -> FaultServer:
    """The HTTPS server, trusted by clients made in the test (``SSL_CERT_FILE``)."""
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_ca[1]))
    https_server_session.reset_state()
    return https_server_session


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


def point_at(monkeypatch: pytest.MonkeyPatch, values: dict[str, str]) -> None:
    """Set ``EXOCUBE_ACQUIRE__...`` variables and re-read the settings."""
    for key, value in values.items():
        monkeypatch.setenv("EXOCUBE_ACQUIRE__" + key.upper(), value)
    get_settings.cache_clear()


@pytest.fixture
def archives(server: FaultServer, monkeypatch: pytest.MonkeyPatch, fast_settings: None
             ) -> FaultServer:
    """Recorded answers of every source on the loopback server, settings pointing there."""
    csv = pscomppars_bytes()
    server.add("/TAP/sync", csv, content_type="text/csv")
    x1d = fits_bytes("EXTRACT1D")
    server.add("/api/v0.1/Download/file", x1d, content_type="application/fits")
    server.handlers["/api/v0/invoke"] = mast_handler([
        {"obsid": "87602010", "productFilename": "jw01366004001_04101_00001-seg001_nrs1_x1d.fits",
         "dataURI": "mast:JWST/product/jw01366004001_04101_00001-seg001_nrs1_x1d.fits",
         "size": len(x1d), "productSubGroupDescription": "X1D", "productType": "SCIENCE"},
        {"obsid": "87602010", "productFilename": "jw01366004001_04101_00001-seg001_nrs1_cal.fits",
         "dataURI": "mast:JWST/product/jw01366004001_04101_00001-seg001_nrs1_cal.fits",
         "size": 999, "productSubGroupDescription": "CAL", "productType": "SCIENCE"},
    ])
    phx = fits_bytes("SPEC", {"PHXTEFF": 5800.0, "PHXLOGG": 4.5, "PHXM_H": 0.0})
    lib = "PHOENIX-ACES-AGSS-COND-2011"
    server.add(f"/phoenix/{lib}/Z-0.0/lte05800-4.50-0.0.{lib}-HiRes.fits", phx)
    server.add(f"/phoenix/WAVE_{lib}.fits", fits_bytes("WAVE"))
    server.add("/kegg/list/pathway",
               b"map00010\tGlycolysis / Gluconeogenesis\nmap00020\tCitrate cycle (TCA cycle)\n"
               b"map99999\tWithdrawn entry\n")
    for entry in ("map00010", "map00020"):
        server.add(f"/kegg/get/{entry}",
                   f"ENTRY       {entry}                      Pathway\nNAME        x\n///\n"
                   .encode(), content_type="text/plain")
    vcf = vcf_gz()
    tbi = gzip.compress(b"TBI\x01" + bytes(200), mtime=0)
    rel = "release/20130502"
    server.add(f"/vol1/ftp/{rel}/ALL.chrY.phase3.genotypes.vcf.gz", vcf)
    server.add(f"/vol1/ftp/{rel}/ALL.chrY.phase3.genotypes.vcf.gz.tbi", tbi)
    server.add("/vol1/ftp/current.tree", "\n".join([
        f"vol1/ftp/{rel}\tdirectory\t4096\t2015-06-01\t",
        index_line(f"{rel}/ALL.chrY.phase3.genotypes.vcf.gz", vcf),
        index_line(f"{rel}/ALL.chrY.phase3.genotypes.vcf.gz.tbi", tbi),
        index_line(f"{rel}/ALL.chr1.phase3.genotypes.vcf.gz", b"not selected"),
    ]).encode() + b"\n")
    server.add("/rocke3d/", b'<html><body><a href="../">../</a>'
               b'<a href="ANN1850.aij.nc">ANN1850.aij.nc</a><a href="README.txt">README</a>'
               b"</body></html>", content_type="text/html")
    server.add("/rocke3d/ANN1850.aij.nc", netcdf_bytes())
    server.add("/paleo/geocarb3-co2.txt", b"# NOAA template\n# Study: GEOCARB III\n"
               b"age_myr co2_ppm\n0 280\n100 1200\n200 1700\n300 500\n400 3000\n570 6000\n")
    data = Path(__file__).resolve().parent / "data"
    server.add("/emc/PREM/PREM_1s.csv", data / "iris_emc" / "PREM_1s.csv",
               content_type="text/csv")
    server.add("/pypi/httpx/0.28.1/json", data / "pypi" / "httpx-0.28.1.json",
               content_type="application/json")
    point_at(monkeypatch, {
        "iris_emc__base_url": server.url + "/emc",
        "pypi__base_url": server.url,
        "pypi__packages": json.dumps(["httpx==0.28.1"]),
        "nasa_exoplanet_archive__base_url": server.url,
        "mast__base_url": server.url,
        "phoenix__base_url": server.url + "/phoenix",
        # a separate host name, so the 3 requests/s KEGG limit throttles only KEGG
        "kegg__base_url": server.url.replace("127.0.0.1", "localhost") + "/kegg",
        "genomes1000__base_url": server.url + "/vol1/ftp",
        "gcm_outputs__listings": json.dumps([server.url + "/rocke3d/"]),
        "geocarb__url": server.url + "/paleo/geocarb3-co2.txt",
    })
    return server


def netcdf_bytes() -> bytes:
    """A small CF-style GCM output file."""
    import tempfile

    import netCDF4

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.nc"
        with netCDF4.Dataset(path, "w") as ds:
            ds.Conventions = "CF-1.8"
            ds.createDimension("lat", 4)
            ds.createDimension("lon", 8)
            lat = ds.createVariable("lat", "f8", ("lat",))
            lat.units = "degrees_north"
            lat[:] = [-67.5, -22.5, 22.5, 67.5]
            lon = ds.createVariable("lon", "f8", ("lon",))
            lon.units = "degrees_east"
            lon[:] = np.arange(8) * 45.0
            ts = ds.createVariable("ts", "f4", ("lat", "lon"))
            ts.units = "K"
            ts.standard_name = "surface_temperature"
            ts[:] = 280.0
        return path.read_bytes()


def run_sources(dest: Path, sources: list[str] | None = None, quotas: Quotas | None = None
                ) -> dict[str, Any]:
    """Plan and run an acquisition of ``sources`` (all when ``None``) into ``dest``."""
    from exocube.acquire.run import (
        Quotas,
    )

    settings = get_settings()
    plan = asyncio.run(plan_sources(settings, sources))
    destination = destination_for(settings, str(dest))
    quotas = quotas or Quotas()
    run_id = start_run(settings, plan, destination, quotas, {"sources": sources})
    return asyncio.run(run_acquisition(settings, plan, destination, quotas, run_id))


@pytest.fixture
def migrated(archives: FaultServer) -> str:
    """The archives fixture's catalogue, migrated."""
    url = get_settings().database_url
    catalog_db.upgrade(url)
    return url
