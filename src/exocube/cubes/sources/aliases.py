"""Alias tables: how a GCM names the canonical variables and coordinates."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.resources import files

from exocube.errors import ConfigError

KNOWN_KEYS = {"name", "variables", "units", "coordinates"}


@dataclass(frozen=True)
class AliasTable:
    """Names one GCM uses: variables, default units, coordinates."""

    name: str
    variables: dict[str, tuple[str, ...]]
    units: dict[str, str] = field(default_factory=dict)
    coordinates: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def coordinate_names(self, role: str) -> tuple[str, ...]:
        return self.coordinates.get(role, ())


def parse_table(text: str, origin: str) -> AliasTable:
    """Parse one alias TOML document; unknown top-level keys are an error."""
    doc = tomllib.loads(text)
    unknown = set(doc) - KNOWN_KEYS
    if unknown or "name" not in doc or "variables" not in doc:
        raise ConfigError(
            f"alias table {origin} must have 'name' and [variables] and only the keys "
            f"{sorted(KNOWN_KEYS)}; found {sorted(doc)}"
        )
    return AliasTable(
        name=doc["name"],
        variables={k: tuple(v) for k, v in doc["variables"].items()},
        units=dict(doc.get("units", {})),
        coordinates={k: tuple(v) for k, v in doc.get("coordinates", {}).items()},
    )


@lru_cache(maxsize=1)
def alias_tables() -> dict[str, AliasTable]:
    """The packaged alias tables by name (``exoplasim``, ``rocke3d``)."""
    tables = {}
    for entry in sorted((files("exocube.cubes") / "aliases").iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".toml"):
            table = parse_table(entry.read_text(), entry.name)
            tables[table.name] = table
    return tables
