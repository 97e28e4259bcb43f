"""The IFU programs take the data as arguments, so a second fit of other data of the same
shape reuses every compiled program from JAX's persistent compilation cache (no new
entry), where a model that holds its data as constants compiles anew."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest

from exocube.ifu import use_compile_cache
from exocube.ifu._jax import CACHE_MIN_COMPILE_S, jax, jnp
from exocube.ifu.sampling import BlockSampler, SamplerConfig


def line(y) -> None:
    """A straight line through data ``y`` (an argument of the model)."""
    a = numpyro.sample("a", dist.Normal(0.0, 10.0))
    b = numpyro.sample("b", dist.Normal(0.0, 10.0))
    x = jnp.linspace(-1.0, 1.0, y.shape[0])
    numpyro.sample("y", dist.Normal(a + b * x, 0.5), obs=y)


def data(seed: int) -> jnp.ndarray:
    rng = np.random.default_rng(seed)
    return jnp.asarray(1.0 + 2.0 * np.linspace(-1, 1, 30) + rng.normal(0, 0.5, 30),
                       jnp.float32)


@pytest.fixture()
def cache(tmp_path: Path) -> Iterator[Path]:
    """The persistent cache in ``tmp_path``, every program written; off afterwards."""
    from jax.experimental.compilation_cache import compilation_cache

    use_compile_cache(tmp_path / "jax")
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    yield tmp_path / "jax"
    compilation_cache.reset_cache()
    jax.config.update("jax_compilation_cache_dir", None)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", CACHE_MIN_COMPILE_S)


def fit(model: Callable[..., None], args: tuple) -> np.ndarray:
    """Optimum starts, warm-up and one block: every program a fit compiles."""
    sampler = BlockSampler(model, args, config=SamplerConfig(
        num_chains=4, num_warmup=20, block_size=20, seed=0, start="optimum", n_starts=4))
    return np.asarray(sampler.sample_block(sampler.warmup()).draws["b"])


def entries(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir()}


def test_a_second_fit_of_other_data_compiles_nothing(cache: Path) -> None:
    b1 = fit(line, (data(1),))
    first = entries(cache)
    assert len(first) >= 3  # optimisation, Hessian, warm-up and block programs
    b2 = fit(line, (data(2),))
    assert entries(cache) == first
    assert not np.allclose(b1, b2)  # the programs did run on the new data
    assert abs(float(np.mean(b2)) - 2.0) < 0.6


def test_data_held_as_constants_compile_anew(cache: Path) -> None:
    """The control: the same model closing over its data writes new entries per data."""
    def closed(y: jnp.ndarray) -> Callable[[], None]:
        return lambda: line(y)

    fit(closed(data(1)), ())
    first = entries(cache)
    fit(closed(data(2)), ())
    assert len(entries(cache) - first) >= 2
