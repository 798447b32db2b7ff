"""The DCGAN: a generator builder, the discriminator (the detector's architecture) and the model `fit()` trains.

    generator = build_generator(size=64)             # latents (N, 128) -> pixels (N, 64, 64, 3) in [0, 1]
    discriminator = build_discriminator("cnn3", 64, spectral_norm=True)  # pixels -> one logit of P(fake)
    gan = DCGAN(generator, discriminator, seed=0)
    gan.compile(d_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5), g_optimizer=keras.optimizers.Adam(4e-4, beta_1=0.5))
    gan.fit(real_images, epochs=10)

Labels follow the lab's convention everywhere: fake = 1, real = 0, so the discriminator's
logit is the logit of P(fake), as a "logit"-head detector's is.
"""

from __future__ import annotations

import contextlib
import math
import os

import keras
import tensorflow as tf
from keras import layers, ops

from detector.base.errors import LabError
from detector.models.layers import batch_norm_layer

# The generator of the published 128 px experiment: 1,520,643 parameters.
GENERATOR_PRESETS = {
    "seed128": dict(
        size=128,
        latent_dim=128,
        filters=(64, 128, 64, 64),
        dense_channels=128,
        output_kernel=5,
        batch_norm=False,
        upsampling="transpose",
    ),
}
# Wide where the image is small and narrow where it is large, as in the DCGAN paper: the
# discriminator's convolutions cost far more than these on a CPU (see benchmarks/bench_gan.py).
GENERATOR_DEFAULTS = dict(
    size=64,
    latent_dim=128,
    filters=(256, 128, 64, 32),
    dense_channels=128,
    output_kernel=5,
    batch_norm=False,
    upsampling="transpose",
)
UPSAMPLING_STEPS = 4  # four stride-2 upsampling steps: the image starts at size / 16
# How each step doubles the image side. "transpose": Conv2DTranspose 4x4 stride 2 (the design's
# DCGAN; its uneven kernel overlap leaves a checkerboard fingerprint). "nearest" and "bilinear":
# resize, then a 3x3 convolution (no checkerboard). "pixelshuffle": a 3x3 convolution to four
# times the channels, then depth-to-space. Each leaves its own fingerprint in the spectra.
UPSAMPLING = ("transpose", "nearest", "bilinear", "pixelshuffle")
# The EMA generator's half-life is at most this share of the images shown so far.
EMA_RAMPUP = 0.05


def _positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def generator_options(
    size: int | None = None,
    latent_dim: int | None = None,
    filters=None,
    batch_norm: bool | None = None,
    preset: str | None = None,
    dense_channels: int | None = None,
    output_kernel: int | None = None,
    upsampling: str | None = None,
) -> dict:
    """Every generator option resolved: the defaults, overridden by the preset, then by the options given.

    A preset fixes its architecture: an option given with it must agree (ValueError otherwise).
    """
    given = dict(
        size=size,
        latent_dim=latent_dim,
        filters=None if filters is None else tuple(filters),
        batch_norm=batch_norm,
        dense_channels=dense_channels,
        output_kernel=output_kernel,
        upsampling=upsampling,
    )
    options = dict(GENERATOR_DEFAULTS)
    if preset is not None:
        if preset not in GENERATOR_PRESETS:
            raise ValueError(f"preset must be None or one of {sorted(GENERATOR_PRESETS)}. Received: preset={preset!r}")
        for key, value in GENERATOR_PRESETS[preset].items():
            if given[key] is not None and given[key] != value:
                raise ValueError(f"preset {preset!r} has {key}={value!r}. Received: {key}={given[key]!r}")
        options.update(GENERATOR_PRESETS[preset])
    options.update({key: value for key, value in given.items() if value is not None})
    size = options["size"]
    if not _positive_int(size) or size % 16 or size < 16:
        raise ValueError(f"size must be a multiple of 16 pixels (32, 64, 128, 256, ...). Received: size={size!r}")
    for key in ("latent_dim", "dense_channels", "output_kernel"):
        if not _positive_int(options[key]):
            raise ValueError(f"{key} must be a positive integer. Received: {key}={options[key]!r}")
    if options["output_kernel"] % 2 == 0:
        raise ValueError(
            f"output_kernel must be odd, so the image stays centred. Received: output_kernel={options['output_kernel']}"
        )
    filters = options["filters"]
    if len(filters) != UPSAMPLING_STEPS or not all(_positive_int(width) for width in filters):
        raise ValueError(
            f"filters must be {UPSAMPLING_STEPS} positive integers, one per upsampling step. Received: filters={filters!r}"
        )
    if options["upsampling"] not in UPSAMPLING:
        raise ValueError(f"upsampling must be one of {UPSAMPLING}. Received: upsampling={options['upsampling']!r}")
    options["filters"] = tuple(int(width) for width in filters)
    options["batch_norm"] = bool(options["batch_norm"])
    return {**options, "preset": preset}


