"""DCGAN, sampling, the stress-test harness and the `gan-lab` command line.

Built on `detector`: the DCGAN's discriminator is a detector architecture with a logit head.
"""

__version__ = "0.1.0"
