"""Applications on top of the detector, the GAN and the stress test: the quickstart, the upload web page,
the video tool.

May import: `gan_lab.stress`, `gan_lab.gan`, `gan_lab.metrics`, `detector`; never `gan_lab.cli`.
"""
