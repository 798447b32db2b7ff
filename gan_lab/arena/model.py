"""The arena's GAN step: the DCGAN's, with the generator also pushed to make a frozen detector say "real".

The generator's loss is the discriminator's non-saturating loss plus `weight` times the
detector's cross-entropy on the same fakes labelled real. The detector sees the fakes as the
stress test feeds them (generator pixels straight into its own input, which does its own
preprocessing), in inference mode (BatchNorm statistics fixed, dropout off); it is not
trainable and no optimizer holds its weights. The discriminator trains as usual, so the fakes
must stay realistic to it while they learn to evade. With weight 0 the step is the DCGAN's,
draw for draw.
"""

from __future__ import annotations

import keras
from keras import ops

from detector import HEADS
from gan_lab.gan.dcgan import DCGAN

_EPSILON = 1e-7


def detector_logit(outputs, head: str):
    """The detector's raw outputs (one head of `detector.HEADS`) as the logit of P(fake), shape (N, 1), float32."""
    if head not in HEADS:
        raise ValueError(f"head must be one of {HEADS}. Received: head={head!r}")
    outputs = ops.cast(outputs, "float32")
    if head == "logit":
        return ops.reshape(outputs, (-1, 1))
    if head == "softmax2":
        probabilities = ops.clip(outputs, _EPSILON, 1.0)
        return ops.log(probabilities[:, 1:2]) - ops.log(probabilities[:, 0:1])
    p_fake = ops.clip(ops.reshape(outputs, (-1, 1)), _EPSILON, 1.0 - _EPSILON)
    return ops.log(p_fake) - ops.log(1.0 - p_fake)


class ArenaGAN(DCGAN):
    """A DCGAN whose generator also learns to evade `detector` (a Keras model taking the generator's pixels).

    weight: how much the detector's loss counts beside the discriminator's (0: a plain DCGAN).
    head: the detector's output head ("probability", "logit" or "softmax2").
    Its extra metrics: `evasion_loss` and `detector_p_fake`, the detector's mean P(fake) on the
    generator's training fakes.
    """

    def __init__(self, generator, discriminator, detector, head: str = "probability", weight: float = 1.0, **kwargs):
        super().__init__(generator, discriminator, **kwargs)
        if not isinstance(weight, (int, float)) or isinstance(weight, bool) or weight < 0:
            raise ValueError(f"weight must be a non-negative number. Received: weight={weight!r}")
        detector_logit(ops.zeros((1, 1)), head)  # ValueError for an unknown head
        detector.trainable = False
        self.detector = detector
        self.head = head
        self.weight = float(weight)
        self.evasion_tracker = keras.metrics.Mean(name="evasion_loss")
        self.detector_p_fake_tracker = keras.metrics.Mean(name="detector_p_fake")

    @property
    def metrics(self):
        return [*super().metrics, self.evasion_tracker, self.detector_p_fake_tracker]

    def generator_loss(self, fakes, batch_size, global_batch):
        """The DCGAN's generator loss plus weight x the detector's cross-entropy on the fakes labelled real."""
        g_loss = super().generator_loss(fakes, batch_size, global_batch)
        if not self.weight:
            return g_loss
        logits = detector_logit(self.detector(fakes, training=False), self.head)
        evasion = self.global_batch.loss(ops.zeros((batch_size, 1)), logits, global_batch)  # "real" = 0
        share = ops.cast(global_batch, "float32") / ops.cast(batch_size, "float32")
        self.evasion_tracker.update_state(evasion * share)
        self.detector_p_fake_tracker.update_state(ops.mean(ops.sigmoid(logits)))
        return g_loss + self.weight * evasion
