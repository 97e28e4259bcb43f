"""Acquisition throughput against curl, on the same loopback server, same run.

Serves generated files from a temporary directory with an aiohttp static file
server (sendfile, HTTP/1.1 keep-alive) in a separate process, then measures:

1. one large file (default 1 GiB): exocube's HTTPDownloader (streaming to a
   .part file, sha256, size check, atomic rename) vs ``curl -o`` into the same
   directory, alternating which goes first, files removed and dirty pages
   synced before each measurement; median of the paired ratios; target: >= 0.90
   of curl's throughput. Printed per round: wall time and the CPU seconds of the
   client and of the server. Also printed: curl followed by ``sha256sum``, the
   equivalent verified download;
2. many small files (default 2,000 x 16 KiB): exocube with concurrent
   transfers vs sequential curl, both as one curl process per file (what a
   download script loop does) and as one curl process fetching every URL in
   turn over a reused connection; target: >= 2x faster than sequential curl.

The machine may be shared: the load average is printed before and after.
Usage: python benchmarks/acquire.py [--big-mb 1024] [--small-count 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from exocube.acquire.client import make_client
from exocube.acquire.options import AcquireOptions
from exocube.acquire.partial import Expected, PartFile
from exocube.acquire.retry import Politeness
from exocube.acquire.transfer import HTTPDownloader

SERVER = """
import sys
from aiohttp import web
app = web.Application()
app.router.add_static("/", sys.argv[1])
web.run_app(app, host="127.0.0.1", port=int(sys.argv[2]), print=None, access_log=None)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(root: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(root), str(port)])
    for _ in range(200):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.1):
                return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("benchmark server did not start")


