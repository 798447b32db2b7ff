"""The arena's GAN step: a frozen detector, a W = 0 arm equal to the DCGAN, and fakes that learn to evade."""

import keras
import numpy as np
import pytest

from detector.data.datasets import index_folder, load_images
from detector.inference.predict import load_detector
from gan_lab.arena.model import ArenaGAN, detector_logit
from gan_lab.gan.checkpoints import load_discriminator, load_generator
from gan_lab.gan.dcgan import DCGAN


def _reals(synth_root, n=64):
    """Batches of 16 real training images, repeated (so any number of steps has data)."""
    import tensorflow as tf

    split = index_folder(synth_root, real_only=True).splits["train"]
    return tf.data.Dataset.from_tensor_slices(load_images(split.paths[:n], 32)[0]).batch(16).repeat()


def _continue(gan_run, synth_root, detector=None, weight=0.0, steps=6, seed=3):
    """The GAN run's last checkpoint trained `steps` more steps, plainly or in the arena; returns the model."""
    keras.utils.set_random_seed(seed)
    generator, discriminator = load_generator(gan_run, raw=True), load_discriminator(gan_run)
    if detector is None:
        gan = DCGAN(generator, discriminator, seed=seed)
    else:
        gan = ArenaGAN(generator, discriminator, detector.model, detector.head, weight=weight, seed=seed)
    gan.compile(d_optimizer=keras.optimizers.Adam(2e-4, 0.5), g_optimizer=keras.optimizers.Adam(1e-3, 0.5))
    gan.fit(_reals(synth_root), epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False)
    return gan


def _p_fake(detector, generator, n=128):
    latents = np.random.default_rng(99).standard_normal((n, int(generator.input_shape[-1]))).astype("float32")
    return detector.score(np.asarray(generator(latents, training=False)))


def test_the_detector_is_untouched_and_weight_zero_is_the_plain_dcgan(detector_run, gan_run, synth_root):
    detector = load_detector(detector_run)
    before = [weight.numpy() for weight in detector.model.weights]
    arena = _continue(gan_run, synth_root, detector, weight=0.0)
    plain = _continue(gan_run, synth_root)
    for ours, theirs in zip(arena.generator.weights, plain.generator.weights):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())

    evading = _continue(gan_run, synth_root, detector, weight=5.0)
    after = [weight.numpy() for weight in detector.model.weights]  # BatchNorm statistics included
    assert all(np.array_equal(a, b) for a, b in zip(before, after))
    assert not detector.model.trainable and not any(
        np.array_equal(a.numpy(), b.numpy())
        for a, b in zip(evading.generator.trainable_weights, plain.generator.trainable_weights)
    )


def test_fakes_learn_to_evade_the_detector_faster_than_in_a_plain_continuation(detector_run, gan_run, synth_root):
    detector = load_detector(detector_run)
    # Four steps: the plain arm's fakes are still caught (longer, they drift past this tiny detector too).
    plain = _continue(gan_run, synth_root, steps=4)
    arena = _continue(gan_run, synth_root, detector, weight=5.0, steps=4)
    plain_rate = np.mean(_p_fake(detector, plain.generator) >= detector.threshold)
    arena_rate = np.mean(_p_fake(detector, arena.generator) >= detector.threshold)
    assert arena_rate < plain_rate - 0.2, (arena_rate, plain_rate)


@pytest.mark.parametrize(
    "head, outputs",
    [("probability", [[0.2], [0.9]]), ("logit", [[-1.386294], [2.197225]]), ("softmax2", [[0.8, 0.2], [0.1, 0.9]])],
)
def test_every_head_becomes_the_logit_of_p_fake(head, outputs):
    logits = np.asarray(detector_logit(np.asarray(outputs, dtype="float32"), head))
    np.testing.assert_allclose(1 / (1 + np.exp(-logits[:, 0])), [0.2, 0.9], atol=1e-5)
    with pytest.raises(ValueError, match="head must be one of"):
        detector_logit(np.zeros((1, 1)), "sigmoid")
