"""What JAX's persistent compilation cache saves a campaign worker, measured on campaign tasks.

A worker fits one cube after another. Without the cache every fit traces and compiles its
programs again (the optimisation, the Hessian, the warm-up and the block program), since
each fit builds new functions; with it (``exocube.ifu.use_compile_cache``, which the CLI
turns on) the programs of a same-shaped fit are read back from disk. Each arm is a fresh
process fitting ``--tasks`` inject-recover bow-shock tasks in turn (seed ``--seed``, S/N
``--snr``, the 40 x 9 x 9 footprint, no PSF, 4 chains, ``--warmup`` warm-up, blocks of 100
up to ``--max-draws``, optimum starts), each into a temporary SQLite catalogue:

- baseline: no persistent cache;
- cache, cold: an empty cache directory (the first task writes it);
- cache, warm: a second process reading that directory (a worker that starts after
  another has run).

Printed: seconds per task for each arm and the ratio of the mean seconds of tasks after
the first (the steady state of a worker) against the baseline. The machine may be
shared: the load average is printed before and after.
Usage: python benchmarks/ifu_compile.py [--tasks 3] [--seed 16] [--snr 10]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def child(args: argparse.Namespace) -> None:
    from exocube.catalog import upgrade
    from exocube.ifu import FitBudget, FitSettings, inject_recover_spec, use_compile_cache
    from exocube.ifu.campaign import run_inject_recover

    if args.cache:
        use_compile_cache(args.cache)
    spec = inject_recover_spec(
        n=args.tasks, snr=[float(s) for s in args.snr.split(",")], models=("bowshock",),
        seed=args.seed, shape=(40, 9, 9), fit=FitSettings("bowshock", psf_fwhm=0.0),
        budget=FitBudget(warmup=args.warmup, block_size=100, max_draws=args.max_draws,
                         start="optimum"))
    seconds = []
    with tempfile.TemporaryDirectory(prefix="exocube-bench-compile-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'c.sqlite'}"
        upgrade(url)
        for i in range(args.tasks):
            t0 = time.perf_counter()
            run_inject_recover(url, spec, i)
            seconds.append(time.perf_counter() - t0)
    print(json.dumps(seconds))


def arm(args: argparse.Namespace, cache: str | None) -> list[float]:
    cmd = [sys.executable, __file__, "--child", "--tasks", str(args.tasks), "--seed",
           str(args.seed), "--snr", args.snr, "--warmup", str(args.warmup), "--max-draws",
           str(args.max_draws), *(["--cache", cache] if cache else [])]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=3)
    ap.add_argument("--seed", type=int, default=16)
    ap.add_argument("--snr", default="10")
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--max-draws", type=int, default=400)
    ap.add_argument("--cache", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return
    if args.tasks < 2:
        ap.error("--tasks must be at least 2 (the steady state is the tasks after the first)")
    print(f"load average before: {os.getloadavg()}, cores: {os.cpu_count()}")
    with tempfile.TemporaryDirectory(prefix="exocube-bench-jax-cache-") as cache:
        arms = {"baseline, no cache": arm(args, None), "cache, cold": arm(args, cache),
                "cache, warm": arm(args, cache)}
    base = sum(arms["baseline, no cache"][1:]) / (args.tasks - 1)
    for name, secs in arms.items():
        steady = sum(secs[1:]) / (args.tasks - 1)
        print(f"{name:20s}: " + " ".join(f"{s:6.1f}" for s in secs)
              + f" s per task; after the first {steady:.1f} s, {base / steady:.2f}x baseline")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
