"""Applications on top of the detector, the GAN and the stress test: the quickstart, the lab in a browser
(every run's pages, `lab` and `run_summaries`) with the upload page (`web`), and the video tool.

May import: `gan_lab.stress`, `gan_lab.gan`, `gan_lab.metrics`, `detector`; never `gan_lab.cli`.
"""
