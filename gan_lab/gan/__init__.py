"""The DCGAN and its runs: generator and discriminator (dcgan), training into a run directory (train),
the end-of-epoch callback (callbacks), checkpoints, latent streams (latents), samples and grids
(sample), the live Jupyter view (live), which reals a run trained on (manifest) and its report.

A new generator option or training signal goes here. May import: `gan_lab.metrics`, `detector`.
"""
