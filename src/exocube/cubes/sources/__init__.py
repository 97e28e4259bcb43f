"""Readers that turn one GCM NetCDF file into SI fields on its own grid.

Variables are found by CF ``standard_name`` first, then by the alias tables in
``exocube/cubes/aliases/*.toml`` (ExoPlaSim, ROCKE-3D).
"""

from exocube.cubes.sources.aliases import AliasTable, alias_tables
from exocube.cubes.sources.reader import SourceRun, VerticalLevels, read_source

__all__ = ["AliasTable", "SourceRun", "VerticalLevels", "alias_tables", "read_source"]
