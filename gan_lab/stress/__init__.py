"""The stress test: a detector scored on fresh fakes from every GAN epoch. Its inputs resolved once
(inputs), the run itself (run), per-epoch figures registered by name (epoch_metrics), the generalisation
matrix, hardening, leakage checks on the reals, perturbations, plots and the report.

A new stress figure, perturbation or report section goes here. May import: `gan_lab.gan`,
`gan_lab.metrics`, `detector`.
"""
