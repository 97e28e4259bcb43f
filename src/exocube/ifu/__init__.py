"""exocube's IFU stage: JWST/HST cubes, forward models of RBH-1's two readings, quick-looks.

- :mod:`~exocube.ifu.cube`: s3d cubes read into a frozen :class:`~exocube.ifu.cube.IFUCube`
  (DQ mask, WCS wavelengths and offsets, checksums, provenance) and written back;
  :mod:`~exocube.ifu.drizzled`: HST drizzled images.
- :mod:`~exocube.ifu.lines`: the band's emission lines, fixed ratios, velocity axes.
- :mod:`~exocube.ifu.forward`: JAX forward models ``bowshock``, ``disk`` and ``disk_arctan``
  (fields in :mod:`~exocube.ifu.kinematics`, potentials in :mod:`~exocube.ifu.potential`,
  LSF/PSF/units in :mod:`~exocube.ifu.instrument`, parameters in :mod:`~exocube.ifu.params`).
- :mod:`~exocube.ifu.synth`: synthetic cubes on a template; :mod:`~exocube.ifu.template`:
  a template with the GO-3149 cube's geometry.
- :mod:`~exocube.ifu.quicklook`: moment maps and position-velocity diagrams.
- :mod:`~exocube.ifu.fetch`: a JWST program's products through ``exocube.acquire``.
- Inference: :mod:`~exocube.ifu.likelihood` (Gaussian per voxel, continuum integrated
  out), :mod:`~exocube.ifu.priors`, :mod:`~exocube.ifu.fit` (fits, comparison),
  :mod:`~exocube.ifu.sampling` (NUTS in blocks; chain starts at posterior optima in
  :mod:`~exocube.ifu.optima`), :mod:`~exocube.ifu.evidence` (ln Z by
  nested sampling, Bayes factors), :mod:`~exocube.ifu.chains` (durable
  chains), :mod:`~exocube.ifu.gate` (convergence gate), :mod:`~exocube.ifu.broker`
  (work queue), :mod:`~exocube.ifu.fitplots` (figures).
- Campaigns: :mod:`~exocube.ifu.campaign` (inject-recover and jackknife tasks, submitted
  to the broker or run on Dask), :mod:`~exocube.ifu.campaign_report` (coverage, bias,
  hypothesis preference, jackknife tables and figures).

Other stages import the names in ``__all__``, not the modules.
"""

from __future__ import annotations

from exocube.ifu._jax import use_compile_cache
from exocube.ifu.broker import Worker, WorkQueue
from exocube.ifu.campaign import (
    CampaignError,
    FitBudget,
    UnknownCampaignError,
    campaign_priors,
    inject_recover_spec,
    is_campaign,
    jackknife_spec,
    load_campaign,
    register,
    run_on_dask,
    submit,
)
from exocube.ifu.campaign import handlers as campaign_handlers
from exocube.ifu.campaign import records as campaign_records
from exocube.ifu.campaign import status as campaign_status
from exocube.ifu.campaign_report import bias_figure, coverage_figure
from exocube.ifu.campaign_report import bias_table as bias_rows
from exocube.ifu.campaign_report import coverage_table as coverage_rows
from exocube.ifu.campaign_report import markdown as campaign_markdown
from exocube.ifu.campaign_report import tables_json as campaign_tables
from exocube.ifu.chains import ChainStore, FitMismatchError
from exocube.ifu.cube import read_s3d
from exocube.ifu.dq import DEFAULT_MASK_FLAGS
from exocube.ifu.evidence import (
    Evidence,
    EvidenceNotConvergedError,
    NestedConfig,
    bayes_factor,
    problem_evidence,
)
from exocube.ifu.fetch import fetch_program, plan_program, program_settings
from exocube.ifu.fit import (
    FitSettings,
    advance,
    data_and_model,
    loo_compare,
    median_draw,
    posterior_summary,
    prepare,
    problem_for_fit,
    start,
)
from exocube.ifu.fitplots import corner_figure, data_model_figure, rank_figure, trace_figure
from exocube.ifu.fitplots import save as save_figure
from exocube.ifu.instrument import GaussianPSF, ResolvingPower
from exocube.ifu.lines import get_lines, lines_in_band
from exocube.ifu.params import check_params, load_params_toml, spec_for
from exocube.ifu.priors import load_priors_toml, priors_for
from exocube.ifu.quicklook import (
    moment_maps,
    plot_moments,
    plot_pv,
    pv_diagram,
    write_moments,
    write_pv,
)
from exocube.ifu.sampling import SamplerConfig
from exocube.ifu.synth import synthesize, write_synth
from exocube.ifu.template import write_template

__all__ = [
    "DEFAULT_MASK_FLAGS",
    "CampaignError",
    "ChainStore",
    "Evidence",
    "EvidenceNotConvergedError",
    "FitBudget",
    "FitMismatchError",
    "FitSettings",
    "GaussianPSF",
    "NestedConfig",
    "ResolvingPower",
    "SamplerConfig",
    "UnknownCampaignError",
    "WorkQueue",
    "Worker",
    "advance",
    "bayes_factor",
    "bias_figure",
    "bias_rows",
    "campaign_handlers",
    "campaign_markdown",
    "campaign_priors",
    "campaign_records",
    "campaign_status",
    "campaign_tables",
    "check_params",
    "corner_figure",
    "coverage_figure",
    "coverage_rows",
    "data_and_model",
    "data_model_figure",
    "fetch_program",
    "get_lines",
    "inject_recover_spec",
    "is_campaign",
    "jackknife_spec",
    "lines_in_band",
    "load_campaign",
    "load_params_toml",
    "load_priors_toml",
    "loo_compare",
    "median_draw",
    "moment_maps",
    "plan_program",
    "plot_moments",
    "plot_pv",
    "posterior_summary",
    "prepare",
    "priors_for",
    "problem_evidence",
    "problem_for_fit",
    "program_settings",
    "pv_diagram",
    "rank_figure",
    "read_s3d",
    "register",
    "run_on_dask",
    "save_figure",
    "spec_for",
    "start",
    "submit",
    "synthesize",
    "trace_figure",
    "use_compile_cache",
    "write_moments",
    "write_pv",
    "write_synth",
    "write_template",
]
