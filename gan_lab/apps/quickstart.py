"""The main job on one command: data -> detector -> DCGAN -> stress test -> one report."""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import ClassVar, Literal

from detector.base.runs import (
    atomic_write_text,
    create_run_dir,
    list_runs,
    read_json,
    write_json,
)
from detector.data.synthfaces import Difficulty
from detector.training import lifecycle
from detector.training.scaling import Precision, ScalingOptions, resolve_precision, run_scaling

# What each preset trains. "default" takes about 15 minutes on 2 CPU cores with bfloat16 arithmetic
# (22 in float32 on the same cores; see docs/performance.md); "full" is the published setting (128 px, the
# seed128 generator) for a GPU or a long night; "tiny" is for tests and for checking an install in a minute.
PRESETS = {
    "tiny": dict(
        size=32,
        synth_n=240,
        detector_epochs=1,
        gan_epochs=2,
        gan_batch_size=16,
        gan_steps_per_epoch=3,
        generator_preset=None,
        stress_n=32,
        sweeps=True,
    ),
    "default": dict(
        size=64,
        synth_n=3000,
        detector_epochs=5,
        gan_epochs=12,
        gan_batch_size=32,
        gan_steps_per_epoch=100,
        generator_preset=None,
        stress_n=400,
        sweeps=True,
    ),
    "full": dict(
        size=128,
        synth_n=20000,
        detector_epochs=20,
        gan_epochs=50,
        gan_batch_size=64,
        gan_steps_per_epoch=None,
        generator_preset="seed128",
        stress_n=1000,
        sweeps=True,
    ),
}
STEPS = ("detector", "gan", "stress")
QUICKSTART_INCEPTION_N = 128
QUICKSTART_FACES_N = 256  # as many as the GAN's own faces_found watch looks at each epoch


@dataclasses.dataclass
class QuickstartConfig(ScalingOptions):
    """Every option of a quickstart; those left None come from the preset.

    Beside these: strategy, devices and jit for both trainings (see `detector.training.scaling`); the
    stress test scores on the chief, with "mirrored" on its devices.
    """

    # "auto" (mixed_bfloat16 on a CPU with bfloat16 arithmetic and no GPU, else float32) or a precision as in
    # `detector.training.scaling`; a quickstart's config.json records what "auto" became when it started
    precision: Precision = dataclasses.field(default="auto", kw_only=True)

    data: str = "synth"  # an image folder, or "synth" for SynthFaces
    preset: Literal["tiny", "default", "full"] = (
        "default"  # tiny: a one-minute check; full: the published 128 px setting
    )
    seed: int = 0  # one seed for every step
    name: str = ""  # run directory suffix
    difficulty: Difficulty = "medium"  # with data="synth": how subtle the fakes are
    size: int | None = None  # image side in pixels, for the detector and the GAN
    synth_n: int | None = None  # with data="synth": SynthFaces images in total, half real
    detector_epochs: int | None = None  # the detector's most epochs
    gan_epochs: int | None = None  # the GAN's epochs
    gan_batch_size: int | None = None  # real images per GAN step
    gan_steps_per_epoch: int | None = None  # GAN steps per epoch (None in the preset: one pass over the reals)
    generator_preset: str | None = None  # the generator preset ("seed128" in "full")
    stress_n: int | None = None  # fresh fakes per GAN epoch in the stress test
    sweeps: bool | None = None  # robustness sweeps in the stress test

    # What a config.json written before an option existed meant by leaving it out.
    ABSENT: ClassVar[dict] = {"precision": "float32"}

    def resolved(self) -> QuickstartConfig:
        """A copy with every unset option taken from the preset."""
        if self.preset not in PRESETS:
            raise ValueError(f"preset must be one of {sorted(PRESETS)}. Received: preset={self.preset!r}")
        values = {key: value for key, value in dataclasses.asdict(self).items() if value is not None}
        return QuickstartConfig(**{**PRESETS[self.preset], **values})


