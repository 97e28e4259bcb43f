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
"""
