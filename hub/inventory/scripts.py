"""The Lua scripts of ``lua/``: read once at import, registered once per Redis client.

Each script is ``lua/prelude.lua`` (shared helpers: Redis scripts cannot import) followed by
its own file. Registering only computes the SHA1 locally; a call is an ``EVALSHA``, and a
Redis that does not know the script (it restarted, or ``SCRIPT FLUSH``) gets it loaded and
the call made again, once: redis-py's ``AsyncScript`` does that for a single call, and
``Scripts.pipelined`` does it for a script sent in a pipeline with other commands.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from importlib import resources
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

NAMES = (
    "hold",
    "release",
    "begin_confirm",
    "abort_confirm",
    "note_charge",
    "finish_confirm",
    "set_seats",
    "free_unsold",
    "load",
    "snapshot",
    "extend",
    "due_holders",
    "unlock",
)


def _read(name: str) -> str:
    return resources.files(__package__).joinpath("lua", f"{name}.lua").read_text("utf-8")


_PRELUDE = _read("prelude")
SOURCES: dict[str, str] = {name: _PRELUDE + _read(name) for name in NAMES}


class Scripts:
    """The seat-state scripts registered on one client."""

    def __init__(self, client: Redis) -> None:
        self.client = client
        self.hold = self._register("hold")
        self.release = self._register("release")
        self.begin_confirm = self._register("begin_confirm")
        self.abort_confirm = self._register("abort_confirm")
        self.note_charge = self._register("note_charge")
        self.finish_confirm = self._register("finish_confirm")
        self.set_seats = self._register("set_seats")
        self.free_unsold = self._register("free_unsold")
        self.load = self._register("load")
        self.snapshot = self._register("snapshot")
        self.extend = self._register("extend")
        self.due_holders = self._register("due_holders")
        self.unlock = self._register("unlock")

    def _register(self, name: str) -> AsyncScript:
        return self.client.register_script(SOURCES[name])

    async def pipelined(
        self,
        script: AsyncScript,
        keys: list[str],
        args: Sequence[str | int],
        also: Callable[[Pipeline], object],
    ) -> Any:
        """Run ``script`` and the commands ``also`` queues in one round trip; return the
        script's result. (redis-py's own script-in-pipeline support asks Redis whether the
        script exists first: a second round trip on every call.) A Redis that lost its
        scripts (restarted) gets them loaded and the pipeline runs again, once.

        Raises:
            NoScriptError: Redis lost the script again between loading and running it.
        """
        for attempt in (1, 2):
            async with self.client.pipeline(transaction=False) as pipe:
                pipe.evalsha(script.sha, len(keys), *keys, *args)
                also(pipe)
                try:
                    return (await pipe.execute())[0]
                except NoScriptError:
                    if attempt == 2:
                        raise
                    await self.client.script_load(script.script)
        raise AssertionError("unreachable")
