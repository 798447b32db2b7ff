"""Where training runs and in what precision: a tf.distribute strategy, a Keras dtype policy, XLA.

    scaling = Scaling.of(config)            # config.strategy, config.devices, config.precision, config.jit
    with scaling.scope():                   # models and optimizers made here live on the strategy's
        model = build_model("cnn3", 64)     # devices and compute in the config's precision
    model.compile(..., jit_compile=config.jit)
    if scaling.is_chief: ...                # only the chief of a cluster writes the run directory

Strategies: "default" (one device, no tf.distribute), "mirrored" (MirroredStrategy over this
machine's GPUs, or the devices named in `devices`), "multiworker" (MultiWorkerMirroredStrategy,
the cluster from the TF_CONFIG environment variable as TensorFlow defines it). The batch size
of a run is the global batch: each of N replicas sees 1/N of it. Precisions are Keras
dtype policies: "float32", "mixed_float16" (GPUs; losses are scaled against underflow) and
"mixed_bfloat16" (GPUs, TPUs and recent CPUs); variables, model outputs and losses stay
float32 in every one. "auto" is the faster of two measured on CPUs: mixed_bfloat16 where the
CPU has bfloat16 arithmetic and there is no GPU, float32 elsewhere (see `resolve_precision`);
a run's config.json records what it became.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Literal, get_args

from detector.base.errors import LabError
from detector.training.lifecycle import recorded_config, refuse, require_choice, run_claims, say

Strategy = Literal["default", "mirrored", "multiworker"]
STRATEGIES = get_args(Strategy)
Precision = Literal["float32", "mixed_float16", "mixed_bfloat16", "auto"]
PRECISIONS = get_args(Precision)
# Options that change where and how fast a run trains, not what it learns: a resumed run may change them.
RESUME_CHANGEABLE = ("strategy", "devices", "jit")


@dataclasses.dataclass(kw_only=True)
class DistributeOptions:
    """Where a run computes: the configs of runs that only score inherit these."""

    strategy: Strategy = "default"  # "mirrored": every GPU here (or --devices); "multiworker": the TF_CONFIG cluster
    devices: tuple[str, ...] | None = None  # with strategy "mirrored": the devices to mirror over; None: every GPU
    jit: bool = False  # compile steps with XLA (faster on most GPUs, slower on CPUs)


@dataclasses.dataclass(kw_only=True)
class ScalingOptions(DistributeOptions):
    """Where and in what precision a run trains: training run configs inherit these."""

    precision: Precision = "float32"  # "mixed_float16" or "mixed_bfloat16": compute in 16 bits, keep weights in 32; "auto": mixed_bfloat16 on a CPU with bfloat16 arithmetic and no GPU, else float32 (recorded as which)


# One strategy per process and kind: TensorFlow allows one MultiWorkerMirroredStrategy per program.
_STRATEGIES: dict = {}


def check_options(config) -> None:
    """LabError naming the first of the config's strategy, devices, precision and jit options that is wrong."""
    require_choice(config, "strategy", STRATEGIES)
    if hasattr(config, "precision"):
        require_choice(config, "precision", PRECISIONS)
    if not isinstance(config.jit, bool):
        refuse(config, "jit", "True or False")
    devices = config.devices
    if devices is not None and (
        not isinstance(devices, (list, tuple)) or not devices or not all(isinstance(d, str) and d for d in devices)
    ):
        refuse(config, "devices", "None or a list of device names such as /gpu:0 /gpu:1")
    if devices is not None and config.strategy != "mirrored":
        refuse(config, "devices", f"None unless strategy is 'mirrored' (strategy={config.strategy!r})")


# /proc/cpuinfo flags of x86 CPUs that compute in bfloat16 natively (AVX512-BF16, AMX).
BFLOAT16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


def cpu_has_bfloat16(cpuinfo: str | os.PathLike = "/proc/cpuinfo") -> bool:
    """Whether this machine's CPU has bfloat16 arithmetic, from the flags Linux lists (False where it lists none)."""
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return False
    return any(
        BFLOAT16_CPU_FLAGS & set(line.partition(":")[2].split())
        for line in text.splitlines()
        if line.startswith("flags")
    )