def _step_configs(config: QuickstartConfig, data: str):
    from detector.training.train import DetectorConfig
    from gan_lab.gan.train import GanConfig
    from gan_lab.stress.inputs import StressConfig

    distribute = dict(strategy=config.strategy, devices=config.devices, jit=config.jit)
    detector = DetectorConfig(
        **distribute,
        precision=config.precision,
        data=data,
        model="cnn3",
        size=config.size,
        epochs=config.detector_epochs,
        seed=config.seed,
        name=f"quickstart-cnn3-{config.size}px",
        synth_n=config.synth_n,
        synth_difficulty=config.difficulty,
    )
    gan = GanConfig(
        **distribute,
        precision=config.precision,
        data=data,
        size=config.size,
        epochs=config.gan_epochs,
        batch_size=config.gan_batch_size,
        steps_per_epoch=config.gan_steps_per_epoch,
        preset=config.generator_preset,
        seed=config.seed,
        name=f"quickstart-{config.size}px",
        synth_n=config.synth_n,
    )
    stress = StressConfig(
        strategy="mirrored" if config.strategy == "mirrored" else "default",
        devices=config.devices,
        jit=config.jit,
        detector="",
        gan="",
        n=config.stress_n,
        # InceptionV3 at 299 px runs at about 16 images/s on 2 CPU cores: a bounded sample per epoch.
        inception_n=min(config.stress_n, QUICKSTART_INCEPTION_N),
        # MTCNN runs at about 300 images/s on 2 CPU cores.
        faces_n=min(config.stress_n, QUICKSTART_FACES_N),
        seed=config.seed,
        sweeps=config.sweeps,
        name="quickstart",
    )
    return detector, gan, stress


def _open_run(config: QuickstartConfig | None, runs_dir, resume):
    """(run directory, resolved config, state, runs_dir) of a new quickstart, or of `resume`.

    A config given with `resume` must agree with the run's: a quickstart's steps are fixed once started.
    """
    if resume is not None:
        run_dir, recorded, record = lifecycle.recorded_config(resume, "quickstart", QuickstartConfig)
        given = config.resolved() if config is not None else None
        config = lifecycle.resume_config(run_dir, recorded.resolved(), record, given, changeable=())
        state = read_json(run_dir / "state.json") if (run_dir / "state.json").is_file() else {}
        runs_dir = Path(state.get("runs_dir", runs_dir))
    else:
        config = config.resolved()
        config = dataclasses.replace(config, precision=resolve_precision(config.precision, config.strategy))
        run_dir = create_run_dir("quickstart", config.name, runs_dir)
        write_json(run_dir / "config.json", config)
        state = {"runs_dir": os.fspath(Path(runs_dir).resolve())}
    write_json(run_dir / "state.json", state)
    return run_dir, config, state, runs_dir


def _train_beside_the_chief(config: QuickstartConfig | None, runs_dir, resume, progress: bool) -> None:
    """A non-chief worker's part of a multiworker quickstart: both trainings, in step with the chief.

    A new quickstart renders its own copy of the data (the chief may be writing its own); a resumed
    one reads the chief's state and data (on the file system the cluster shares, as the runs are)."""
    import tempfile

    from detector.data.synthfaces import resolve_data
    from detector.training.train import train_detector
    from gan_lab.gan.train import train_gan

    state = {}
    if resume is not None:
        _, recorded, _ = lifecycle.recorded_config(resume, "quickstart", QuickstartConfig)
        config = recorded.resolved()
        state = read_json(Path(resume) / "state.json") if (Path(resume) / "state.json").is_file() else {}
    else:
        config = config.resolved()
    with tempfile.TemporaryDirectory(prefix="gan-lab-worker-data-") as scratch:
        data = resolve_data(
            config.data,
            state.get("runs_dir", scratch),
            size=config.size,
            n=config.synth_n,
            seed=config.seed,
            difficulty=config.difficulty,
        )
        detector_config, gan_config, _ = _step_configs(config, os.fspath(data))
        for key, train, step_config in (("detector", train_detector, detector_config), ("gan", train_gan, gan_config)):
            if not state.get(f"{key}_complete"):
                train(step_config, runs_dir=runs_dir, resume=state.get(key), progress=progress)


