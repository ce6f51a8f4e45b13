"""The token-wide call budget's arithmetic (engine.call_budget)."""

import pytest

from engine import call_budget
from engine.call_budget import Budget, Window


def spend(budget, now, n, **limits):
    for _ in range(n):
        budget, wait = budget.take(now, **limits)
        assert wait == 0
    return budget


def test_calls_fit_until_the_minute_limit_then_wait_for_the_window():
    t0 = 1_000_040.0  # 20 s into the minute window [1_000_020, 1_000_080)
    budget = spend(Budget(), t0, 10, per_minute=10, per_hour=1000)
    same, wait = budget.take(t0, per_minute=10, per_hour=1000)
    assert same is budget
    # 40 s to the window's end, then the previous window weighs 10 * (1 - t/60) + 1 <= 10.
    assert wait == pytest.approx(40.0 + 6.0)
    later = t0 + wait
    _, wait_after = budget.take(later, per_minute=10, per_hour=1000)
    assert wait_after == 0


def test_a_burst_at_a_window_end_counts_against_the_next_window():
    end_of_window = 1_000_019.0  # 59 s into [999_960, 1_000_020)
    budget = spend(Budget(), end_of_window, 10, per_minute=10, per_hour=1000)
    # One second later a new fixed window began, but the last minute holds ten calls.
    _, wait = budget.take(end_of_window + 1.0, per_minute=10, per_hour=1000)
    assert wait > 0
    minute_used, _ = budget.used(end_of_window + 1.0)
    assert minute_used == pytest.approx(10.0)


def test_the_hour_limit_holds_when_minutes_have_room():
    t0 = 3600.0 * 300
    budget = Budget()
    for minute in range(5):
        budget = spend(budget, t0 + 60 * minute, 20, per_minute=50, per_hour=100)
    _, wait = budget.take(t0 + 300, per_minute=50, per_hour=100)
    assert wait >= 3600 - 300


def test_windows_roll_forward_and_forget_old_counts():
    window = Window(start=600.0, count=7, previous=3)
    assert window.at(630.0, 60) is window
    assert window.at(660.0, 60) == Window(660.0, 0, 7)
    assert window.at(800.0, 60) == Window(780.0, 0, 0)


def test_limits_from_settings():
    assert call_budget.limits("60", "3000") == (60, 3000)
    assert call_budget.limits("100000", "6000000") == (100000, 6000000)  # a raised simulator
    assert call_budget.PER_MINUTE < call_budget.DO_PER_MINUTE
    assert call_budget.PER_HOUR < call_budget.DO_PER_HOUR
    assert call_budget.limits(None, "x") == (call_budget.PER_MINUTE, call_budget.PER_HOUR)
    assert call_budget.limits(0, -5) == (call_budget.PER_MINUTE, call_budget.PER_HOUR)


def test_polling_slows_down_as_more_pages_are_read():
    assert call_budget.poll_interval(0) == 5.0
    assert call_budget.poll_interval(1, per_minute=60, per_hour=3000) == 5.0
    slow = call_budget.poll_interval(10, per_minute=60, per_hour=3000)
    # Ten calls a tick in half of 60 a minute: one tick every 20 s; the hour: 24 s.
    assert slow == pytest.approx(24.0)


def test_a_step_action_takes_its_calls_at_once_or_none():
    """A step action reserves the calls it makes together: with 7 of 10 left, 4 do
    not fit and nothing is counted; 3 do; the unused ones are given back."""
    t0 = 1_000_040.0
    budget = spend(Budget(), t0, 3, per_minute=10, per_hour=1000)
    same, wait = budget.take(t0, per_minute=10, per_hour=1000, calls=8)
    assert same is budget
    assert wait > 0
    reserved, wait = budget.take(t0, per_minute=10, per_hour=1000, calls=7)
    assert wait == 0
    assert reserved.minute.count == 10
    assert reserved.hour.count == 10
    returned = reserved.give_back(t0 + 1.0, 2)
    assert (returned.minute.count, returned.hour.count) == (8, 8)
    _, wait = returned.take(t0 + 1.0, per_minute=10, per_hour=1000, calls=2)
    assert wait == 0


def test_calls_given_back_after_the_window_rolled_on_stay_counted():
    t0 = 1_000_040.0
    reserved, _ = Budget().take(t0, per_minute=10, per_hour=1000, calls=4)
    later = reserved.give_back(t0 + 60.0, 4)
    assert later.minute.count == 0
    assert later.minute.previous == 4   # the minute they were reserved in keeps them
    assert later.hour.count == 0        # the hour window is still [t0's hour]: given back


def test_a_reservation_larger_than_the_limit_is_capped_at_it():
    """A budget of 2 a minute never fits an action of 4 calls at once: the action
    takes the 2 it can, and its further calls wait on their own."""
    budget, wait = Budget().take(1_000_040.0, per_minute=2, per_hour=1000, calls=4)
    assert wait == 0
    assert budget.minute.count == 2


def test_steps_are_held_under_their_limit_while_the_watching_keeps_the_rest():
    """Steps' calls count in the work window too, held under ``work_limit``; the
    watching's calls count only in the token's windows, so they never take the
    steps' room nor the steps theirs: with 45 steps' calls made of 60, a step waits
    and the app list still fits fifteen times."""
    t0 = 1_000_040.0
    budget = spend(Budget(), t0, 45, per_minute=60, per_hour=4000, work_limit=45)
    assert (budget.minute.count, budget.work.count) == (45, 45)
    _, wait = budget.take(t0, per_minute=60, per_hour=4000, work_limit=45)
    assert wait > 0
    for _list in range(15):
        budget, wait = budget.take(t0, per_minute=60, per_hour=4000)
        assert wait == 0
    assert (budget.minute.count, budget.work.count) == (60, 45)
    _, wait = budget.take(t0, per_minute=60, per_hour=4000)
    assert wait > 0
    back = budget.give_back(t0, 5, work=True)
    assert (back.minute.count, back.work.count) == (55, 40)
    assert back.take(t0, per_minute=60, per_hour=4000, work_limit=45)[1] == 0