def resolve_precision(precision: str, strategy: str = "default") -> str:
    """`precision` itself, or for "auto" the faster one on this machine: "mixed_bfloat16" where there is no
    GPU and the CPU has bfloat16 arithmetic (on 2 such cores the quickstart trains in about 70% of the
    float32 time, with faces as often), "float32" elsewhere, and on a cluster ("multiworker"), where
    each machine would decide for itself."""
    if precision != "auto":
        return precision
    if strategy == "multiworker" or not cpu_has_bfloat16() or _has_gpu():
        return "float32"
    return "mixed_bfloat16"


def _has_gpu() -> bool:
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def _cluster() -> dict:
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        raise LabError(
            "strategy 'multiworker' needs the cluster in the TF_CONFIG environment variable, e.g. "
            '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}} '
            "(see docs/scaling.md)"
        )
    try:
        tf_config = json.loads(raw)
        cluster, task = tf_config["cluster"], tf_config["task"]
        understood = isinstance(cluster, dict) and bool(cluster) and task["type"] in cluster and int(task["index"]) >= 0
    except (ValueError, KeyError, TypeError):
        understood = False
    if not understood:
        raise LabError(
            f"TF_CONFIG must hold a cluster and this process's task in it, as TensorFlow defines it. Received: {raw!r}"
        )
    return tf_config


def _make_strategy(name: str, devices: tuple[str, ...] | None):
    import tensorflow as tf

    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        try:
            return tf.distribute.MirroredStrategy(list(devices) if devices else None)
        except (ValueError, RuntimeError) as error:
            raise LabError(f"Cannot mirror over devices {devices}: {error}") from None
    _cluster()
    try:
        return tf.distribute.MultiWorkerMirroredStrategy()
    except RuntimeError as error:  # TensorFlow was started before the strategy
        raise LabError(
            f"strategy 'multiworker' must be set up before TensorFlow runs anything in this process "
            f"(start a fresh Python process or kernel for it): {error}"
        ) from None


@dataclasses.dataclass(frozen=True)
class Scaling:
    """The strategy, precision and XLA choice of one run."""

    strategy_name: Strategy = "default"
    devices: tuple[str, ...] | None = None
    precision: Precision = "float32"
    jit: bool = False

    @classmethod
    def of(cls, config) -> Scaling:
        """The scaling of a run config (DistributeOptions or ScalingOptions); LabError for a bad option."""
        check_options(config)
        devices = tuple(config.devices) if config.devices is not None else None
        precision = resolve_precision(getattr(config, "precision", "float32"), config.strategy)
        return cls(config.strategy, devices, precision, config.jit)

    @property
    def strategy(self):
        """The tf.distribute strategy, made once per process."""
        key = (self.strategy_name, self.devices)
        if key not in _STRATEGIES:
            _STRATEGIES[key] = _make_strategy(*key)
        return _STRATEGIES[key]

    @property
    def replicas(self) -> int:
        return int(self.strategy.num_replicas_in_sync)

    @property
    def is_chief(self) -> bool:
        """Whether this process writes the run: always, but on the non-chief workers of a cluster."""
        return bool(self.strategy.extended.should_checkpoint)

    @property
    def task(self) -> str:
        """ "worker 1" on a cluster's worker (its TF_CONFIG task), "" elsewhere."""
        resolver = getattr(self.strategy, "cluster_resolver", None)
        if self.strategy_name != "multiworker" or resolver is None:
            return ""
        return f"{resolver.task_type} {resolver.task_id}"

    @contextlib.contextmanager
    def scope(self):
        """Models, optimizers and metrics created inside live on the strategy and compute in the precision."""
        with self.strategy.scope(), dtype_policy(self.precision):
            yield

    def check_batch(self, batch_size: int) -> None:
        """LabError when the global batch does not split evenly over the replicas, or when mixed_float16
        meets several replicas (Keras' loss scaling decides on a float16 overflow replica by replica, so one
        replica's overflow could reach every replica's weights)."""
        replicas = self.replicas
        if batch_size % replicas:
            raise LabError(
                f"batch_size must split evenly over the {replicas} replicas: give a multiple of {replicas}. "
                f"Received: batch_size={batch_size}"
            )
        if self.precision == "mixed_float16" and replicas > 1:
            raise LabError(
                f"precision 'mixed_float16' trains on one replica only ({replicas} here): use 'mixed_bfloat16' "
                "on several GPUs (it needs no loss scaling)"
            )

    def distribute(self, dataset):
        """`dataset` of global batches, to be split by element (not by file) between a cluster's workers."""
        import tensorflow as tf

        if self.strategy_name != "multiworker":
            return dataset
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        return dataset.with_options(options)

    @contextlib.contextmanager
    def worker_scratch(self, runs_dir, resume, progress: bool):
        """(runs_dir, resume, progress) for this process's run: as given on the chief; on another worker of a
        cluster, a temporary folder (removed afterwards) holding a copy of the run to resume, and no progress.

        Every worker runs the same steps, the chief's in the run directory, the others' on the side,
        so that only the chief writes the run (TensorFlow's advice for multi-worker checkpoints).
        """
        if self.is_chief:
            yield runs_dir, resume, progress
            return
        scratch = Path(tempfile.mkdtemp(prefix="gan-lab-worker-"))
        say(
            progress,
            f"{self.task}: training in step with the chief; this worker's copies go to {scratch} (removed after)",
        )
        try:
            if resume is not None:
                resume = _copy_run(Path(resume), scratch)
            yield scratch, resume, False
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def fit(self, model, dataset, **options):
        """`model.fit(dataset, **options)` on the strategy, for a model made in `scope()`.

        Under MultiWorkerMirroredStrategy, Keras 3's fit() fails twice (keras-team/keras#20585):
        in the pass that builds a model from a first distributed batch, and where it averages each
        step's scalar logs over the workers along an axis they do not have. There the model's
        optimizer and metrics are built from a batch of this worker's own, fit() runs in the
        strategy's scope with the model's record of its strategy set aside (which skips that
        pass), and each step's logs are vectors of one value while it runs.
        """
        if self.strategy_name != "multiworker":
            return model.fit(dataset, **options)
        model._maybe_symbolic_build(data_batch=next(iter(dataset)))
        own = model._distribute_strategy
        model._distribute_strategy = None
        model.train_step, model.test_step = _vector_logs(model.train_step), _vector_logs(model.test_step)
        try:
            with self.strategy.scope():
                return model.fit(dataset, **options)
        finally:
            model._distribute_strategy = own
            del model.train_step, model.test_step  # the class's own again

    def describe(self) -> str:
        """ "2 replicas (mirrored), mixed_bfloat16, XLA" or "" for the defaults."""
        parts = []
        if self.strategy_name != "default":
            parts.append(f"{self.replicas} replicas ({self.strategy_name})")
        if self.precision != "float32":
            parts.append(self.precision)
        if self.jit:
            parts.append("XLA")
        return ", ".join(parts)


