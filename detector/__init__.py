"""Real-vs-fake face detectors: data, models, training, metrics, prediction.

Conventions used everywhere: labels real = 0, fake = 1; every model output is P(fake)
or its logit; pixels enter models as float32 RGB in [0, 1], NHWC.
"""

REAL = 0
FAKE = 1
CLASS_NAMES = ("real", "fake")

__version__ = "0.1.0"
