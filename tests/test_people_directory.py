"""The user directory (core/people.py) over the real Jira connector (`responses`) and a SQLite
store: the override table wins, found users are cached in the store across processes until they
expire, people not found are asked again sooner, and user ids read back as addresses."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from core.people import INACTIVE, MISSING, PeopleDirectory
from core.store import Store
from tests.test_connector_jira import API, env, http, make  # noqa: F401  (fixtures)

DANA = {"accountId": "a-1", "emailAddress": "dana@eng.example", "displayName": "Dana", "active": True}


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def store(tmp_path):
    s = Store(f"sqlite:///{tmp_path / 'people.db'}")
    s.migrate()
    yield s
    s.close()


def searches(http) -> int:
    return len([c for c in http.calls if "/user/search" in c.request.url])


def test_override_wins_cache_survives_a_new_process_and_expires(http, store):
    http.get(f"{API}/user/search", json=[DANA])
    clock = Clock()
    connector = make(people={"Hidden@Eng.example": "a-9"}, people_cache_seconds=3600)
    directory = PeopleDirectory("jira", connector, store, clock=clock)
    assert directory.ref_for("hidden@eng.example") == "a-9" and searches(http) == 0
    assert directory.ref_for("dana@eng.example") == "a-1" and searches(http) == 1
    again = PeopleDirectory("jira", make(), store, clock=clock)  # another process, same store
    assert again.ref_for("DANA@eng.example") == "a-1" and searches(http) == 1
    assert again.address_of("a-1") == "dana@eng.example"
    assert directory.address_of("a-9") == "hidden@eng.example"
    assert again.ref_for("712020:given-as-is") == "712020:given-as-is"
    clock.now += timedelta(seconds=3601)
    later = PeopleDirectory("jira", make(people_cache_seconds=3600), store, clock=clock)
    assert later.ref_for("dana@eng.example") == "a-1"
    assert searches(http) == 2


def test_unknown_and_deactivated_are_none_and_asked_again_after_a_tenth(http, store):
    http.get(f"{API}/user/search", json=[{**DANA, "emailAddress": "gone@eng.example", "active": False}])
    clock = Clock()
    directory = PeopleDirectory("jira", make(people_cache_seconds=1000), store, clock=clock)
    assert directory.lookup("gone@eng.example").state == INACTIVE
    assert directory.lookup("nobody@eng.example").state == MISSING
    assert directory.ref_for("nobody@eng.example") is None
    calls = searches(http)
    clock.now += timedelta(seconds=50)
    assert PeopleDirectory("jira", make(people_cache_seconds=1000), store, clock=clock) \
        .ref_for("nobody@eng.example") is None
    assert searches(http) == calls
    clock.now += timedelta(seconds=60)
    PeopleDirectory("jira", make(people_cache_seconds=1000), store, clock=clock).ref_for("nobody@eng.example")
    assert searches(http) == calls + 1
