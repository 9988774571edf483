"""Calibration arithmetic of `reclaim-ext validate kernel` (reclaim_ext.validate.calibrate)."""

import pytest

from reclaim_ext.validate.calibrate import (PAGE, RunCalibration, calibrate_run, combine, relative_error,
                                            steady_samples)


def s(pos, resident, usage_pages):
    return (pos, resident, usage_pages * PAGE)


def test_steady_state_starts_at_97_percent_of_the_maximum():
    samples = [s(0, 0, 60), s(1000, 500, 600), s(2000, 969, 1100), s(3000, 970, 1100), s(4000, 1000, 1130),
               s(5000, 980, 1110)]
    # 97% of 1000 = 970: the sample at 3000 is the first
    assert [x[0] for x in steady_samples(samples)] == [3000, 4000, 5000]


def test_samples_without_usage_are_dropped():
    assert steady_samples([s(0, 10, 20), (1000, 50, -1)]) == [s(0, 10, 20)]
    assert steady_samples([(0, 10, -1)]) == []


def test_run_calibration_numbers():
    samples = [s(0, 0, 55), s(1000, 1000, 1130), s(2000, 990, 1125), s(3000, 1010, 1150), s(4000, 1000, 1190)]
    cal = calibrate_run(samples, limit_pages=1200)
    # overheads 130, 135, 140, 190 -> median 137.5 -> 138 (round half to even: 138)
    assert cal.overhead == 138
    assert cal.c_eff == pytest.approx((1000 + 990 + 1010 + 1000) / 4)
    assert (cal.c_min, cal.c_max, cal.samples) == (990, 1010, 4)
    assert cal.gap == pytest.approx(1200 - (1130 + 1125 + 1150 + 1190) / 4)


def test_run_calibration_needs_samples():
    with pytest.raises(ValueError, match="no calibration samples"):
        calibrate_run([], 100)


def _run(overhead):
    return RunCalibration(overhead=overhead, c_eff=0.0, c_min=0, c_max=0, gap=0.0, samples=1)


def test_model_max_is_limit_minus_median_overhead():
    cal = combine([_run(189), _run(127), _run(128)], limit_pages=8192)
    assert (cal.overhead, cal.model_max, cal.source) == (128, 8064, "measured")
    assert cal.to_dict()["runs"][0]["overhead"] == 189


def test_given_overhead_overrides_the_measurement():
    cal = combine([_run(189)], limit_pages=8192, overhead=150)
    assert (cal.overhead, cal.model_max, cal.source) == (150, 8042, "given")
    assert combine([], 1000, overhead=0).model_max == 1000


def test_combine_errors():
    with pytest.raises(ValueError, match="no runs"):
        combine([], 1000)
    with pytest.raises(ValueError, match="raise --memory"):
        combine([_run(90)], 100)


def test_relative_error():
    assert relative_error(105, 100) == pytest.approx(0.05)
    assert relative_error(95, 100) == pytest.approx(-0.05)
    assert relative_error(0, 0) == 0.0
    assert relative_error(1, 0) == float("inf")
