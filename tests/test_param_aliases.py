"""The one column-name alias table: archive columns, earlier-system names."""

from __future__ import annotations

from exocube.params import (
    ALL_NAMES,
    ARCHIVE_COLUMNS,
    COLUMN_ALIASES,
    LEGACY_NAMES,
    REQUIRED_NAMES,
    from_legacy_name,
    parameter_columns,
)


def test_every_required_parameter_has_an_archive_column_and_aliases_are_unique() -> None:
    assert set(ARCHIVE_COLUMNS) == set(REQUIRED_NAMES)
    aliases = [a for names in COLUMN_ALIASES.values() for a in names]
    assert len(aliases) == len(set(aliases))
    assert not set(aliases) & set(ALL_NAMES)


def test_own_name_wins_then_the_archive_column_then_the_earlier_name() -> None:
    assert parameter_columns(["orbital_period", "pl_orbper", "orbital_period_days"]) == {
        "orbital_period_days": "orbital_period_days"}
    assert parameter_columns(["orbital_period", "pl_orbper"]) == {
        "orbital_period_days": "pl_orbper"}
    assert parameter_columns(["host_mass", "pl_rade", "unrelated"]) == {
        "radius_earth": "pl_rade", "host_mass_msun": "host_mass"}


def test_legacy_names_map_back_and_other_names_pass_through() -> None:
    for name, legacy in LEGACY_NAMES.items():
        assert from_legacy_name(legacy) == name
    assert from_legacy_name("radius_earth") == "radius_earth"
    assert from_legacy_name("pl_rade") == "pl_rade"  # archive columns are not request fields
