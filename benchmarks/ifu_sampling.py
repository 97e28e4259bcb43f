"""Effective samples per second: exocube's NUTS against emcee on the same posterior.

Both samplers draw from the same log density (the priors plus the marginalised-
continuum likelihood of :mod:`exocube.ifu.likelihood`, jit-compiled) on the same
small synthetic bow-shock cube (40 x 9 x 9, Halpha and [NII], S/N 15, no PSF;
four free parameters v_sys, sigma, sb_tip, v_far, and ``--more-free N`` more,
the rest fixed at the truth, or with ``--all-free`` every parameter the default
priors sample, as a campaign fit does), in the same run (emcee's walkers start in
a small ball around the truth; NUTS starts where ``--start`` says, by default at
the best optimum with the Laplace inverse mass matrix):

- exocube: :class:`~exocube.ifu.sampling.BlockSampler`, 4 chains vectorised,
  warm-up then blocks; effective samples = the smallest bulk ESS over the
  parameters (arviz, rank-normalised), as the gate counts them;
- emcee 3 (Foreman-Mackey et al. 2013), the affine-invariant ensemble with
  ``vectorize=True`` and the log density ``jax.vmap``-ed over walkers (emcee's
  fastest setting; a per-walker Python call is slower); effective samples =
  walkers x kept steps / the largest integrated autocorrelation time (emcee's
  ``get_autocorr_time``).

Times exclude compilation (each log density or block is compiled before timing)
and include the warm-up (NUTS) or burn-in (emcee). Target: NUTS >= 10x emcee.

    .venv/bin/python benchmarks/ifu_sampling.py [--draws 1000] [--emcee-steps 4000]
        [--more-free 8 | --all-free] [--start optimum|prior] [--dense] [--fixed-mass]
        [--n-starts 16]
"""

from __future__ import annotations

import argparse
import logging
import os
import time

import numpy as np

from exocube.ifu._jax import jax, jnp
from exocube.ifu.fit import FitSettings, prepare
from exocube.ifu.gate import diagnose
from exocube.ifu.params import check_params
from exocube.ifu.priors import priors_for
from exocube.ifu.sampling import BlockSampler, SamplerConfig, concat_blocks
from exocube.ifu.synth import synthesize
from exocube.ifu.template import build_template

FREE4 = ("v_sys", "sigma", "sb_tip", "v_far")
MORE = ("x0", "y0", "r_tip", "sb_wake", "wake_width", "wake_length", "log_nii_ha",
        "wake_decline")


def problem(free: tuple[str, ...] | None):
    """The benchmark cube's fit problem with ``free`` sampled (None: every parameter the
    default priors sample, as a campaign fits) and the rest fixed at the truth."""
    template = build_template(shape=(40, 9, 9), wave_um=(1.278, 1.3028))
    truth = check_params("bowshock", {"sb_tip": 40.0, "sb_wake": 20.0, "pa_deg": 210.0})
    cube = synthesize("bowshock", truth, template, snr=15.0, seed=1, psf=None).cube
    fixed = {} if free is None else {k: ["fixed", v] for k, v in truth.items() if k not in free}
    priors = priors_for("bowshock", fixed)
    return prepare(cube, FitSettings("bowshock", psf_fwhm=0.0), priors), truth


