"""Training a detector into a run directory: the run config and fit (train), what happens around each
epoch (callbacks), where and in what precision it runs (scaling), starting and resuming a run, the same
for detector and GAN runs (lifecycle), progress lines (progress) and training curves (plots).

A new training option or callback goes here. May import: `detector.inference`, `detector.models`,
`detector.data`, `detector.base`.
"""
