"""exocube: exoplanet climate simulations and telescope datacubes turned into
fast, physics-checked predictions."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("exocube")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