@keras.saving.register_keras_serializable(package="gan_lab")
class PixelShuffle(layers.Layer):
    """Depth to space: (H, W, 4C) -> (2H, 2W, C), each group of four channels becoming a 2x2 block."""

    def call(self, inputs):
        height, width, channels = inputs.shape[1], inputs.shape[2], inputs.shape[3]
        x = ops.reshape(inputs, (-1, height, width, 2, 2, channels // 4))
        x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
        return ops.reshape(x, (-1, height * 2, width * 2, channels // 4))

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        return (batch, height * 2, width * 2, channels // 4)


def _upsample(x, width: int, kind: str, index: int):
    """One step that doubles the side to `width` channels."""
    if kind == "transpose":
        return layers.Conv2DTranspose(width, 4, strides=2, padding="same", name=f"deconv{index}")(x)
    if kind in ("nearest", "bilinear"):
        x = layers.UpSampling2D(2, interpolation=kind, name=f"resize{index}")(x)
        return layers.Conv2D(width, 3, padding="same", name=f"conv{index}")(x)
    x = layers.Conv2D(width * 4, 3, padding="same", name=f"conv{index}")(x)
    return PixelShuffle(name=f"shuffle{index}")(x)


def build_generator(
    size: int | None = None,
    latent_dim: int | None = None,
    filters=None,
    batch_norm: bool | None = None,
    preset: str | None = None,
    dense_channels: int | None = None,
    output_kernel: int | None = None,
    upsampling: str | None = None,
    name: str = "generator",
) -> keras.Model:
    """Latents (N, latent_dim) -> Dense -> (size/16, size/16, dense_channels) -> 4 x [upsampling step (by default
    Conv2DTranspose 4x4 stride 2), optional BatchNorm, LeakyReLU 0.2] -> Conv2D to RGB with a sigmoid: pixels
    (N, size, size, 3) in [0, 1].

    Unset options take the preset's value, else GENERATOR_DEFAULTS (64 px, latent 128,
    filters 256, 128, 64, 32, transposed convolutions). preset="seed128" is the published
    128 px generator. upsampling: one of UPSAMPLING.
    """
    options = generator_options(
        size, latent_dim, filters, batch_norm, preset, dense_channels, output_kernel, upsampling
    )
    start = options["size"] // 2**UPSAMPLING_STEPS
    inputs = keras.Input(shape=(options["latent_dim"],), name="latents")
    x = layers.Dense(start * start * options["dense_channels"], name="dense")(inputs)
    x = layers.Reshape((start, start, options["dense_channels"]), name="reshape")(x)
    for index, width in enumerate(options["filters"], start=1):
        x = _upsample(x, width, options["upsampling"], index)
        if options["batch_norm"]:
            x = batch_norm_layer(f"bn{index}")(x)
        x = layers.LeakyReLU(0.2, name=f"lrelu{index}")(x)
    # float32 under a mixed-precision policy too: pixels are float32 in [0, 1] everywhere in the lab.
    outputs = layers.Conv2D(
        3, options["output_kernel"], padding="same", activation="sigmoid", name="to_rgb", dtype="float32"
    )(x)
    return keras.Model(inputs, outputs, name=name)


def ema_copy(generator: keras.Model) -> keras.Model:
    """A copy of `generator` with its own weights (equal now), to hold their moving average."""
    copy = keras.models.clone_model(generator)
    copy.set_weights(generator.get_weights())
    copy.name = "generator_ema" if generator.name == "generator" else f"{generator.name}_ema"
    copy.trainable = False
    return copy


def ema_decay(images_shown, batch_size, half_life_images: float, rampup: float = EMA_RAMPUP):
    """Per-step decay of the EMA: half the weight of the past is gone after `half_life_images` images.

    Early in a run the half-life is capped at `rampup` of the images shown so far (as in
    StyleGAN2-ADA), so the average does not hold on to the random start for thousands of images.
    """
    half_life = ops.minimum(half_life_images, ops.maximum(images_shown * rampup, 1.0))
    return ops.power(0.5, batch_size / half_life)


@keras.saving.register_keras_serializable(package="gan_lab")
class RampDown(keras.optimizers.schedules.LearningRateSchedule):
    """A learning rate held at `rate`, then eased to 0 along half a cosine over the last `fraction` of `total_steps`.

    A common stabiliser for the end of a run: the weights settle instead of moving at full
    rate. `GanConfig.lr_rampdown` sets the fraction; it is off by default because on the
    quickstart's 12 epochs it did not raise the last epochs' face-found rate (docs/gan.md).
    """

    def __init__(self, rate: float, total_steps: int, fraction: float):
        self.rate, self.total_steps, self.fraction = float(rate), int(total_steps), float(fraction)

    def __call__(self, step):
        progress = ops.cast(step, "float32") / max(self.total_steps, 1)
        ramp = ops.clip((progress - (1.0 - self.fraction)) / max(self.fraction, 1e-9), 0.0, 1.0)
        return self.rate * 0.5 * (1.0 + ops.cos(math.pi * ramp))

    def get_config(self) -> dict:
        return {"rate": self.rate, "total_steps": self.total_steps, "fraction": self.fraction}


@keras.saving.register_keras_serializable(package="gan_lab")
class SpectralNorm(layers.Wrapper):
    """`layer` (a Conv2D or Dense) with its kernel divided by its largest singular value.

    Spectral normalisation (Miyato et al., 2018): one power iteration per call refines the
    singular vector `u`, and the gradient flows through the division. Unlike
    keras.layers.SpectralNormalization it normalises in inference mode too, as the DCGAN runs
    its discriminator (see `DCGAN.train_step`), and leaves the stored kernel as trained.
    """

    # False while a pass must leave `u` as it is (see `holding_u`).
    refine_u = True

    def build(self, input_shape):
        super().build(input_shape)
        self.u = self.add_weight(
            shape=(1, self.layer.kernel.shape[-1]),
            initializer=keras.initializers.RandomNormal(seed=0),
            trainable=False,
            aggregation="only_first_replica",  # every replica computes the same vector
            name="u",
        )

    def call(self, inputs):
        kernel = self.layer.kernel
        matrix = ops.reshape(ops.cast(kernel, "float32"), (-1, kernel.shape[-1]))
        v = ops.stop_gradient(_unit(ops.matmul(ops.cast(self.u, "float32"), ops.transpose(matrix))))
        u = ops.stop_gradient(_unit(ops.matmul(v, matrix)))
        if self.refine_u:
            self.u.assign(ops.cast(u, self.u.dtype))
        sigma = ops.sum(ops.matmul(v, matrix) * u)
        trainable = [
            ops.divide(variable.value, ops.cast(sigma, variable.dtype)) if variable is kernel else variable.value
            for variable in self.layer.trainable_variables
        ]
        fixed = [variable.value for variable in self.layer.non_trainable_variables]
        outputs, _ = self.layer.stateless_call(trainable, fixed, inputs)
        return outputs

    def compute_output_shape(self, input_shape):
        return self.layer.compute_output_shape(input_shape)


def _unit(x):
    return x / (ops.sqrt(ops.sum(ops.square(x))) + 1e-12)


def spectral_norm_layers(model) -> list[SpectralNorm]:
    """The SpectralNorm layers of a model, nested models included."""
    found = []
    for child in getattr(model, "layers", []):
        found.extend([child] if isinstance(child, SpectralNorm) else spectral_norm_layers(child))
    return found


@contextlib.contextmanager
def holding_u(model):
    """Within it, the model's SpectralNorm layers normalise with `u` as it is, without refining it.

    For an extra pass that must not assign variables: a replicated variable cannot be assigned
    inside tf.cond under a tf.distribute strategy (the assignment is a synchronisation point).
    """
    layers_ = spectral_norm_layers(model)
    for layer in layers_:
        layer.refine_u = False
    try:
        yield
    finally:
        for layer in layers_:
            layer.refine_u = True


def build_discriminator(model: str = "cnn3", size: int = 64, spectral_norm: bool = False, **options) -> keras.Model:
    """The detector architecture `model` at `size` px with one linear output unit: the logit of P(fake).

    spectral_norm: every Conv2D and Dense layer wrapped in `SpectralNorm`, under its own name.
    """
    from detector.models.zoo import build_model

    discriminator = build_model(model, size, head="logit", **options)
    if not spectral_norm:
        return discriminator

    def wrap(layer):
        clone = layer.__class__.from_config(layer.get_config())
        if isinstance(layer, (layers.Conv2D, layers.Dense)):
            return SpectralNorm(clone, name=layer.name, dtype=layer.dtype_policy)
        return clone

    return keras.models.clone_model(discriminator, clone_function=wrap)


def copy_detector_weights(discriminator: keras.Model, detector_run: str | os.PathLike) -> list[str]:
    """Initialise `discriminator` from a trained detector run, layer by layer, all but the output layer.

    Returns the names of the layers copied. LabError when the run's model is another
    architecture or input size.
    """
    from detector.inference.predict import load_detector

    detector = load_detector(detector_run)
    if detector.imported:
        raise LabError(
            f"{detector.run_dir} was imported from outside the lab: a discriminator starts from a lab detector's Keras layers"
        )
    source = detector.model
    size = int(discriminator.input_shape[1])
    if detector.size != size:
        raise LabError(
            f"--init-discriminator {detector.run_dir} takes {detector.size} px images, but the discriminator takes {size} px"
        )
    source_layers = {layer.name: layer for layer in source.layers[:-1]}
    target_layers = discriminator.layers[:-1]
    if source.name != discriminator.name or set(source_layers) != {layer.name for layer in target_layers}:
        raise LabError(
            f"--init-discriminator {detector.run_dir} is a {detector.config.get('model', source.name)} detector; "
            f"it cannot initialise a {discriminator.name} discriminator"
        )
    copied = []
    for layer in target_layers:
        weights = source_layers[layer.name].get_weights()
        shapes = [w.shape for w in weights]
        expected = [tuple(v.shape) for v in getattr(layer, "layer", layer).weights]
        if shapes != expected:
            raise LabError(
                f"--init-discriminator {detector.run_dir}: layer {layer.name} has weights {shapes}, the discriminator's are {expected}"
            )
        if weights:
            getattr(layer, "layer", layer).set_weights(weights)  # into the layer a SpectralNorm wraps
            copied.append(layer.name)
    return copied


AUGMENT_POLICIES = ("color", "translation", "cutout")


def diff_augment(images, policy: tuple[str, ...], seed):
    """Differentiable augmentation (Zhao et al., 2020) of a batch in [0, 1], each image its own draw.

    "color": brightness, saturation and contrast; "translation": a shift of up to 1/8 of the
    side (edges repeated); "cutout": a square of half the side set to 0. Applied to reals
    and fakes alike before the discriminator, so the generator learns the images and not
    the augmentation; with a few thousand real images it keeps the discriminator from
    memorising them. seed: a keras.random.SeedGenerator, or a function (shape, low, high)
    returning uniform draws (as the DCGAN's, which draws for the global batch).
    """
    batch = ops.shape(images)[0]
    height, width = images.shape[1], images.shape[2]

    def uniform(shape, low=0.0, high=1.0):
        if callable(seed):
            return seed(shape, low, high)
        return keras.random.uniform(shape, low, high, seed=seed)

    if "color" in policy:
        images = images + uniform((batch, 1, 1, 1), -0.25, 0.25)
        grey = ops.mean(images, axis=3, keepdims=True)
        images = (images - grey) * uniform((batch, 1, 1, 1), 0.0, 2.0) + grey
        mean = ops.mean(images, axis=(1, 2, 3), keepdims=True)
        images = (images - mean) * uniform((batch, 1, 1, 1), 0.5, 1.5) + mean
    if "translation" in policy:
        reach_y, reach_x = max(1, height // 8), max(1, width // 8)
        shift_y = ops.cast(ops.floor(uniform((batch, 1), -reach_y, reach_y + 1)), "int32")
        shift_x = ops.cast(ops.floor(uniform((batch, 1), -reach_x, reach_x + 1)), "int32")
        rows = ops.clip(ops.arange(height, dtype="int32")[None, :] + shift_y, 0, height - 1)
        columns = ops.clip(ops.arange(width, dtype="int32")[None, :] + shift_x, 0, width - 1)
        images = tf.gather(images, rows, axis=1, batch_dims=1)
        images = tf.gather(images, columns, axis=2, batch_dims=1)
    if "cutout" in policy:
        half_y, half_x = height // 2, width // 2
        top = ops.floor(uniform((batch, 1, 1, 1), 0, height - half_y + 1))
        left = ops.floor(uniform((batch, 1, 1, 1), 0, width - half_x + 1))
        y = ops.reshape(ops.arange(height, dtype=images.dtype), (1, height, 1, 1))
        x = ops.reshape(ops.arange(width, dtype=images.dtype), (1, 1, width, 1))
        inside = (y >= top) & (y < top + half_y) & (x >= left) & (x < left + half_x)
        images = images * (1.0 - ops.cast(inside, images.dtype))
    return images


def _check_options(label_smoothing, label_noise, augment, ema_kimg, ema_rampup, r1_gamma, r1_interval) -> None:
    if not r1_gamma >= 0:
        raise ValueError(f"r1_gamma must be 0 (no penalty) or positive. Received: r1_gamma={r1_gamma!r}")
    if isinstance(r1_interval, bool) or not (isinstance(r1_interval, int) and r1_interval >= 1):
        raise ValueError(f"r1_interval must be a whole number of steps, at least 1. Received: {r1_interval!r}")
    if not ema_kimg >= 0:
        raise ValueError(f"ema_kimg must be 0 (no EMA) or positive. Received: ema_kimg={ema_kimg!r}")
    if not 0 < ema_rampup <= 1:
        raise ValueError(f"ema_rampup must be in (0, 1]. Received: ema_rampup={ema_rampup!r}")
    unknown = [name for name in augment if name not in AUGMENT_POLICIES]
    if unknown:
        raise ValueError(f"augment takes names from {AUGMENT_POLICIES}. Received: augment={tuple(augment)!r}")
    for option, value in (("label_smoothing", label_smoothing), ("label_noise", label_noise)):
        if not 0.0 <= value < 0.5:
            raise ValueError(f"{option} must be in [0, 0.5). Received: {option}={value!r}")


def update_ema(generator, generator_ema, decay) -> None:
    """Move the EMA's weights towards the generator's (statistics such as BatchNorm's are copied)."""
    trainable = {id(variable) for variable in generator.trainable_weights}
    for weight, average in zip(generator.weights, generator_ema.weights):
        if id(weight) in trainable:
            average.assign(decay * average + (1.0 - decay) * weight)
        else:
            average.assign(weight)


class GlobalBatch:
    """One global batch over a strategy's replicas: random numbers and losses as one device would have them.

    Random numbers are drawn for the global batch and each replica takes its rows; a loss is
    the sum over the replica's images divided by the global batch, so the replicas' summed
    gradients are the global batch's. Without a strategy: one replica, the whole batch.
    """

    def __init__(self, seed_generator):
        self.seed_generator = seed_generator
        # Per image: each replica sums its images' losses and divides by the global batch.
        self.loss_fn = keras.losses.BinaryCrossentropy(from_logits=True, reduction=None)

    @staticmethod
    def replicas():
        """(this replica's index, replicas in sync): (0, 1) without a strategy."""
        context = tf.distribute.get_replica_context()
        return context.replica_id_in_sync_group, context.num_replicas_in_sync

    def _slice_of_global(self, draw, shape):
        """`draw(shape)` made for the global batch, then this replica's rows: the numbers one device would use."""
        replica, replicas = self.replicas()
        values = draw((shape[0] * replicas, *shape[1:]))
        if replicas == 1:
            return values
        return tf.gather(ops.reshape(values, (replicas, shape[0], *shape[1:])), replica)

    def normal(self, shape):
        return self._slice_of_global(lambda full: keras.random.normal(full, seed=self.seed_generator), shape)

    def uniform(self, shape, low=0.0, high=1.0):
        return self._slice_of_global(
            lambda full: keras.random.uniform(full, low, high, seed=self.seed_generator), shape
        )

    def loss(self, targets, logits, global_batch):
        """The replica's share of the global batch's mean loss (replica shares sum to it)."""
        return ops.sum(self.loss_fn(targets, logits)) / ops.cast(global_batch, "float32")


class DCGAN(keras.Model):
    """A generator and a discriminator trained against each other by `fit()` on batches of real images.

    Each step trains the discriminator on generated (label 1) and real (label 0) images in
    one batch, then the generator to make the discriminator say "real" (the non-saturating
    loss). label_smoothing lifts real targets from 0 to that value; label_noise moves every
    target towards 0.5 by a uniform random amount up to that value. With ema_kimg > 0,
    `generator_ema` follows the generator's weights as an exponential moving average whose
    half-life is ema_kimg thousand images, at most ema_rampup of the images shown so far (see
    `ema_decay`), as StyleGAN2-ADA's G_ema: it makes the samples, the raw generator is what
    trains. With r1_gamma > 0 the discriminator's loss adds the R1 penalty (Mescheder et al.,
    2018): r1_gamma / 2 times the squared norm of its logit's gradient with respect to real
    images, which keeps it smooth around them. The penalty is lazy, as StyleGAN2's: it is
    computed on every r1_interval-th step only, weighted by r1_interval, so it costs a fraction
    of a step on average (1: every step).

    Built and compiled in a tf.distribute strategy's scope, each replica trains on its slice
    of the global batch: random numbers (latents, label noise, augmentation) are drawn for
    the global batch and sliced, losses are sums over the replica's images divided by the
    global batch (so the summed gradients are the global batch's), and each optimizer and
    the EMA take one step per global step. N replicas compute what one device would.
    """

    def __init__(
        self,
        generator,
        discriminator,
        label_smoothing: float = 0.0,
        label_noise: float = 0.0,
        augment: tuple[str, ...] = (),
        seed: int | None = None,
        ema_kimg: float = 0.0,
        generator_ema=None,
        ema_rampup: float = EMA_RAMPUP,
        r1_gamma: float = 0.0,
        r1_interval: int = 1,
        **kwargs,
    ):
        super().__init__(**kwargs)
        _check_options(label_smoothing, label_noise, augment, ema_kimg, ema_rampup, r1_gamma, r1_interval)
        self.r1_gamma = float(r1_gamma)
        self.r1_interval = r1_interval
        self.ema_half_life = float(ema_kimg) * 1000.0
        self.ema_rampup = float(ema_rampup)
        if ema_kimg and generator_ema is None:
            generator_ema = ema_copy(generator)
        self.generator_ema = generator_ema if ema_kimg else None
        self.augment = tuple(augment)
        self.generator = generator
        self.discriminator = discriminator
        self.latent_dim = int(generator.input_shape[-1])
        self.label_smoothing = float(label_smoothing)
        self.label_noise = float(label_noise)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.global_batch = GlobalBatch(self.seed_generator)
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.p_fake_real_tracker = keras.metrics.Mean(name="d_p_fake_real")
        self.p_fake_fake_tracker = keras.metrics.Mean(name="d_p_fake_fake")
        self.built = True  # both networks are built: fit() need not trace call() on a batch of images

    def compile(self, d_optimizer, g_optimizer, **kwargs):
        """Both optimizers, with their variables made now (in the strategy's scope, if any)."""
        super().compile(optimizer=None, jit_compile=kwargs.pop("jit_compile", False), **kwargs)
        self.d_optimizer = d_optimizer
        self.g_optimizer = g_optimizer
        self.build_optimizers()

    def build_optimizers(self) -> None:
        """Create both optimizers' variables now (before restoring saved ones into them)."""
        if not self.d_optimizer.built:
            self.d_optimizer.build(self.discriminator.trainable_variables)
        if not self.g_optimizer.built:
            self.g_optimizer.build(self.generator.trainable_variables)

    @property
    def metrics(self):
        return [self.d_loss_tracker, self.g_loss_tracker, self.p_fake_real_tracker, self.p_fake_fake_tracker]

    def call(self, latents, training=False):
        return self.generator(latents, training=training)

    # ----------------------------------------------------------------- the step

    def _targets(self, fake: bool, batch_size):
        hard = ops.ones((batch_size, 1)) if fake else ops.full((batch_size, 1), self.label_smoothing)
        if not self.label_noise:
            return hard
        toward_half = -1.0 if fake else 1.0
        return hard + toward_half * self.label_noise * self.global_batch.uniform((batch_size, 1))

    def _r1_penalty(self, reals, global_batch):
        """r1_gamma / 2 times the squared slope of the logit at each real image: the replica's share.

        Its own discriminator pass, which leaves spectral normalisation's `u` to the loss's pass
        (so the lazy penalty can run inside tf.cond under a strategy of several replicas).
        """
        with holding_u(self.discriminator), tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(reals)
            total = ops.sum(ops.cast(self.discriminator(reals, training=False), "float32"))
        slopes = ops.cast(tape.gradient(total, reals), "float32")
        return 0.5 * self.r1_gamma * ops.sum(ops.square(slopes)) / ops.cast(global_batch, "float32")

    def _lazy_r1_penalty(self, reals, global_batch):
        """The R1 penalty times r1_interval on every r1_interval-th discriminator step, 0 on the others."""
        if self.r1_interval == 1:
            return self._r1_penalty(reals, global_batch)
        due = ops.equal(self.d_optimizer.iterations % self.r1_interval, 0)
        return tf.cond(due, lambda: self.r1_interval * self._r1_penalty(reals, global_batch), lambda: tf.constant(0.0))

    def _augmented(self, images):
        return diff_augment(images, self.augment, self.global_batch.uniform) if self.augment else images

    def train_step(self, data):
        real = data[0] if isinstance(data, (tuple, list)) else data
        batch_size = ops.shape(real)[0]  # this replica's share of the global batch
        global_batch = batch_size * self.global_batch.replicas()[1]
        d_loss, fake_logits, real_logits = self._discriminator_step(real, batch_size, global_batch)
        g_loss = self._generator_step(batch_size, global_batch)
        if self.generator_ema is not None:
            shown = ops.cast(self.g_optimizer.iterations, "float32") * ops.cast(global_batch, "float32")
            decay = ema_decay(shown, ops.cast(global_batch, "float32"), self.ema_half_life, self.ema_rampup)
            update_ema(self.generator, self.generator_ema, decay)

        # Each replica's mean: the metrics average them over replicas into the global batch's mean.
        share = ops.cast(global_batch, "float32") / ops.cast(batch_size, "float32")
        self.d_loss_tracker.update_state(d_loss * share)
        self.g_loss_tracker.update_state(g_loss * share)
        self.p_fake_fake_tracker.update_state(ops.mean(ops.sigmoid(fake_logits)))
        self.p_fake_real_tracker.update_state(ops.mean(ops.sigmoid(real_logits)))
        return {metric.name: metric.result() for metric in self.metrics}

    def generator_loss(self, fakes, batch_size, global_batch):
        """The generator's loss on its fakes: the discriminator's cross-entropy against "real" (0)."""
        g_logits = self.discriminator(self._augmented(fakes), training=False)
        return self.global_batch.loss(ops.zeros((batch_size, 1)), g_logits, global_batch)

    def _discriminator_step(self, real, batch_size, global_batch):
        """One step of the discriminator on fresh fakes (label 1) and the reals (label 0); its loss and logits.

        The discriminator runs in inference mode, in both steps: its BatchNorm layers apply
        their fixed statistics (an affine map with trainable scale and offset) and its dropout
        is off. With batch statistics, BatchNorm just before the linear head gives every batch
        the same mean logit, and its max-pooling CNN teaches the generator stripes long before
        faces: on 64 px SynthFaces, 400 steps make face-like samples this way and grey noise
        the other. The saved discriminator also scores images exactly as it did in training.
        """
        fakes = self.generator(self.global_batch.normal((batch_size, self.latent_dim)), training=True)
        with tf.GradientTape() as tape:
            # Fakes and reals are augmented apart, so each image gets the draw it would get on one device.
            shown = ops.concatenate([self._augmented(fakes), self._augmented(real)], axis=0)
            logits = self.discriminator(shown, training=False)
            fake_logits, real_logits = logits[:batch_size], logits[batch_size:]
            d_loss = 0.5 * (
                self.global_batch.loss(self._targets(True, batch_size), fake_logits, global_batch)
                + self.global_batch.loss(self._targets(False, batch_size), real_logits, global_batch)
            )
            if self.r1_gamma:
                d_loss = d_loss + self._lazy_r1_penalty(shown[batch_size:], global_batch)
            scaled = self.d_optimizer.scale_loss(d_loss)  # under mixed_float16: against float16 underflow
        gradients = tape.gradient(scaled, self.discriminator.trainable_variables)
        self.d_optimizer.apply_gradients(zip(gradients, self.discriminator.trainable_variables))
        return d_loss, fake_logits, real_logits

    def _generator_step(self, batch_size, global_batch):
        """One step of the generator towards fakes the discriminator calls real (the non-saturating loss)."""
        latents = self.global_batch.normal((batch_size, self.latent_dim))
        with tf.GradientTape() as tape:
            g_loss = self.generator_loss(self.generator(latents, training=True), batch_size, global_batch)
            scaled = self.g_optimizer.scale_loss(g_loss)
        gradients = tape.gradient(scaled, self.generator.trainable_variables)
        self.g_optimizer.apply_gradients(zip(gradients, self.generator.trainable_variables))
        return g_loss
