"""Named crash points in every write path, so tests can prove that a killed run loses nothing.

    GAN_LAB_FAILPOINT=epoch-before-commit gan-lab gan train ...     # dies there, as kill -9 would
    GAN_LAB_FAILPOINT=atomic-write@3 gan-lab detector train ...     # dies at the third atomic write

The process leaves at once with `os._exit`: no `finally`, no flush, no clean-up, exactly
what a power cut or SIGKILL leaves behind. Unset, a failpoint costs one dictionary lookup.
"""

from __future__ import annotations

import collections
import os

ENVIRONMENT_VARIABLE = "GAN_LAB_FAILPOINT"
EXIT_CODE = 86
FAILPOINTS = {
    "atomic-write": "a temporary file is written and synced but not yet renamed into place",
    "config-written": "a new run directory holds config.json and nothing else of the run yet",
    "epoch-files-written": "an epoch's models are in its hidden checkpoint folder, its history and state are not",
    "epoch-before-commit": "an epoch's checkpoint folder is complete but not yet renamed into place",
    "epoch-committed": "an epoch is committed; the run's history.csv and model.keras still show the one before",
    "history-published": "history.csv shows the committed epoch; model.keras may not yet",
    "training-finished": "every epoch is committed; metrics.json and report.md are not yet written",
}
_hits: collections.Counter = collections.Counter()


def failpoint(name: str) -> None:
    """Exit the process at once if GAN_LAB_FAILPOINT names this point (and its count, `name@N`, is reached)."""
    if name not in FAILPOINTS:
        raise ValueError(f"Unknown failpoint. Expected one of {sorted(FAILPOINTS)}. Received: name={name!r}")
    wanted = os.environ.get(ENVIRONMENT_VARIABLE)
    if not wanted:
        return
    point, _, count = wanted.partition("@")
    if point != name:
        return
    _hits[name] += 1
    if _hits[name] >= int(count or 1):
        os._exit(EXIT_CODE)
