"""What the lab prints, wherever it prints: TensorFlow's start-up lines held back, and progress bars
that suit a terminal (live bars), a log file (a few plain lines) or a notebook (widgets).

Nothing here imports TensorFlow, so commands that never need it stay fast.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.abc
import importlib.machinery
import os
import re
import sys
import tempfile

# What TensorFlow's C++ libraries print while they load, before TF_CPP_MIN_LOG_LEVEL takes effect:
# absl's notice, INFO and WARNING lines (oneDNN, CPU features), and the CPU-features continuation.
# Errors (E, F lines) and anything else still get through.
_STARTUP_LINES = re.compile(
    r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|[IW]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [\w.]+:\d+\] .*"
    r"|To enable the following instructions: .*rebuild TensorFlow with the appropriate compiler flags\."
)
# How often a bar that is not in a terminal (a log file, CI) writes a line, in seconds.
LOG_INTERVAL_SECONDS = 30.0


def is_startup_line(line: str) -> bool:
    """Whether `line` is one of TensorFlow's C++ start-up lines (oneDNN, CPU features, absl's notice)."""
    return _STARTUP_LINES.fullmatch(line.rstrip("\r\n")) is not None


@contextlib.contextmanager
def _startup_lines_held_back():
    """Catch what is written to file descriptor 2 (where C++ code writes); pass on all but the start-up lines."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            text = caught.read().decode(errors="replace")
            kept = "".join(line for line in text.splitlines(keepends=True) if not is_startup_line(line))
            if kept:
                sys.stderr.write(kept)
                sys.stderr.flush()


class _HeldBackLoader(importlib.abc.Loader):
    """Runs a module's import with the start-up lines held back; the module keeps its own loader."""

    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        module.__spec__.loader = module.__loader__ = self.loader
        with _startup_lines_held_back():
            self.loader.exec_module(module)


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """Finds `tensorflow` as the import system would, and holds back its start-up lines while it loads."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)  # once: the first import is the one that loads the C++ libraries
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _HeldBackLoader(spec.loader)
        return spec


def quiet_tensorflow_startup() -> None:
    """Drop TensorFlow's C++ start-up lines (oneDNN, CPU features, absl) when it is first imported.

    TF_CPP_MIN_LOG_LEVEL does not silence them (they come before TensorFlow reads it), and
    TF_ENABLE_ONEDNN_OPTS=0 does but slows training twofold. This costs nothing: TensorFlow
    is imported when something first needs it, as before, with file descriptor 2 caught for
    the length of the import. Later messages are limited by TF_CPP_MIN_LOG_LEVEL (set to 2,
    warnings and up, unless already set). Does nothing once TensorFlow is imported.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" in sys.modules or any(isinstance(finder, _QuietTensorFlowImport) for finder in sys.meta_path):
        return
    sys.meta_path.insert(0, _QuietTensorFlowImport())


def in_notebook() -> bool:
    """Whether this runs in a Jupyter kernel that can show widgets (ipywidgets installed)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if type(shell).__name__ != "ZMQInteractiveShell":
        return False
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        return False
    return True


def progress_bar(iterable=None, **options):
    """A tqdm bar that suits where it is shown.

    In a notebook, a widget (one finished bar in the saved notebook); in a terminal, tqdm's
    live bar; elsewhere (a log file, CI), a line every LOG_INTERVAL_SECONDS and at the end,
    not one per update. `options` go to tqdm (total, unit, desc, disable, ...).
    """
    if in_notebook():
        return notebook_bar_class()(iterable, **options)
    from tqdm import tqdm

    if not _is_terminal(options.get("file", sys.stderr)):
        options.setdefault("mininterval", LOG_INTERVAL_SECONDS)
    return tqdm(iterable, **options)


@functools.cache
def notebook_bar_class():
    """tqdm's notebook widget, whose text in a saved notebook is the finished bar.

    tqdm's own shows its widget, and the text a notebook saves beside it (what a viewer
    without widgets shows) stays the first, empty state. This one updates that text when
    the bar closes.
    """
    from IPython.display import display
    from tqdm.notebook import tqdm

    class NotebookBar(tqdm):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **{**kwargs, "display": False})
            self._display = None if self.disable else display(self.container, display_id=True)

        def close(self):
            super().close()
            # Once: tqdm closes a bar again when it is deleted, when its text can no longer be read.
            shown, self._display = self._display, None
            if shown is not None:
                shown.update(self.container)

    return NotebookBar


def _is_terminal(stream) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())
