import pytest

from gan_lab.arena.evasion import describe_evasion, hardening_verdict, time_to_evasion


def _point(kimg, rate, half=0.05):
    return {"kimg": kimg, "detection_rate": rate, "detection_rate_low": rate - half, "detection_rate_high": rate + half}


def test_the_crossing_is_interpolated_and_bounded_by_the_intervals():
    points = [_point(2, 0.9), _point(4, 0.7), _point(6, 0.52), _point(8, 0.4), _point(10, 0.2)]
    result = time_to_evasion(list(reversed(points)))  # any order: sorted by kimg
    assert result["evaded"] and result["kimg"] == pytest.approx(6 + 2 * (0.02 / 0.12))
    # Surely held at 4 (interval above 50%), surely evaded at 8 (below); at 6 the interval straddles it.
    assert result["kimg_low"] == 4 and result["kimg_high"] == 8 and result["last_kimg"] == 10
    assert "below 50% after 6.33 kimg (interpolated; it surely held at 4.00 kimg, established at 8.00" in (
        describe_evasion(result)
    )


def test_a_detector_that_holds_is_not_evaded_and_a_first_epoch_below_target_counts_at_its_kimg():
    held = time_to_evasion([_point(2, 0.9), _point(4, 0.8)])
    assert not held["evaded"] and held["kimg"] is None and held["kimg_high"] is None
    assert describe_evasion(held) == "not evaded within 4.00 kimg (detection rate never below 50%)"
    at_once = time_to_evasion([_point(1, 0.1), _point(2, 0.05)], target=0.2)
    assert at_once["kimg"] == 1 and at_once["kimg_low"] == at_once["kimg_high"] == 1
    wide = time_to_evasion([_point(2, 0.9), _point(4, 0.45, half=0.2)])
    assert wide["kimg"] == pytest.approx(2 + 2 * 0.4 / 0.45) and wide["kimg_high"] is None
    assert wide["kimg_low"] == 2 and "held at 2.00 kimg, not established within 4.00 kimg" in describe_evasion(wide)
    at_start = time_to_evasion([_point(0, 0.3), _point(1, 0.1)])
    assert describe_evasion(at_start).startswith("detection rate already below 50% at the checkpoint")
    with pytest.raises(ValueError, match="target"):
        time_to_evasion([_point(1, 0.5)], target=1.5)


def test_hardening_bought_time_only_beyond_the_crossings_intervals():
    first = time_to_evasion([_point(2, 0.9), _point(4, 0.3), _point(6, 0.1)])  # surely evaded by 4
    assert first["kimg_low"] == 2 and first["kimg_high"] == 4
    longer = time_to_evasion([_point(2, 0.9), _point(4, 0.8), _point(6, 0.7)])  # never evaded, surely held at 6
    assert longer["kimg_low"] == 6
    assert hardening_verdict(first, longer, 2).startswith("yes, beyond the intervals: round 2's detector surely held")
    sooner = time_to_evasion([_point(1, 0.1), _point(4, 0.1)])
    assert hardening_verdict(first, sooner, 2).startswith("no, round 2 was evaded sooner")
    alike = time_to_evasion([_point(2, 0.9), _point(4, 0.5), _point(6, 0.1)])
    verdict = hardening_verdict(first, alike, 3)  # later (4.00 kimg against 3.33), but round 3 surely held only at 2
    assert verdict.startswith("not beyond the intervals: round 3 was evaded after 4.00 kimg against round 1's 3.33")
    wobbly = time_to_evasion([_point(2, 0.52), _point(4, 0.52)], 0.5)  # held, but never surely above the target
    assert wobbly["kimg_low"] is None and "held for all 4.00 kimg" in hardening_verdict(first, wobbly, 2)
    held = time_to_evasion([_point(2, 0.9)])
    assert hardening_verdict(held, longer, 2) == "round 1 was not evaded within 2.00 kimg, so there was no time to buy"
    # At one epoch round 2 is surely above the target and round 1 surely below: that is beyond the intervals.
    first = time_to_evasion([_point(0, 0.9), _point(1.6, 0.1), _point(3.2, 0.05)])
    later = time_to_evasion([_point(0, 0.9), _point(1.6, 0.9), _point(3.2, 0.2)])
    assert hardening_verdict(first, later, 2).startswith(
        "yes, beyond the intervals: round 2's detector surely held at 1.60"
    )
    assert hardening_verdict(later, first, 2).startswith(
        "no, round 2 was evaded sooner, beyond the intervals: surely by 1.60"
    )
    never_held = time_to_evasion([_point(0, 0.52), _point(1.6, 0.1)])  # evaded, never surely above the target
    assert never_held["kimg_low"] == 0 and never_held["kimg_held"] is None
    assert not hardening_verdict(first, never_held, 2).startswith("yes")
