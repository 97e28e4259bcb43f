"""NUTS in blocks, with a sampler state that can be saved and continued exactly.

A model is any numpyro model function plus its positional and keyword data.
:class:`BlockSampler` runs the warm-up once (step size and a diagonal inverse mass
matrix adapted by numpyro's windowed scheme), then draws blocks of ``block_size``
draws per chain. After each block it hands back the numpyro ``last_state`` (the
``HMCState``: position, potential energy and gradient, the adapted step size and
inverse mass matrix in ``adapt_state``, and each chain's RNG key); feeding that
state back as ``post_warmup_state`` continues the Markov chain exactly where it
stopped. :func:`encode_state` / :func:`decode_state` turn the state into bytes
(an ``.npz`` of its leaves, no pickle) so it can be stored with the block.

Chains run ``vectorized`` by default: on CPU the chains are one batched XLA
computation on one core, which is faster than ``sequential`` on a shared machine
and bitwise reproducible for a fixed ``num_chains``. ``sequential`` is available.

``start="prior"`` (the default) starts the chains at random points of the prior
(numpyro's ``init_to_uniform``); ``start="optimum"`` starts them at Laplace draws around
the best of ``n_starts`` local optima of the posterior, begins the warm-up with the
Laplace covariance there as the inverse mass matrix, and records what the optimisation
found in ``BlockSampler.start_report`` (:mod:`exocube.ifu.optima`). With
``adapt_mass_matrix=False`` that Laplace matrix is kept for the whole fit and the warm-up
adapts the step size only (so it can be much shorter).
"""

from __future__ import annotations

import io
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax
from numpyro.infer import NUTS

from exocube.errors import ExocubeError
from exocube.ifu.gate import GateConfig, GateReport, diagnose
from exocube.ifu.optima import StartReport, optimum_starts

log = logging.getLogger(__name__)
for _noisy in ("jax._src.xla_bridge", "jax._src.dispatch"):
    logging.getLogger(_noisy).setLevel(logging.WARNING)

ChainMethod = Literal["vectorized", "sequential"]
Start = Literal["prior", "optimum"]


class SamplerConfigError(ExocubeError, ValueError):
    """A sampler setting is out of range."""


class SamplerStateError(ExocubeError):
    """A saved sampler state cannot be read or does not belong to this model."""


@dataclass(frozen=True)
class SamplerConfig:
    """NUTS settings: chains, warm-up, block size, seed and the tree controls."""

    num_chains: int = 4
    num_warmup: int = 500
    block_size: int = 250
    seed: int = 0
    chain_method: ChainMethod = "vectorized"
    target_accept_prob: float = 0.8
    max_tree_depth: int = 10
    dense_mass: bool = False
    start: Start = "prior"
    n_starts: int = 16
    adapt_mass_matrix: bool = True

    def __post_init__(self) -> None:
        if self.num_chains < 4:
            raise SamplerConfigError(
                f"num_chains={self.num_chains}: the gate needs at least 4 chains"
            )
        if self.num_warmup < 1 or self.block_size < 1:
            raise SamplerConfigError(
                f"num_warmup={self.num_warmup}, block_size={self.block_size}: both must be >= 1"
            )
        if self.num_warmup % self.block_size:
            raise SamplerConfigError(
                f"num_warmup={self.num_warmup} is not a multiple of block_size="
                f"{self.block_size}: the warm-up runs in whole blocks"
            )
        if self.chain_method not in ("vectorized", "sequential"):
            raise SamplerConfigError(
                f"chain_method={self.chain_method!r}: expected 'vectorized' or 'sequential'"
            )
        if not 0.0 < self.target_accept_prob < 1.0:
            raise SamplerConfigError(
                f"target_accept_prob={self.target_accept_prob}: expected in (0, 1)"
            )
        if not 1 <= self.max_tree_depth <= 15:
            raise SamplerConfigError(f"max_tree_depth={self.max_tree_depth}: expected 1..15")
        if not self.adapt_mass_matrix and self.start != "optimum":
            raise SamplerConfigError(
                "adapt_mass_matrix=False keeps the Laplace inverse mass matrix of "
                f"start='optimum'; with start={self.start!r} there is none to keep"
            )
        if self.start not in ("prior", "optimum") or self.n_starts < 1:
            raise SamplerConfigError(
                f"start={self.start!r}, n_starts={self.n_starts}: expected 'prior' or "
                "'optimum' and n_starts >= 1"
            )

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass
class Block:
    """One block: per-site draws (chain, draw, *shape), divergences, the state after it,
    and (for a block just drawn, not one read back from storage) the leapfrog steps of
    each transition (chain, draw)."""

    draws: dict[str, np.ndarray]
    diverging: np.ndarray
    state: Any
    num_steps: np.ndarray | None = None

    @property
    def n_draws(self) -> int:
        return int(self.diverging.shape[1])


