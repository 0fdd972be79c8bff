"""The poll schedule: the detection-lag goal for every job length, and fewer polls when history predicts."""

import math

import pytest
from cpexport.polling import CHECK_MARGIN_SECONDS, PastJob, Prediction, allowance, next_wait, predict, schedule
from hypothesis import given
from hypothesis import strategies as st

# What one poll costs in history events (Wait 2, Task 5, Choice 2: see the local-execution notes).
EVENTS_PER_POLL = 9
HISTORY_LIMIT = 25_000
DAY = 86_400


def lag(duration: float, prediction: Prediction | None) -> float:
    return schedule(duration, prediction)[-1] - duration


@given(st.floats(min_value=0.5, max_value=3 * DAY))
def test_without_history_every_job_is_seen_within_its_allowance(duration):
    # with the margin left for the Check that sees it (its invocation is part of the lag)
    assert lag(duration, None) + CHECK_MARGIN_SECONDS <= allowance(duration)


@given(st.floats(min_value=60, max_value=DAY), st.floats(min_value=0.8, max_value=5.0))
def test_with_history_a_job_not_much_faster_than_predicted_is_seen_within_its_allowance(predicted, ratio):
    # Any job from 80 % of the shortest prediction up, however much longer than predicted
    prediction = Prediction(shortest=predicted, longest=predicted * 1.5)
    duration = predicted * ratio
    assert lag(duration, prediction) + CHECK_MARGIN_SECONDS <= allowance(duration)


def test_a_job_far_faster_than_its_history_is_still_seen_within_half_its_length():
    prediction = Prediction(shortest=DAY, longest=DAY)
    for duration in (600, 3_600, 6 * 3_600):
        assert lag(duration, prediction) <= max(60, 0.5 * duration) + 1


def test_history_cuts_the_polls_of_a_well_predicted_day_long_job_below_300_events():
    blind = len(schedule(DAY, None))
    learned = len(schedule(DAY, predict([PastJob(DAY, DAY)] * 3, DAY)))
    assert learned * EVENTS_PER_POLL <= 300 < blind * EVENTS_PER_POLL


def test_twenty_day_long_jobs_without_history_fit_one_execution():
    assert 20 * len(schedule(DAY, None)) * EVENTS_PER_POLL < HISTORY_LIMIT


def test_waits_are_whole_positive_seconds():
    for elapsed in (0, 0.4, 59.9, 1_200, 10**7):
        wait = next_wait(elapsed, Prediction(5_000, 9_000))
        assert isinstance(wait, int) and wait >= 1
    with pytest.raises(ValueError):
        next_wait(-1, None)


def test_prediction_scales_past_durations_to_this_windows_length_and_ignores_old_runs():
    history = [PastJob(99_999, 3_600)] + [PastJob(600, 3_600), PastJob(1_200, 7_200)] * 3
    prediction = predict(history, 7_200, runs=5)
    assert prediction is not None
    assert math.isclose(prediction.shortest, 1_200) and math.isclose(prediction.longest, 1_200)
    assert predict([], 7_200) is None
    assert predict([PastJob(0, 3_600)], 3_600) is None