def _copy_run(run_dir: Path, scratch: Path) -> Path:
    """A copy of the run to resume, for a worker that must not write into it. The chief is cleaning the
    run meanwhile (temporary files, outdated reports): files that vanish while being copied are left
    out, as are temporary names and TensorBoard logs; committed epochs never change once written."""
    copy = scratch / run_dir.resolve().name
    try:
        shutil.copytree(run_dir, copy, symlinks=True, ignore=shutil.ignore_patterns(".*", "tensorboard"))
    except shutil.Error:  # some files vanished mid-copy; the rest was copied
        pass
    return copy


def _vector_logs(step):
    """`step` with each scalar it logs as a vector of one value, which Keras can average over workers."""
    import keras

    def logged_as_vectors(data):
        return {name: keras.ops.reshape(value, (1,)) for name, value in step(data).items()}

    return logged_as_vectors


def run_scaling(kind: str, config_class: type, config, resume) -> Scaling:
    """The scaling of a run about to start (`config`) or resume (`config` if given, else the run's own;
    "auto" precision given on resuming means the run's own)."""
    if resume is not None:
        _, recorded, _ = recorded_config(resume, kind, config_class)
        if config is None:
            config = recorded
        elif getattr(config, "precision", None) == "auto":
            config = dataclasses.replace(config, precision=recorded.precision)
    return Scaling.of(config if config is not None else config_class())


def train_on_cluster(kind: str, config_class: type, train, config, runs_dir, resume, progress: bool, callbacks):
    """`train(config, runs_dir, resume, progress, callbacks, scaling)` as this process's part of a run.

    The run directory on the chief; None on another worker of a cluster, which trains in step
    in a temporary folder it removes (see `Scaling.worker_scratch`).
    """
    scaling = run_scaling(kind, config_class, config, resume)
    with scaling.worker_scratch(runs_dir, resume, progress) as (runs_dir, resume, progress), run_claims():
        run_dir = train(config, runs_dir, resume, progress, callbacks, scaling)
    return run_dir if scaling.is_chief else None


@contextlib.contextmanager
def dtype_policy(precision: str):
    """Keras' global dtype policy set to `precision` inside the block, restored after it."""
    import keras

    before = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(before)