@dataclass
class ConvergenceRun:
    """What :meth:`BlockSampler.until_converged` produced (the report may fail the gate)."""

    blocks: list[Block]
    report: GateReport
    state: Any
    stopped_by: str
    draws: dict[str, np.ndarray] = field(default_factory=dict)


class BlockSampler:
    """NUTS on ``model(*model_args, **model_kwargs)`` drawn block by block.

    The model data must be arrays (a pytree of arrays); settings that are not arrays
    belong in the model function (``functools.partial``). Each block is one compiled
    ``lax.scan`` of ``block_size`` NUTS transitions over the chains (compiled once per
    sampler, so a block costs only its gradient evaluations), mapped from
    unconstrained to constrained values (and deterministic sites) by the kernel's
    ``postprocess_fn``, as numpyro's ``MCMC.run`` does.
    """

    def __init__(
        self,
        model: Callable[..., Any],
        model_args: tuple = (),
        model_kwargs: Mapping[str, Any] | None = None,
        config: SamplerConfig | None = None,
    ) -> None:
        self.model = model
        self.model_args = tuple(model_args)
        self.model_kwargs = dict(model_kwargs or {})
        self.config = config or SamplerConfig()
        self._kernel = self._make_kernel()  # one-chain transitions, vmapped here
        self._template: Any = None
        self._block_fn: Callable[..., Any] | None = None
        self.start_report: StartReport | None = None  # set by an "optimum" warm-up

    def _make_kernel(self, inverse_mass_matrix: Any = None) -> NUTS:
        c = self.config
        return NUTS(
            self.model, target_accept_prob=c.target_accept_prob,
            max_tree_depth=c.max_tree_depth, dense_mass=c.dense_mass,
            inverse_mass_matrix=inverse_mass_matrix,
            adapt_mass_matrix=c.adapt_mass_matrix,
        )

    def warmup(self, on_block: Callable[[Block], None] | None = None) -> Any:
        """Initialise the chains from ``config.seed`` and adapt; the state after warm-up.

        The warm-up runs as ``num_warmup / block_size`` calls of the same compiled
        block (NUTS adapts while the state's iteration counter is below
        ``num_warmup``, numpyro's windowed step-size and mass-matrix scheme), so a
        fit compiles once; the warm-up draws are discarded (``on_block`` sees each
        warm-up block first, e.g. to count its leapfrog steps).
        """
        c = self.config
        t0 = time.perf_counter()
        keys = jax.random.split(jax.random.PRNGKey(c.seed), c.num_chains)
        init = inverse_mass = None
        if c.start == "optimum":
            start = optimum_starts(self.model, self.model_args, self.model_kwargs,
                                   c.num_chains, c.seed, n_starts=c.n_starts)
            init, self.start_report = start.init, start.report
            inverse_mass = start.inverse_mass_matrix(c.dense_mass)
            log.info("chains start at the best of %d optima found from %d starts",
                     len(self.start_report.optima), c.n_starts)
        state = self._make_kernel(inverse_mass).init(
            keys, c.num_warmup, init, self.model_args, self.model_kwargs
        )
        for _ in range(c.num_warmup // c.block_size):
            block = self.sample_block(state)
            if on_block is not None:
                on_block(block)
            state = block.state
        log.info("warm-up of %d chains x %d took %.1f s", c.num_chains, c.num_warmup,
                 time.perf_counter() - t0)
        return state

    def sample_block(self, state: Any) -> Block:
        """``block_size`` draws per chain continuing from ``state``."""
        self._check_state(state)
        if self._block_fn is None:
            self._block_fn = self._compile_block()
        last, draws, diverging, steps = self._block_fn(state, self.model_args,
                                                       self.model_kwargs)
        out = {k: np.asarray(v) for k, v in draws.items()}
        return Block(out, np.asarray(diverging), last, np.asarray(steps))

    def _check_state(self, state: Any) -> None:
        keys = np.shape(state.rng_key)
        if len(keys) != 2 or keys[0] != self.config.num_chains:
            raise SamplerStateError(
                f"state has RNG keys of shape {keys}; this sampler runs "
                f"{self.config.num_chains} chains (expected ({self.config.num_chains}, 2))"
            )
        if getattr(self._kernel, "_sample_fn", None) is None:
            self.state_template()  # initialises the kernel's transition function

    def _compile_block(self) -> Callable[..., Any]:
        kernel, length = self._kernel, self.config.block_size

        def one_chain(state, args, kwargs):
            def step(s, _):
                s = kernel.sample(s, args, kwargs)
                return s, (s.z, s.diverging, s.num_steps)

            last, (zs, div, steps) = jax.lax.scan(step, state, None, length=length)
            post = kernel.postprocess_fn(args, kwargs)
            return last, jax.vmap(post)(zs), div, steps

        if self.config.chain_method == "vectorized":
            mapped = jax.vmap(one_chain, in_axes=(0, None, None))
        else:
            def mapped(states, args, kwargs):
                return jax.lax.map(lambda s: one_chain(s, args, kwargs), states)
        return jax.jit(mapped)

    def until_converged(
        self,
        state: Any,
        gate: GateConfig | None = None,
        max_draws: int = 10_000,
        max_seconds: float | None = None,
        previous: list[Block] | None = None,
        on_block: Callable[[Block], None] | None = None,
    ) -> ConvergenceRun:
        """Draw blocks from ``state`` until the gate holds or a budget ends.

        ``max_draws`` counts draws per chain including ``previous`` blocks;
        ``max_seconds`` bounds the wall time of this call; ``on_block`` is called
        with each new block (e.g. to store it) before the gate is checked.
        """
        blocks = list(previous or [])
        t0 = time.perf_counter()
        while True:
            if blocks:
                draws = concat_blocks(blocks)
                report = diagnose(draws, gate, divergences=count_divergences(blocks))
                if report.passed:
                    return ConvergenceRun(blocks, report, state, "converged", draws)
                if draws_per_chain(blocks) + self.config.block_size > max_draws:
                    return ConvergenceRun(blocks, report, state, "max_draws", draws)
                if max_seconds is not None and time.perf_counter() - t0 >= max_seconds:
                    return ConvergenceRun(blocks, report, state, "max_seconds", draws)
            elif self.config.block_size > max_draws:
                raise SamplerConfigError(
                    f"max_draws={max_draws} is below one block ({self.config.block_size})"
                )
            block = self.sample_block(state)
            if on_block is not None:
                on_block(block)
            blocks.append(block)
            state = block.state

    def state_template(self) -> Any:
        """A one-chain state of this model's structure (for :func:`decode_state`).

        Initialising also builds the kernel's transition function, which a sampler
        continuing a saved state (without its own warm-up) needs.
        """
        if self._template is None:
            self._template = self._kernel.init(
                jax.random.PRNGKey(0), self.config.num_warmup, None,
                self.model_args, self.model_kwargs,
            )
        return self._template


def concat_blocks(blocks: list[Block]) -> dict[str, np.ndarray]:
    """The blocks' draws joined along the draw axis."""
    return {k: np.concatenate([b.draws[k] for b in blocks], axis=1) for k in blocks[0].draws}


def draws_per_chain(blocks: list[Block]) -> int:
    return sum(b.n_draws for b in blocks)


def count_divergences(blocks: list[Block]) -> int:
    return int(sum(int(np.sum(b.diverging)) for b in blocks))


def encode_state(state: Any) -> bytes:
    """The state's leaves as ``.npz`` bytes, keyed by their tree path (exact, no pickle)."""
    paths_leaves = jax.tree_util.tree_flatten_with_path(state)[0]
    arrays = {f"{i:04d}": np.asarray(leaf) for i, (_, leaf) in enumerate(paths_leaves)}
    arrays["__paths__"] = np.array([jax.tree_util.keystr(p) for p, _ in paths_leaves])
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def decode_state(blob: bytes, template: Any) -> Any:
    """The state saved by :func:`encode_state`, rebuilt on the tree of ``template``."""
    try:
        with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
            paths = [str(p) for p in npz["__paths__"]]
            leaves = [npz[f"{i:04d}"] for i in range(len(paths))]
    except (OSError, ValueError, KeyError) as exc:
        raise SamplerStateError(f"the saved sampler state is unreadable: {exc}") from exc
    flat, treedef = jax.tree_util.tree_flatten_with_path(template)
    expected = [jax.tree_util.keystr(p) for p, _ in flat]
    if paths != expected:
        raise SamplerStateError(
            f"the saved sampler state has fields {paths[:6]}... but this model's state has "
            f"{expected[:6]}...: the state belongs to another model or sampler setting"
        )
    return jax.tree_util.tree_unflatten(treedef, [jax.numpy.asarray(x) for x in leaves])
