"""Models with analytic posteriors, and a fit driver run as a subprocess (SIGKILL tests).

Run as a script: ``python chain_fixtures.py DB_URL FIT_ID N_BLOCKS`` continues the
fit block by block, pausing between blocks so a test can kill it mid-fit.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np
import numpyro
import numpyro.distributions as dist

PRIOR_MU = (0.0, 10.0)
SIGMA = 1.0
WARMUP, BLOCK = 200, 100


def gaussian_mean_model(y):
    """y_i ~ N(mu, SIGMA), mu ~ N(0, 10): conjugate, posterior N(m, s)."""
    mu = numpyro.sample("mu", dist.Normal(*PRIOR_MU))
    numpyro.sample("y", dist.Normal(mu, SIGMA), obs=y)


def gaussian_data(n: int = 40, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(2.0, SIGMA, n).astype(np.float32)


def gaussian_posterior(y: np.ndarray) -> tuple[float, float]:
    """Posterior mean and sd of mu."""
    m0, s0 = PRIOR_MU
    prec = 1 / s0**2 + len(y) / SIGMA**2
    return float((m0 / s0**2 + y.sum() / SIGMA**2) / prec), float(prec**-0.5)


def regression_model(x, y):
    """y = a + b x + N(0, SIGMA), (a, b) ~ N(0, 10^2 I): conjugate Gaussian posterior."""
    coef = numpyro.sample("coef", dist.Normal(0.0, 10.0).expand([2]).to_event(1))
    numpyro.sample("y", dist.Normal(coef[0] + coef[1] * x, SIGMA), obs=y)


def regression_data(n: int = 30, seed: int = 2) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, n).astype(np.float32)
    return x, (0.5 - 1.5 * x + rng.normal(0, SIGMA, n)).astype(np.float32)


def regression_posterior(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mean and covariance of (a, b)."""
    design = np.stack([np.ones_like(x), x], axis=1).astype(np.float64)
    prec = design.T @ design / SIGMA**2 + np.eye(2) / 100.0
    cov = np.linalg.inv(prec)
    return cov @ design.T @ y.astype(np.float64) / SIGMA**2, cov


def gaussian_sampler(seed: int = 0):
    from exocube.ifu.sampling import BlockSampler, SamplerConfig

    cfg = SamplerConfig(num_warmup=WARMUP, block_size=BLOCK, seed=seed)
    return BlockSampler(gaussian_mean_model, (gaussian_data(),), config=cfg)


def gaussian_provenance(seed: int = 0):
    from exocube.ifu.chains import Provenance, data_sha256

    return Provenance(data_sha256({"y": gaussian_data()}), "gaussian_mean",
                      {"mu": ["Normal", *PRIOR_MU]}, seed)


def _drive(url: str, fit_id: str, n_blocks: int) -> None:
    from exocube.ifu.chains import ChainStore, run_fit

    store, sampler = ChainStore(url), gaussian_sampler()
    for k in range(1, n_blocks + 1):
        run_fit(store, sampler, fit_id, n_blocks=k)
        print(f"block {k} committed", flush=True)
        time.sleep(0.4)


if __name__ == "__main__":
    _drive(sys.argv[1], sys.argv[2], int(sys.argv[3]))


def slow_square(payload):
    """A task for the broker tests: log the start, sleep, return x squared."""
    with open(payload["log"], "a") as fh:
        fh.write(f"{payload['x']} {os.getpid()}\n")
    time.sleep(float(payload["sleep"]))
    return {"square": payload["x"] ** 2}


def always_fails(payload):
    """A task whose handler raises every time (the broker's dead-letter test)."""
    raise RuntimeError(f"cube {payload['x']} is unusable")
