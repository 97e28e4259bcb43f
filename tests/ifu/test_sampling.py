"""NUTS in blocks against analytic posteriors; exact continuation from a saved state."""

from __future__ import annotations

import numpy as np
import pytest
from chain_fixtures import (  # tests/ifu is on sys.path (rootdir-relative import)
    BLOCK,
    WARMUP,
    gaussian_data,
    gaussian_mean_model,
    gaussian_posterior,
    gaussian_sampler,
    regression_data,
    regression_model,
    regression_posterior,
)

from exocube.ifu.gate import GateConfig, NotConvergedError, require_converged
from exocube.ifu.sampling import (
    BlockSampler,
    SamplerConfig,
    SamplerConfigError,
    SamplerStateError,
    concat_blocks,
    count_divergences,
    decode_state,
    encode_state,
)


@pytest.fixture(scope="module")
def sampler() -> BlockSampler:
    return gaussian_sampler()


@pytest.fixture(scope="module")
def warm(sampler):
    return sampler.warmup()


def test_gaussian_mean_recovers_the_conjugate_posterior_and_passes_the_gate(sampler, warm):
    run = sampler.until_converged(warm, max_draws=3000)
    assert run.stopped_by == "converged", run.report.table()
    mu = run.draws["mu"]
    assert mu.shape[0] == 4 and mu.shape[1] % BLOCK == 0
    mean, sd = gaussian_posterior(gaussian_data())
    ess = run.report.parameters[0].ess_bulk
    assert abs(mu.mean() - mean) < 4 * sd / np.sqrt(ess)
    assert abs(mu.std() / sd - 1) < 0.1


def test_a_deliberately_short_run_is_refused_with_its_numbers(sampler, warm):
    block = sampler.sample_block(warm)  # 100 draws x 4 chains: ESS < 400 by construction
    with pytest.raises(NotConvergedError) as info:
        require_converged(block.draws, divergences=count_divergences([block]))
    p = info.value.report.parameters[0]
    assert p.name == "mu" and np.isfinite(p.rhat) and p.ess_bulk < 400
    assert "mu" in str(info.value) and "ESS" in str(info.value)


def test_budget_ends_an_unconverged_run_without_a_result(sampler, warm):
    strict = GateConfig(min_ess_bulk=1e6, min_ess_tail=1e6)
    run = sampler.until_converged(warm, gate=strict, max_draws=2 * BLOCK)
    assert run.stopped_by == "max_draws" and not run.report.passed
    assert run.draws["mu"].shape == (4, 2 * BLOCK)


def test_continuing_from_a_saved_state_is_the_uninterrupted_chain(sampler, warm):
    b1 = sampler.sample_block(warm)
    b2 = sampler.sample_block(b1.state)
    other = gaussian_sampler()  # a fresh sampler, as in a new process
    restored = decode_state(encode_state(b1.state), other.state_template())
    b2_again = other.sample_block(restored)
    assert np.array_equal(b2.draws["mu"], b2_again.draws["mu"])
    # adapted step size and inverse mass matrix survive the round trip exactly
    assert np.array_equal(np.asarray(b1.state.adapt_state.step_size),
                          np.asarray(restored.adapt_state.step_size))
    assert b1.state.i[0] == WARMUP + BLOCK


def test_a_state_from_another_model_is_refused(sampler, warm):
    x, y = regression_data()
    other = BlockSampler(regression_model, (x, y), config=sampler.config)
    with pytest.raises(SamplerStateError, match="another model"):
        decode_state(encode_state(warm), other.state_template())
    with pytest.raises(SamplerStateError, match="unreadable"):
        decode_state(b"not an npz", sampler.state_template())


def test_linear_regression_recovers_the_conjugate_posterior():
    x, y = regression_data()
    cfg = SamplerConfig(num_warmup=WARMUP, block_size=BLOCK, seed=3)
    s = BlockSampler(regression_model, (x, y), config=cfg)
    run = s.until_converged(s.warmup(), max_draws=3000)
    assert run.report.passed, run.report.table()
    coef = run.draws["coef"].reshape(-1, 2)
    mean, cov = regression_posterior(x, y)
    sd = np.sqrt(np.diag(cov))
    assert np.all(np.abs(coef.mean(0) - mean) < 5 * sd / np.sqrt(400))
    assert np.allclose(coef.std(0), sd, rtol=0.1)
    corr = np.corrcoef(coef.T)[0, 1]
    assert abs(corr - cov[0, 1] / (sd[0] * sd[1])) < 0.08
    assert concat_blocks(run.blocks)["coef"].shape[1] == run.report.n_draws


@pytest.mark.slow  # a second compilation of the block program (~30 s on the shared CPU)
def test_sequential_chains_sample_the_same_posterior():
    y = gaussian_data()
    cfg = SamplerConfig(num_warmup=WARMUP, block_size=BLOCK, chain_method="sequential")
    s = BlockSampler(gaussian_mean_model, (y,), config=cfg)
    run = s.until_converged(s.warmup(), max_draws=3000)
    assert run.report.passed, run.report.table()
    mean, sd = gaussian_posterior(y)
    assert abs(run.draws["mu"].mean() - mean) < 4 * sd / np.sqrt(400)
    restored = decode_state(encode_state(run.state), s.state_template())
    assert np.array_equal(s.sample_block(run.state).draws["mu"],
                          s.sample_block(restored).draws["mu"])


@pytest.mark.parametrize("kwargs", [{"num_chains": 2}, {"num_warmup": 150, "block_size": 100},
                                    {"chain_method": "parallel"}, {"max_tree_depth": 0}])
def test_bad_sampler_settings_are_refused(kwargs):
    with pytest.raises(SamplerConfigError):
        SamplerConfig(**kwargs)


def test_blocks_count_leapfrog_steps_in_warmup_and_sampling():
    sampler = gaussian_sampler()
    seen = []
    state = sampler.warmup(on_block=seen.append)
    assert len(seen) == WARMUP // BLOCK
    block = sampler.sample_block(state)
    steps = block.num_steps
    assert steps.shape == block.diverging.shape == (4, BLOCK)
    assert steps.min() >= 1 and steps.max() <= 2 ** sampler.config.max_tree_depth - 1
    assert np.array_equal(steps[:, -1], np.asarray(block.state.num_steps))
    # a 1-D Gaussian with an adapted step size needs a few steps per draw, not deep trees
    assert steps.mean() < 8
    assert all(b.num_steps.shape == (4, BLOCK) for b in seen)
