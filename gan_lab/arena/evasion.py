"""Time to evasion: how many thousand fakes (kimg) of arena training until a detector's detection rate
falls below a target, with the interval of that crossing.

Each arena epoch scores fresh fakes and gives a detection rate with its 95% interval. The
crossing is where the rate itself first falls below the target (interpolated linearly in kimg
from the epoch before), bounded by the last epoch before it whose whole interval lies above the
target (the detector surely held there) and the first whose whole interval lies below it
(evasion established).
"""

from __future__ import annotations

DEFAULT_TARGET = 0.5


def _first(points: list[dict], key: str, target: float) -> dict | None:
    return next((point for point in points if point[key] < target), None)


def time_to_evasion(points: list[dict], target: float = DEFAULT_TARGET) -> dict:
    """From epoch points {"kimg", "detection_rate", "detection_rate_low", "detection_rate_high"} in training order:
    {"evaded", "kimg", "kimg_low", "kimg_held", "kimg_high", "target", "last_kimg"} (kimg None when not reached;
    kimg_high None when no interval lies wholly below the target; kimg_held the last epoch, up to the crossing, the
    detector surely held, None if none; kimg_low is kimg_held, or the first epoch when evaded without one)."""
    if not 0 < target < 1:
        raise ValueError(f"target must be a rate between 0 and 1. Received: target={target!r}")
    points = sorted(points, key=lambda point: point["kimg"])
    if not points:
        raise ValueError("time_to_evasion needs at least one scored epoch")
    crossing = None
    for before, after in zip([None, *points], points):
        if after["detection_rate"] < target:
            if before is None:
                crossing = float(after["kimg"])
            else:
                fall = before["detection_rate"] - after["detection_rate"]
                share = (before["detection_rate"] - target) / fall if fall > 0 else 1.0
                crossing = float(before["kimg"] + share * (after["kimg"] - before["kimg"]))
            break
    established = _first(points, "detection_rate_high", target)
    until = points[-1]["kimg"] if crossing is None else crossing
    held = [point for point in points if point["detection_rate_low"] >= target and point["kimg"] <= until]
    kimg_held = float(held[-1]["kimg"]) if held else None
    if crossing is not None:
        kimg_low = float(held[-1]["kimg"] if held else points[0]["kimg"])
    else:
        kimg_low = kimg_held
    return {
        "evaded": crossing is not None,
        "kimg": crossing,
        "kimg_low": kimg_low,
        "kimg_held": kimg_held,
        "kimg_high": None if established is None else float(established["kimg"]),
        "target": float(target),
        "last_kimg": float(points[-1]["kimg"]),
    }


def describe_evasion(result: dict) -> str:
    """One sentence: "detection rate below 50% after 6.3 kimg (...)" or "not evaded within 32.0 kimg (...)"."""
    if not result["evaded"]:
        return f"not evaded within {result['last_kimg']:.2f} kimg (detection rate never below {result['target']:.0%})"
    if result["kimg"] == 0:
        return f"detection rate already below {result['target']:.0%} at the checkpoint (0 kimg): nothing to evade"
    established = (
        f"not established within {result['last_kimg']:.2f} kimg"
        if result["kimg_high"] is None
        else f"established at {result['kimg_high']:.2f} kimg"
    )
    return (
        f"detection rate below {result['target']:.0%} after {result['kimg']:.2f} kimg (interpolated; it surely held "
        f"at {result['kimg_low']:.2f} kimg, {established}: where the 95% intervals lie wholly above and below it)"
    )


def evasion_cell(result: dict) -> str:
    """A table cell: "0.21 kimg [0.00, 0.80]" (the crossing and the epochs surely held and surely evaded; "-" when not
    established), or "held 3.20 kimg"."""
    if not result["evaded"]:
        return f"held {result['last_kimg']:.2f} kimg"
    high = "-" if result["kimg_high"] is None else f"{result['kimg_high']:.2f}"
    return f"{result['kimg']:.2f} kimg [{result['kimg_low']:.2f}, {high}]"


def hardening_verdict(first: dict, later: dict, round_: int) -> str:
    """Whether round `round_`'s (hardened) detector lasted longer than round 1's, beyond the crossings' intervals.

    Longer when the later round surely held at or past the kimg at which round 1 was surely evaded
    (every round is scored at the same epochs); shorter when the later round was surely evaded at or
    before an epoch at which round 1 surely held.
    """
    if not first["evaded"]:
        return f"round 1 was not evaded within {first['last_kimg']:.2f} kimg, so there was no time to buy"
    held, evaded = later["kimg_held"], first["kimg_high"]
    if held is not None and evaded is not None and held >= evaded:
        return (
            f"yes, beyond the intervals: round {round_}'s detector surely held at {held:.2f} kimg, "
            f"where round 1's was surely evaded by {evaded:.2f}"
        )
    held, evaded = first["kimg_held"], later["kimg_high"]
    if later["evaded"] and held is not None and evaded is not None and evaded <= held:
        return (
            f"no, round {round_} was evaded sooner, beyond the intervals: surely by {evaded:.2f} kimg, "
            f"where round 1's detector surely held at {held:.2f}"
        )
    if later["evaded"]:
        reached = f"round {round_} was evaded after {later['kimg']:.2f} kimg against round 1's {first['kimg']:.2f}"
    else:
        reached = f"round {round_} held for all {later['last_kimg']:.2f} kimg against round 1's {first['kimg']:.2f}"
    if later["evaded"] and later["kimg"] <= first["kimg"]:
        return f"not beyond the intervals: {reached}, within the crossings' intervals"
    if first["kimg_high"] is None:
        return f"not beyond the intervals: {reached}, but round 1's evasion was never established beyond its interval"
    return (
        f"not beyond the intervals: {reached}, but it was not surely above the target past {first['kimg_high']:.2f} "
        "kimg, where round 1's evasion was established"
    )