def make_files(root: Path, big_mb: int, small_count: int, small_size: int) -> None:
    block = os.urandom(16 << 20)
    with (root / "big.bin").open("wb") as fh:
        for _ in range(big_mb // 16):
            fh.write(block)
    small = root / "small"
    small.mkdir()
    for i in range(small_count):
        (small / f"f{i:05d}.bin").write_bytes(os.urandom(small_size))


def opts(parallel: int) -> AcquireOptions:
    return AcquireOptions(requests_per_second=1e6, burst=10**6, connections_per_host=parallel,
                          max_parallel_files=parallel, read_timeout=120)


async def exocube_fetch(urls: list[tuple[str, Path, int]], parallel: int) -> None:
    o = opts(parallel)
    slots = asyncio.Semaphore(parallel)
    async with make_client(o) as client:
        dl = HTTPDownloader(client, Politeness(o), o.chunk_size, o.resume_min_bytes)

        async def one(url: str, final: Path, size: int) -> None:
            async with slots:
                fetched = await dl.fetch(url, PartFile(final), Expected(size=size))
                fetched.part.promote()

        await asyncio.gather(*(one(*u) for u in urls))


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU seconds of this process (all threads) and its reaped
    children, or of process ``pid`` (the server)."""
    if pid is not None:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    me = os.times()
    return me.user + me.system + me.children_user + me.children_system


def settle(out: Path) -> None:
    """Remove the previous round's files and write back dirty pages, so no round
    pays for another's writeback."""
    for f in out.glob("*_big.bin"):
        f.unlink()
    os.sync()


def measure(fn: Callable[[], object], server_pid: int) -> tuple[float, float, float]:
    """Wall seconds, client CPU seconds and server CPU seconds of ``fn``."""
    cpu0, srv0 = cpu_seconds(), cpu_seconds(server_pid)
    wall = timed(fn)
    return wall, cpu_seconds() - cpu0, cpu_seconds(server_pid) - srv0


def bench_big(url: str, out: Path, size: int, repeats: int, server_pid: int) -> None:
    """Alternate which of curl and exocube goes first; median of the paired ratios.

    Both write to the same directory; files are removed and dirty pages written
    back (``sync``) before every measurement.
    """
    def curl() -> None:
        subprocess.run(["curl", "-sS", "-o", str(out / "curl_big.bin"), f"{url}/big.bin"],
                       check=True)

    def ours() -> None:
        asyncio.run(exocube_fetch([(f"{url}/big.bin", out / "exo_big.bin", size)], 1))

    ratios, verified, rows = [], [], {"curl": [], "exocube": []}
    for i in range(repeats):
        order = [("curl", curl), ("exocube", ours)]
        for name, fn in order if i % 2 == 0 else order[::-1]:
            settle(out)
            rows[name].append(measure(fn, server_pid))
            if name == "curl":
                sum_s = timed(lambda: subprocess.run(
                    ["sha256sum", str(out / "curl_big.bin")], check=True, capture_output=True))
            else:
                assert (out / "exo_big.bin").stat().st_size == size
        (curl_s, curl_cpu, curl_srv), (ours_s, ours_cpu, ours_srv) = (
            rows["curl"][-1], rows["exocube"][-1])
        ratios.append(curl_s / ours_s)
        verified.append((curl_s + sum_s) / ours_s)
        print(f"  large file, round {i + 1} ({'curl' if i % 2 == 0 else 'exocube'} first): "
              f"curl {size / curl_s / 1e6:.0f} MB/s ({curl_s:.2f} s, CPU {curl_cpu:.2f} s, "
              f"server CPU {curl_srv:.2f} s), "
              f"curl + sha256sum {size / (curl_s + sum_s) / 1e6:.0f} MB/s, "
              f"exocube (sha256 + size check + rename) {size / ours_s / 1e6:.0f} MB/s "
              f"({ours_s:.2f} s, CPU {ours_cpu:.2f} s, server CPU {ours_srv:.2f} s)")
    settle(out)
    med = {k: statistics.median(w for w, _, _ in v) for k, v in rows.items()}
    best = {k: min(w for w, _, _ in v) for k, v in rows.items()}
    print(f"large file {size / 2**20:.0f} MiB: throughput ratio exocube/curl = "
          f"{statistics.median(ratios):.2f} (median of {repeats} paired ratios; ratio of "
          f"median times {med['curl'] / med['exocube']:.2f}; ratio of best times "
          f"{best['curl'] / best['exocube']:.2f}; target >= 0.90); "
          f"exocube/(curl + sha256sum) = {statistics.median(verified):.2f}")


def bench_small(url: str, out: Path, count: int, size: int, parallel: int) -> None:
    names = [f"f{i:05d}.bin" for i in range(count)]
    (out / "curl1").mkdir()
    per_file_s = timed(lambda: [subprocess.run(
        ["curl", "-sS", "-o", str(out / "curl1" / n), f"{url}/small/{n}"], check=True)
        for n in names])
    (out / "curl2").mkdir()
    config = out / "curl.cfg"
    config.write_text("".join(f'url = "{url}/small/{n}"\noutput = "{out / "curl2" / n}"\n'
                              for n in names))
    reuse_s = timed(lambda: subprocess.run(["curl", "-sS", "-K", str(config)], check=True))
    (out / "exo").mkdir()
    urls = [(f"{url}/small/{n}", out / "exo" / n, size) for n in names]
    ours_s = timed(lambda: asyncio.run(exocube_fetch(urls, parallel)))
    assert len(list((out / "exo").glob("*.bin"))) == count
    print(f"{count} small files of {size // 1024} KiB: curl one process per file "
          f"{per_file_s:.2f} s, curl one process reusing the connection {reuse_s:.2f} s, "
          f"exocube ({parallel} concurrent) {ours_s:.2f} s")
    print(f"  speed-up vs sequential curl (process per file) = {per_file_s / ours_s:.2f}x, "
          f"vs sequential curl (one process, reused connection) = {reuse_s / ours_s:.2f}x "
          "(target >= 2x)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--big-mb", type=int, default=1024)
    p.add_argument("--small-count", type=int, default=2000)
    p.add_argument("--small-kb", type=int, default=16)
    p.add_argument("--parallel", type=int, default=4)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    if not shutil.which("curl"):
        raise SystemExit("curl is not installed; it is the baseline")
    tmp = Path(tempfile.mkdtemp(prefix="exocube-bench-"))
    server = None
    try:
        serve, out = tmp / "serve", tmp / "out"
        serve.mkdir()
        out.mkdir()
        make_files(serve, args.big_mb, args.small_count, args.small_kb * 1024)
        server, url = start_server(serve)
        print(f"cpus {os.cpu_count()}, load average before {os.getloadavg()}")
        bench_big(url, out, (args.big_mb // 16) * (16 << 20), args.repeats, server.pid)
        bench_small(url, out, args.small_count, args.small_kb * 1024, args.parallel)
        print(f"load average after {os.getloadavg()} (other processes share these cores)")
    finally:
        if server is not None:
            server.terminate()
            server.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
