"""JAX, pinned to the CPU and quiet, imported through here by every IFU module.

Setting ``JAX_PLATFORMS=cpu`` before the first import keeps JAX from probing
for accelerators (and from logging that it found none); a caller who set
``JAX_PLATFORMS`` already keeps their choice. JAX's own loggers are held at
WARNING so that exocube's output carries no banners.

:func:`use_compile_cache` turns on JAX's persistent compilation cache. The IFU programs take
the cube's data as arguments (not as constants), so every fit of a cube of the same shape,
model and sampler settings (a campaign's) reuses the compiled warm-up, block and
optimisation programs, across processes too. The CLI turns it on (setting
``jax_compile_cache``, in ``<home>/cache/jax``); in Python it is the caller's choice.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
for _name in ("jax", "jax._src.xla_bridge", "absl"):
    logging.getLogger(_name).setLevel(logging.WARNING)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from jax.scipy.special import erf  # noqa: E402

#: Programs that compile faster than this are not written to the persistent cache.
CACHE_MIN_COMPILE_S = 0.5


def use_compile_cache(directory: Path | str) -> None:
    """Keep compiled programs in ``directory`` (created if absent) and read them back; a
    later call with another directory moves the cache there. JAX runs what the cache holds,
    so the directory must be writable by its owner only (the default, under exocube's home,
    is)."""
    from jax.experimental.compilation_cache import compilation_cache

    path = str(Path(directory).resolve())
    Path(path).mkdir(parents=True, exist_ok=True)
    if jax.config.jax_compilation_cache_dir != path:
        compilation_cache.reset_cache()  # it may have opened another directory already
        compilation_cache.set_cache_dir(path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", CACHE_MIN_COMPILE_S)


__all__ = ["erf", "jax", "jnp", "use_compile_cache"]