def run_nuts(prob, draws: int, warmup: int, block: int, start: str,
             dense: bool = False, fixed_mass: bool = False,
             n_starts: int = 16) -> dict[str, float]:
    """Min bulk ESS, warm-up and sampling seconds, leapfrog steps per draw (compilation
    of the block program excluded; with ``start="optimum"`` the warm-up time includes the
    multi-start optimisation, compiled again for the timed call as in every fit) of NUTS."""
    config = SamplerConfig(num_warmup=warmup, block_size=block, seed=1, start=start,
                           dense_mass=dense, adapt_mass_matrix=not fixed_mass,
                           n_starts=n_starts)
    sampler = BlockSampler(prob.model, (prob.likelihood.data,), config=config)
    sampler.warmup()  # compiles the block program (and adapts once, discarded)
    warm: list = []
    t0 = time.perf_counter()
    state = sampler.warmup(on_block=warm.append)
    t1 = time.perf_counter()
    blocks = []
    for _ in range(draws // block):
        b = sampler.sample_block(state)
        blocks.append(b)
        state = b.state
    t2 = time.perf_counter()
    report = diagnose(concat_blocks(blocks))
    w_steps = np.concatenate([b.num_steps for b in warm], axis=1)
    s_steps = np.concatenate([b.num_steps for b in blocks], axis=1)
    first = min(100, w_steps.shape[1])
    inv_mass = np.asarray(next(iter(state.adapt_state.inverse_mass_matrix.values())))
    if dense:  # (chain, d, d): its diagonal
        inv_mass = np.diagonal(inv_mass, axis1=1, axis2=2)
    return {"ess": min(p.ess_bulk for p in report.parameters), "warmup_s": t1 - t0,
            "sample_s": t2 - t1, "steps_warm_first": float(w_steps[:, :first].mean()),
            "lockstep_warm_first": float(w_steps[:, :first].max(axis=0).mean()),
            "steps_warm": float(w_steps.mean()), "steps": float(s_steps.mean()),
            "lockstep": float(s_steps.max(axis=0).mean()), "max_steps": int(w_steps.max()),
            "step_size": float(np.mean(state.adapt_state.step_size)),
            "inv_mass": np.asarray(inv_mass).mean(axis=0)}


def eval_costs(prob, walkers: int) -> tuple[float, float]:
    """(seconds of one potential+gradient at one point, seconds of one log density per
    walker in a batch of ``walkers``), both jit-compiled and warmed up."""
    from numpyro.infer.util import initialize_model

    info = initialize_model(jax.random.PRNGKey(0), prob.model,
                            model_args=(prob.likelihood.data,))
    z = info.param_info.z
    vg = jax.jit(jax.value_and_grad(info.potential_fn))
    logp = log_density(prob)
    theta = jnp.asarray(np.tile([prob.priors[n].centre() for n in prob.free], (walkers, 1)),
                        jnp.float32)

    def per_call(fn, x, n=300):
        jax.block_until_ready(fn(x))
        t = time.perf_counter()
        for _ in range(n):
            out = fn(x)
        jax.block_until_ready(out)
        return (time.perf_counter() - t) / n

    return per_call(vg, z), per_call(logp, theta) / walkers


def log_density(prob):
    """The same unnormalised log posterior, on the free parameters (``prob.free`` order);
    -inf outside the priors' supports (numpyro's log_prob does not check them)."""
    priors = [prob.priors[n] for n in prob.free]
    data = prob.likelihood.data

    def logp(theta):
        draw = dict(zip(prob.free, theta, strict=True))
        lp = 0.0
        for p in priors:
            d = p.distribution()
            x = draw[p.name]
            lp = lp + jnp.where(d.support(x), d.log_prob(x), -jnp.inf)
        cube = prob.forward._cube(prob.values(draw))
        return lp + prob.likelihood.log_likelihood(cube, data)

    return jax.jit(jax.vmap(logp))


def run_emcee(prob, truth, steps: int, burn: int,
              walkers: int) -> tuple[float, float, float]:
    """(effective samples, seconds, kept steps per autocorrelation time) of emcee; emcee
    trusts its autocorrelation estimate when the last is at least 50."""
    import emcee

    logp = log_density(prob)

    def batch(thetas):
        out = np.asarray(logp(jnp.asarray(thetas, jnp.float32)), np.float64)
        return np.where(np.isfinite(out), out, -np.inf)

    rng = np.random.default_rng(2)
    centre = np.array([truth[n] for n in prob.free])
    start = centre + 0.01 * (np.abs(centre) + 1.0) * rng.normal(0, 1, (walkers, centre.size))
    batch(start)  # compile
    sampler = emcee.EnsembleSampler(walkers, centre.size, batch, vectorize=True)
    sampler.random_state = np.random.RandomState(7).get_state()
    t0 = time.perf_counter()
    sampler.run_mcmc(start, steps, progress=False)
    seconds = time.perf_counter() - t0
    tau = sampler.get_autocorr_time(discard=burn, quiet=True)
    kept = steps - burn
    return walkers * kept / float(np.max(tau)), seconds, kept / float(np.max(tau))


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--draws", type=int, default=1000, help="NUTS draws per chain")
    ap.add_argument("--warmup", type=int, default=500)
    ap.add_argument("--block", type=int, default=250)
    ap.add_argument("--emcee-steps", type=int, default=4000)
    ap.add_argument("--emcee-burn", type=int, default=1000)
    ap.add_argument("--walkers", type=int, default=32)
    ap.add_argument("--more-free", type=int, default=0, choices=range(len(MORE) + 1),
                    help=f"also free the first N of {', '.join(MORE)}")
    ap.add_argument("--all-free", action="store_true",
                    help="sample every parameter the default priors sample (a campaign fit)")
    ap.add_argument("--start", choices=("optimum", "prior"), default="optimum",
                    help="where NUTS chains start (SamplerConfig.start)")
    ap.add_argument("--dense", action="store_true",
                    help="a dense mass matrix (SamplerConfig.dense_mass)")
    ap.add_argument("--fixed-mass", action="store_true",
                    help="keep the Laplace inverse mass matrix (adapt_mass_matrix=False)")
    ap.add_argument("--n-starts", type=int, default=16,
                    help="optimisations from prior points before NUTS (SamplerConfig.n_starts)")
    args = ap.parse_args()
    prob, truth = problem(None if args.all_free else FREE4 + MORE[:args.more_free])
    print(f"cube {prob.cube.shape}, {prob.likelihood.channels.size} channels x "
          f"{prob.likelihood.spaxel_iy.size} spaxels, free {', '.join(prob.free)}; "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; cpus {os.cpu_count()}")
    t_grad, t_logp = eval_costs(prob, args.walkers)
    print(f"one potential+gradient (1 point) {t_grad * 1e3:.3f} ms; one log density "
          f"(per walker, batch of {args.walkers}) {t_logp * 1e3:.4f} ms; ratio "
          f"{t_grad / t_logp:.1f}")
    nuts = run_nuts(prob, args.draws, args.warmup, args.block, args.start, args.dense,
                    args.fixed_mass, args.n_starts)
    ess_n, t_n = nuts["ess"], nuts["warmup_s"] + nuts["sample_s"]
    print(f"NUTS warm-up {nuts['warmup_s']:.1f} s, sampling {nuts['sample_s']:.1f} s; "
          f"leapfrog steps per draw per chain: first 100 warm-up draws "
          f"{nuts['steps_warm_first']:.1f} (4 chains in lockstep: "
          f"{nuts['lockstep_warm_first']:.1f}), warm-up {nuts['steps_warm']:.1f}, sampling "
          f"{nuts['steps']:.1f} (lockstep {nuts['lockstep']:.1f}); deepest tree "
          f"{nuts['max_steps']} steps; adapted step size {nuts['step_size']:.3f}, inverse "
          f"mass diagonal (unconstrained) "
          f"{' '.join(f'{x:.2g}' for x in nuts['inv_mass'])}")
    ess_e, t_e, n_tau = run_emcee(prob, truth, args.emcee_steps, args.emcee_burn,
                                  args.walkers)
    print(f"emcee: kept steps / largest autocorrelation time = {n_tau:.0f} (emcee trusts "
          "the estimate at >= 50)")
    print(f"{'sampler':<30} {'ESS (min)':>10} {'seconds':>9} {'ESS/s':>9}")
    label = (f"NUTS 4 chains, {args.start}{', dense' if args.dense else ''}"
             f"{', fixed mass' if args.fixed_mass else ''}")
    print(f"{label:<30} {ess_n:>10.0f} {t_n:>9.1f} {ess_n / t_n:>9.1f}")
    print(f"{'  sampling only (no warm-up)':<30} {ess_n:>10.0f} {nuts['sample_s']:>9.1f} "
          f"{ess_n / nuts['sample_s']:>9.1f}")
    print(f"{'emcee ' + str(args.walkers) + ' walkers':<30} {ess_e:>10.0f} {t_e:>9.1f} "
          f"{ess_e / t_e:>9.1f}")
    ratio = (ess_n / t_n) / (ess_e / t_e)
    print(f"NUTS vs emcee, effective samples per second: {ratio:.1f}x (target >= 10x), "
          f"{(ess_n / nuts['sample_s']) / (ess_e / t_e):.1f}x without NUTS warm-up; "
          f"load average after {' '.join(f'{x:.2f}' for x in os.getloadavg())}")

if __name__ == "__main__":
    main()
