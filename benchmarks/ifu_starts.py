"""Where NUTS chains start, measured on campaign tasks: prior points (the baseline) against
the best of 16 posterior optima, on the same synthetic bow-shock cubes in the same run.

For each of ``--tasks`` inject-recover tasks (seed ``--seed``, S/N cycling through
``--snr``, the package's 40 x 9 x 9 footprint, no PSF) both starts fit the bow shock with
4 chains, ``--warmup`` warm-up draws and blocks of 100 until the R-hat/ESS gate holds or
``--max-draws``. Printed per task and start: passed or not, draws per chain, the worst
R-hat, seconds, and (optimum) the gaps in nats to the other optima found; then the
number of tasks that passed with each start. Each fit goes into a temporary SQLite
catalogue. The machine may be shared: the load average is printed before and after.
Usage: python benchmarks/ifu_starts.py [--tasks 3] [--seed 16] [--snr 10,20]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from exocube.catalog import upgrade
from exocube.ifu import FitBudget, FitSettings, inject_recover_spec
from exocube.ifu.campaign import run_inject_recover


def one(url: str, start: str, args: argparse.Namespace, index: int) -> bool:
    snr = [float(s) for s in args.snr.split(",")]
    spec = inject_recover_spec(
        n=-(-args.tasks // len(snr)), snr=snr, models=("bowshock",),
        seed=args.seed, shape=(40, 9, 9), fit=FitSettings("bowshock", psf_fwhm=0.0),
        budget=FitBudget(warmup=args.warmup, block_size=100, max_draws=args.max_draws,
                         start=start))
    t0 = time.perf_counter()
    res = run_inject_recover(url, spec, index)
    fit = res["fits"]["bowshock"]
    worst = max(fit["gate"], key=lambda p: p["rhat"] or 0.0)
    gaps = "" if fit["start"] is None else "  optima gaps " + " ".join(
        f"{o['delta']:.1f}" for o in fit["start"]["optima"][1:6])
    print(f"task {index} S/N {res['snr']:g} {start:8s}: "
          f"{'passed' if fit['converged'] else 'NOT converged'} at {fit['draws_per_chain']} "
          f"draws, worst R-hat {worst['rhat']:.3f} ({worst['name']}), "
          f"{time.perf_counter() - t0:.0f} s{gaps}", flush=True)
    return bool(fit["converged"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=3)
    ap.add_argument("--seed", type=int, default=16)
    ap.add_argument("--snr", default="10,20")
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--max-draws", type=int, default=1000)
    args = ap.parse_args()
    print(f"load average before: {os.getloadavg()}, cores: {os.cpu_count()}")
    passed = {"prior": 0, "optimum": 0}
    with tempfile.TemporaryDirectory(prefix="exocube-bench-starts-") as tmp:
        for start in passed:
            url = f"sqlite:///{Path(tmp) / f'{start}.sqlite'}"
            upgrade(url)
            passed[start] = sum(one(url, start, args, i) for i in range(args.tasks))
    print(f"baseline prior starts : {passed['prior']} of {args.tasks} tasks passed the gate")
    print(f"optimum starts        : {passed['optimum']} of {args.tasks} tasks passed the gate")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