def run_quickstart(
    config: QuickstartConfig, runs_dir: str | os.PathLike = "runs", resume=None, progress: bool = True
) -> Path | None:
    """Run every step, each into its own run directory, and link them from one report.

    `resume` is an interrupted quickstart directory: finished steps are kept, an interrupted
    detector or GAN run continues from its last complete epoch. With strategy "multiworker",
    every worker runs this with the same options: the chief runs every step and returns the
    quickstart directory, the others train in step with it and return None.
    """
    from detector.data.synthfaces import resolve_data
    from detector.training.train import train_detector
    from gan_lab.gan.train import train_gan
    from gan_lab.stress.run import run_stress

    scaling = run_scaling("quickstart", QuickstartConfig, config, resume)
    if not scaling.is_chief:
        _train_beside_the_chief(config, runs_dir, resume, progress)
        return None
    run_dir, config, state, runs_dir = _open_run(config, runs_dir, resume)

    steps = _Steps(run_dir, runs_dir, state, progress)
    started = time.monotonic()
    data = os.fspath(
        resolve_data(
            config.data, runs_dir, size=config.size, n=config.synth_n, seed=config.seed, difficulty=config.difficulty
        )
    )
    steps.say(f"data: {data}")
    detector_config, gan_config, stress_config = _step_configs(config, data)
    detector_run = steps.run(
        "detector",
        "1/3 training the cnn3 detector",
        lambda resume: train_detector(detector_config, runs_dir=runs_dir, resume=resume, progress=progress),
    )
    gan_run = steps.run(
        "gan",
        "2/3 training the DCGAN",
        lambda resume: train_gan(gan_config, runs_dir=runs_dir, resume=resume, progress=progress),
    )
    stress_config.detector, stress_config.gan = os.fspath(detector_run), os.fspath(gan_run)
    stress_run = steps.run(
        "stress",
        "3/3 stress-testing the detector on every GAN epoch",
        lambda resume: run_stress(stress_config, runs_dir=runs_dir, progress=progress),
    )
    minutes = (time.monotonic() - started) / 60
    report = write_report(run_dir, config, detector_run, gan_run, stress_run, minutes)
    steps.say(f"done in {minutes:.1f} min. Report: {report}")
    steps.say(f"See every run in a browser: gan-lab serve --runs-dir {runs_dir}, then open http://127.0.0.1:5000/lab")
    return run_dir


class _Steps:
    """The quickstart's steps, each into a run directory of its own (detector, gan, stress), recorded in state.json."""

    def __init__(self, run_dir: Path, runs_dir, state: dict, progress: bool):
        self.run_dir, self.runs_dir, self.state, self.progress = run_dir, runs_dir, state, progress

    def say(self, message: str) -> None:
        if self.progress:
            print(f"[quickstart] {message}", flush=True)

    def run(self, kind: str, title: str, start) -> Path:
        """Run one step, unless an earlier attempt finished it; `start(resume)` returns its run directory."""
        state = self.state
        if state.get(f"{kind}_complete"):
            self.say(f"{title}: already done in {state[kind]}")
            return Path(state[kind])
        self.say(f"{title} ...")
        before = set(list_runs(self.runs_dir, kind))
        try:
            with lifecycle.interruptible(self.run_dir):  # Ctrl-C names the quickstart to resume, not its step
                run = start(state.get(kind))
        finally:
            # Record the step's run directory even when interrupted, so --resume continues it.
            new = [path for path in list_runs(self.runs_dir, kind) if path not in before]
            if new and kind not in state:
                state[kind] = os.fspath(new[-1].resolve())
                write_json(self.run_dir / "state.json", state)
        state[kind], state[f"{kind}_complete"] = os.fspath(Path(run).resolve()), True
        write_json(self.run_dir / "state.json", state)
        self.say(f"{title}: wrote {run}")
        return Path(run)


def _relative(path: Path, start: Path) -> str:
    return Path(os.path.relpath(path, start)).as_posix()


