"""Which watched deployments the app list says must be read on their own."""

from engine import app_watch
from engine.app_watch import ENDED, Sighting


def app(app_id, in_progress=None, active=None, pending=None):
    entry = {"id": app_id}
    if in_progress:
        entry["in_progress_deployment"] = in_progress
    if active:
        entry["active_deployment"] = active
    if pending:
        entry["pending_deployment"] = pending
    return entry


BUILDING = {"id": "d2", "phase": "BUILDING",
            "progress": {"success_steps": 2, "total_steps": 6}}


def test_same_phase_in_progress_needs_no_read():
    apps = [app("a", in_progress=BUILDING, active={"id": "d1", "phase": "ACTIVE"})]
    assert app_watch.plan(apps, {7: ("a", "d2", "BUILDING")}) == {
        7: Sighting("BUILDING", "2/6", False)}


def test_a_phase_change_in_progress_is_recorded_not_read():
    apps = [app("a", in_progress=dict(BUILDING, phase="DEPLOYING"))]
    sighting = app_watch.plan(apps, {7: ("a", "d2", "BUILDING")})[7]
    assert sighting == Sighting("DEPLOYING", "2/6", False)


def test_a_failed_phase_in_progress_and_the_first_sighting_are_read():
    apps = [app("a", in_progress=dict(BUILDING, phase="ERROR"))]
    assert app_watch.plan(apps, {7: ("a", "d2", "BUILDING")})[7].read is True
    apps = [app("a", in_progress=BUILDING)]
    assert app_watch.plan(apps, {7: ("a", "d2", None)})[7].read is True


def test_active_is_read():
    apps = [app("a", active={"id": "d2", "phase": "ACTIVE"})]
    assert app_watch.plan(apps, {7: ("a", "d2", "DEPLOYING")})[7] == Sighting("ACTIVE", "", True)


def test_gone_from_the_list_is_read_as_ended():
    apps = [app("a", active={"id": "d1", "phase": "ACTIVE"})]
    watched = {7: ("a", "d2", "BUILDING"), 8: ("missing-app", "d9", "BUILDING")}
    plan = app_watch.plan(apps, watched)
    assert plan[7] == Sighting(ENDED, "", True)
    assert plan[8] == Sighting(ENDED, "", True)


def test_pending_waits_until_it_ends():
    apps = [app("a", pending={"id": "d2", "phase": "PENDING_BUILD"})]
    assert app_watch.plan(apps, {7: ("a", "d2", "PENDING_BUILD")})[7].read is False
    moved = [app("a", pending={"id": "d2", "phase": "PENDING_DEPLOY"})]
    assert app_watch.plan(moved, {7: ("a", "d2", "PENDING_BUILD")})[7] == Sighting(
        "PENDING_DEPLOY", "", False)
    assert app_watch.plan(apps, {7: ("a", "d2", None)})[7].read is True
    # A pending entry in a final phase is not trusted: the deployment is read.
    apps = [app("a", pending={"id": "d2", "phase": "ERROR"})]
    assert app_watch.plan(apps, {7: ("a", "d2", "BUILDING")})[7] == Sighting(ENDED, "", True)


def test_pages_needed():
    assert app_watch.pages_needed(0) == 1
    assert app_watch.pages_needed(200) == 1
    assert app_watch.pages_needed(201) == 2
    assert app_watch.pages_needed(450, per_page=100) == 5


def test_index_ignores_garbage():
    assert app_watch.index_apps([{"id": "a"}, "x", None]) == {"a": {"id": "a"}}
    assert app_watch.index_apps(None) == {}
