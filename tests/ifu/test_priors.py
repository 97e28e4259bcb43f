"""Priors: every default inside its parameter's range, bad priors refused by name."""

from __future__ import annotations

import numpy as np
import pytest

from exocube.ifu.params import SPECS
from exocube.ifu.priors import (
    DEFAULT_PRIORS,
    PriorError,
    fix_unused_lines,
    load_priors_toml,
    priors_for,
)


@pytest.mark.parametrize("model", sorted(SPECS))
def test_every_parameter_has_a_default_prior_inside_its_range(model):
    priors = priors_for(model)
    assert set(priors) == {p.name for p in SPECS[model]} == set(DEFAULT_PRIORS[model])
    import jax

    for p in priors.values():
        if p.fixed:
            continue
        x = np.asarray(p.distribution().sample(jax.random.PRNGKey(0), (2000,)))
        assert p.spec.low <= x.min() and x.max() <= p.spec.high, p.name


@pytest.mark.parametrize("value,match", [
    (["uniform", -20.0, 5.0], r"prior x0=\['uniform', -20.0, 5.0\] is invalid: expected "
                              r"bounds inside the parameter's range \[-10.0, 10.0\] arcsec"),
    (["fixed", 11.0], r"range \[-10.0, 10.0\]"),
    (["normal", 0.0, -1.0], "a positive sd"),
    (["uniform", 2.0, 1.0], "low < high"),
    (["gamma", 1.0, 2.0], "kind one of"),
    (["uniform", 1.0], "'uniform' with 2 finite number"),
])
def test_a_bad_prior_is_refused_naming_it(value, match):
    with pytest.raises(PriorError, match=match):
        priors_for("bowshock", {"x0": value})


def test_unknown_parameter_and_toml_file(tmp_path):
    with pytest.raises(PriorError, match="a parameter of model 'disk'"):
        priors_for("disk", {"v_bh": ["fixed", 1.0]})
    f = tmp_path / "p.toml"
    f.write_text('model = "disk"\n[priors]\nv_sys = ["normal", 0.0, 50.0]\n'
                 'sigma = ["uniform", 0.5, 100.0]\n')
    with pytest.raises(PriorError, match=r"p.toml: prior sigma.*range \[1.0, 500.0\] km/s"):
        load_priors_toml(f, "disk")
    f.write_text('[priors]\nv_sys = ["normal", 0.0, 50.0]\nx0 = ["fixed", 0.2]\n')
    pri = load_priors_toml(f, "disk")
    assert pri["v_sys"].args == (0.0, 50.0) and pri["x0"].fixed
    with pytest.raises(PriorError, match="'bowshock' \\(as requested\\)"):
        f.write_text('model = "disk"\n')
        load_priors_toml(f, "bowshock")


def test_line_ratios_of_lines_not_fitted_are_fixed():
    pri = fix_unused_lines(priors_for("disk"), ["Halpha", "[NII]6585", "[NII]6550"])
    assert not pri["log_nii_ha"].fixed
    assert pri["log_oiii_ha"].fixed and pri["sii_ratio"].fixed and pri["log_siii_ha"].fixed
