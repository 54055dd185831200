"""Admission tokens (bound to user, event and expiry; never a bearer token) and the room
registry kept current across processes by its feed."""

from __future__ import annotations

import time
import uuid

import jwt
import pytest

from hub import waiting_rooms
from hub.context import Hub
from hub.errors import NotAdmitted
from hub.services import waiting_room
from hub.tokens import Role
from hub.waiting_rooms import AdmissionTokens, RoomFeed, RoomRegistry
from tests.conftest import SECRET
from tests.waiting import eventually

USER, OTHER_USER = uuid.uuid4(), uuid.uuid4()
EVENT, OTHER_EVENT = uuid.uuid4(), uuid.uuid4()


def test_a_token_is_valid_only_for_its_user_its_event_and_until_it_expires() -> None:
    tokens = AdmissionTokens(SECRET)
    now = time.time()
    token = tokens.issue(USER, EVENT, int(now) + 60)
    assert tokens.valid(token, USER, EVENT, now)
    assert not tokens.valid(token, OTHER_USER, EVENT, now)  # shared with a friend
    assert not tokens.valid(token, USER, OTHER_EVENT, now)  # carried to another event
    assert not tokens.valid(token, USER, EVENT, now + 61)  # expired
    # Checked again from the cache, the answers are the same.
    assert tokens.valid(token, USER, EVENT, now)
    assert not tokens.valid(token, OTHER_USER, EVENT, now)


def test_forged_and_foreign_tokens_are_refused() -> None:
    tokens = AdmissionTokens(SECRET)
    exp = int(time.time()) + 60
    claims = {"sub": str(USER), "evt": str(EVENT), "typ": "admission", "exp": exp}
    # Signed with the bearer tokens' own key: not an admission token.
    assert not tokens.valid(jwt.encode(claims, SECRET, algorithm="HS256"), USER, EVENT)
    # Another hub's key.
    other = AdmissionTokens("another-secret-key-that-is-long-enough-too")
    assert not tokens.valid(other.issue(USER, EVENT, exp), USER, EVENT)
    # A bearer token of the same user.
    from hub.auth import issue_token

    bearer = issue_token(SECRET, USER, Role.USER, 3600)
    assert not tokens.valid(bearer, USER, EVENT)
    # Tampered: the payload of a token for another user with this token's signature.
    mine, theirs = tokens.issue(USER, EVENT, exp), tokens.issue(OTHER_USER, EVENT, exp)
    spliced = ".".join([theirs.split(".")[0], theirs.split(".")[1], mine.split(".")[2]])
    assert not tokens.valid(spliced, OTHER_USER, EVENT)
    assert not tokens.valid("not a token", USER, EVENT)
    # An unsigned token ("alg": "none").
    unsigned = jwt.encode(claims, key=None, algorithm="none")
    assert not tokens.valid(unsigned, USER, EVENT)


def test_the_registry_cannot_tell_until_it_is_live() -> None:
    registry = RoomRegistry()
    assert registry.check(EVENT) is None
    registry.replace({EVENT})
    assert registry.check(EVENT) is True and registry.check(OTHER_EVENT) is False
    registry.mark(EVENT, False)
    assert registry.check(EVENT) is False


async def test_a_second_process_learns_of_rooms_through_the_feed(hub: Hub) -> None:
    assert hub.settings.redis_url is not None
    registry = RoomRegistry()
    feed = RoomFeed(hub.settings.redis_url, hub.store, registry)
    event = uuid.uuid4()
    await waiting_rooms.announce(hub.store, event, True)
    await feed.start()
    try:
        # Read whole when its link comes up...
        assert await eventually(lambda: registry.check(event) is True)
        # ...then kept current by what is published.
        await waiting_rooms.announce(hub.store, event, False)
        assert await eventually(lambda: registry.check(event) is False)
        await waiting_rooms.announce(hub.store, event, True)
        assert await eventually(lambda: registry.check(event) is True)
    finally:
        await feed.stop()
        await waiting_rooms.announce(hub.store, event, False)


async def test_without_a_live_registry_the_check_asks_redis(hub: Hub) -> None:
    event = uuid.uuid4()
    await waiting_rooms.announce(hub.store, event, True)
    blind = RoomRegistry()  # never live: as a process whose feed link is down
    saved = hub.rooms
    hub.rooms = blind
    try:
        with pytest.raises(NotAdmitted):
            await waiting_room.require_admission(hub, USER, event, None)
        await waiting_room.require_admission(hub, USER, uuid.uuid4(), None)  # no room: fine
    finally:
        hub.rooms = saved
        await waiting_rooms.announce(hub.store, event, False)
