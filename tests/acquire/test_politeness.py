"""Backoff, Retry-After, token bucket and circuit breaker, and the sources' URL
layouts and parsers."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from exocube.acquire.breaker import CircuitBreaker, CircuitOpenError
from exocube.acquire.ratelimit import HostLimiter
from exocube.acquire.retry import Backoff, is_retryable_status, parse_retry_after
from exocube.acquire.sources import gcm_outputs, genomes1000, kegg, phoenix
from exocube.errors import ConfigError, InputDataError


def test_retryable_statuses() -> None:
    assert all(is_retryable_status(c) for c in (408, 425, 429, 500, 503, 599))
    assert not any(is_retryable_status(c) for c in (400, 401, 403, 404, 410, 416))


def test_retry_after_seconds_and_http_date() -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(format_datetime(now + timedelta(seconds=30)), now) == 30.0
    assert parse_retry_after("garbage") is None and parse_retry_after(None) is None


def test_backoff_is_capped_jittered_and_obeys_retry_after() -> None:
    b = Backoff(base=1.0, cap=8.0, retry_after_cap=100.0)
    delays = [b.delay(10) for _ in range(200)]
    assert max(delays) <= 8.0 and min(delays) >= 0.0 and len(set(delays)) > 150
    assert all(b.delay(1) <= 1.0 for _ in range(50))
    assert b.delay(3, retry_after=42.0) == 42.0
    assert b.delay(3, retry_after=1e6) == 100.0


def test_token_bucket_limits_rate_per_host() -> None:
    limiter = HostLimiter(rate=1000, burst=1000, connections=4,
                          host_rates={"rest.kegg.jp": 20.0})

    async def hits(host: str, n: int) -> float:
        t0 = time.monotonic()
        for _ in range(n):
            async with limiter.slot(host):
                pass
        return time.monotonic() - t0

    # 11 requests at 20/s with a burst of 1 need at least 10 intervals of 50 ms
    assert asyncio.run(hits("rest.kegg.jp", 11)) >= 0.45
    assert limiter._bucket("rest.kegg.jp").rate == 20.0
    assert limiter._bucket("other.example").rate == 1000  # the default, unthrottled here


def test_connection_cap_per_host() -> None:
    limiter = HostLimiter(rate=1e6, burst=10**6, connections=2)
    active, peak = 0, 0

    async def one() -> None:
        nonlocal active, peak
        async with limiter.slot("h"):
            active += 1
            peak = max(peak, active)
            await asyncio.sleep(0.01)
            active -= 1

    async def many() -> None:
        await asyncio.gather(*(one() for _ in range(10)))

    asyncio.run(many())
    assert peak == 2


def test_breaker_opens_half_opens_and_closes() -> None:
    br = CircuitBreaker(threshold=3, cooldown=0.05)
    for _ in range(2):
        br.check("h")
        br.failure("h")
    br.check("h")
    br.failure("h")
    assert br.state("h") == "open"
    with pytest.raises(CircuitOpenError, match="3 consecutive failures"):
        br.check("h")
    br.check("other")  # other hosts unaffected
    time.sleep(0.06)
    br.check("h")  # the one half-open probe
    with pytest.raises(CircuitOpenError):
        br.check("h")  # no second probe while the first is out
    br.success("h")
    assert br.state("h") == "closed"


def test_phoenix_grid_url_layout() -> None:
    base, lib = "https://x/HiResFITS", "PHOENIX-ACES-AGSS-COND-2011"
    assert phoenix.spectrum_url(base, lib, 5800, 4.5, 0.0) == (
        f"{base}/{lib}/Z-0.0/lte05800-4.50-0.0.{lib}-HiRes.fits")
    assert phoenix.spectrum_url(base, lib, 3000, 5.0, -1.5).endswith(
        "/Z-1.5/lte03000-5.00-1.5.PHOENIX-ACES-AGSS-COND-2011-HiRes.fits")
    assert "/Z+0.5/lte10200-2.00+0.5." in phoenix.spectrum_url(base, lib, 10200, 2.0, 0.5)
    with pytest.raises(ConfigError, match=r"teff=7100.*nearest"):
        phoenix.spectrum_url(base, lib, 7100, 4.5, 0.0)
    with pytest.raises(ConfigError, match="feh"):
        phoenix.spectrum_url(base, lib, 5800, 4.5, 0.3)


def test_kegg_list_and_1000genomes_index_and_listing_parsers() -> None:
    assert kegg.parse_list("path:map00010\tGlycolysis\nmap00020\tTCA\n\n") == [
        "path:map00010", "map00020"]
    index = ("vol1/ftp/release/a.vcf.gz\tfile\t120\t2015-01-01\t" + "ab" * 16 + "\n"
             "vol1/ftp/release\tdirectory\t4096\t2015-01-01\t\n")
    assert genomes1000.parse_index(index, "/vol1/ftp") == [("release/a.vcf.gz", 120, "ab" * 16)]
    assert genomes1000.parse_index(index, "/mirror/vol1/ftp")[0][0] == "release/a.vcf.gz"
    with pytest.raises(InputDataError, match="expected 5"):
        genomes1000.parse_index("vol1/ftp/x\tfile\n", "/vol1/ftp")
    html = '<a href="../">up</a><a href="run1/">run1/</a><a href="a%20b.nc">a</a>'
    assert [e["name"] for e in gcm_outputs.parse_listing(html, "http://h/d/")] == ["a b.nc"]
    manifest = '[{"name": "x.nc", "size": 10, "sha256": "ab"}]'
    assert gcm_outputs.parse_listing(manifest, "http://h/d/m.json") == [
        {"url": "http://h/d/x.nc", "name": "x.nc", "size": 10, "sha256": "ab"}]