def _most_faces_lines(run_dir: Path, gan_run: Path) -> list[str]:
    """The GAN epoch whose samples MTCNN found most faces in, when it is not the last: the one to sample from."""
    from gan_lab.gan.report import best_faces_epoch, read_history

    rows = read_history(gan_run)
    best = best_faces_epoch(rows)
    if best is None or best["faces_found"] == 0 or best["epoch"] == rows[-1]["epoch"]:
        return []
    real = read_json(gan_run / "metrics.json").get("real_faces_found")
    against = f" (real training images: {100 * real:.1f}%)" if real is not None else ""
    grid = gan_run / "samples" / f"epoch-{best['epoch']:04d}.png"
    return [
        "",
        f"## The epoch with the most faces: {best['epoch']}",
        "",
        f"MTCNN found a face in {100 * best['faces_found']:.1f}% of its samples{against}, against "
        f"{100 * rows[-1]['faces_found']:.1f}% at the last epoch (the GAN run's `faces_found` column). "
        f"`gan-lab gan sample {gan_run} --epoch {best['epoch']}` draws from it.",
        "",
        f"![samples]({_relative(grid, run_dir)})",
    ]


DETECTOR_FIGURES = ("accuracy", "precision", "recall", "f1", "roc_auc")


def write_report(
    run_dir: Path, config: QuickstartConfig, detector_run: Path, gan_run: Path, stress_run: Path, minutes: float
) -> Path:
    """report.md and metrics.json: the three runs' headline figures and pictures, linked relative to the report."""
    from gan_lab.stress.report import summary_lines

    metrics = read_json(detector_run / "metrics.json")
    lines = [
        "# gan-lab quickstart",
        "",
        f"Preset `{config.preset}`: {config.size} px, data `{config.data}`, seed {config.seed}; "
        f"finished in {minutes:.1f} minutes.",
        "",
        *_steps_table(run_dir, detector_run, gan_run, stress_run),
        "",
        "## The detector on its own test split",
        "",
        "| accuracy | precision | recall | F1 | ROC-AUC |",
        "| --- | --- | --- | --- | --- |",
        "| " + " | ".join(f"{metrics.get(key, float('nan')):.3f}" for key in DETECTOR_FIGURES) + " |",
        "",
        "## The detector against fresh fakes from each GAN epoch",
        "",
        *summary_lines(stress_run),
        *_picture_lines(run_dir, gan_run, stress_run),
    ]
    stress_rows = read_json(stress_run / "results.json")
    epoch_rows = [
        row for row in stress_rows if row.get("kind", "epoch") == "epoch" and row.get("detector") == "original"
    ]
    detector_figures = {key: metrics.get(key) for key in (*DETECTOR_FIGURES, "threshold")}
    write_json(run_dir / "metrics.json", {"detector": detector_figures, "stress": epoch_rows})
    return atomic_write_text(run_dir / "report.md", "\n".join(lines) + "\n")


def _steps_table(run_dir: Path, detector_run: Path, gan_run: Path, stress_run: Path) -> list[str]:
    lines = ["| step | run | report |", "| --- | --- | --- |"]
    for title, run in (("detector", detector_run), ("DCGAN", gan_run), ("stress test", stress_run)):
        report = run / "report.md"
        link = f"[report.md]({_relative(report, run_dir)})" if report.is_file() else "-"
        lines.append(f"| {title} | `{_relative(run, run_dir)}` | {link} |")
    return lines


def _picture_lines(run_dir: Path, gan_run: Path, stress_run: Path) -> list[str]:
    """The last epoch's grid, the most-faces epoch's, the progress GIF and the stress plots."""
    lines = []
    samples = sorted((gan_run / "samples").glob("epoch-*.png"))
    if samples:
        lines += [
            "",
            f"## Generated faces after the last epoch ({samples[-1].stem})",
            "",
            f"![samples]({_relative(samples[-1], run_dir)})",
        ]
    lines += _most_faces_lines(run_dir, gan_run)
    gif = gan_run / "progress.gif"
    if gif.is_file():
        lines += ["", f"Training progress, one frame per epoch: ![progress]({_relative(gif, run_dir)})"]
    for plot in sorted((stress_run / "plots").glob("*.png")):
        lines += ["", f"![{plot.stem}]({_relative(plot, run_dir)})"]
    return lines
