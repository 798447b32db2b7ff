"""Real-vs-fake face detectors: data, models, training, metrics, prediction.

Conventions used everywhere: labels real = 0, fake = 1; every model output is P(fake)
or its logit; pixels enter models as float32 RGB in [0, 1], NHWC.
"""

from typing import Literal, get_args

REAL = 0
FAKE = 1
CLASS_NAMES = ("real", "fake")
# What a model's output layer gives: P(fake), its logit, or two softmax units [P(real), P(fake)].
Head = Literal["probability", "logit", "softmax2"]
HEADS = get_args(Head)

__version__ = "0.1.0"
