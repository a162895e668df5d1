"""An in-memory channel layer that a worker thread can push through at once (embedded mode).

The stock ``InMemoryChannelLayer`` keeps ``asyncio.Queue`` objects that belong to the server's event
loop. A Celery task running in a worker thread calls ``async_to_sync(group_send)``, which runs on a
*different* loop: the message lands in the queue but the server loop is not woken, so the push sits
there until something else stirs the loop (seconds later). Here every operation is executed on the
loop that receives (the server's), handed over with ``run_coroutine_threadsafe``, which wakes it.
"""

from __future__ import annotations

import asyncio

from channels.layers import InMemoryChannelLayer


class ThreadSafeInMemoryChannelLayer(InMemoryChannelLayer):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._home_loop: asyncio.AbstractEventLoop | None = None

    async def _on_home_loop(self, coro_factory):
        home = self._home_loop
        try:
            current = asyncio.get_running_loop()
        except RuntimeError:  # pragma: no cover - always called from a coroutine
            current = None
        if home is None or home is current or home.is_closed() or not home.is_running():
            return await coro_factory()
        future = asyncio.run_coroutine_threadsafe(coro_factory(), home)
        return await asyncio.wrap_future(future)

    async def receive(self, channel):
        if self._home_loop is None or self._home_loop.is_closed():
            self._home_loop = asyncio.get_running_loop()
        return await super().receive(channel)

    async def send(self, channel, message):
        parent = super()
        return await self._on_home_loop(lambda: parent.send(channel, message))

    async def group_add(self, group, channel):
        parent = super()
        return await self._on_home_loop(lambda: parent.group_add(group, channel))

    async def group_discard(self, group, channel):
        parent = super()
        return await self._on_home_loop(lambda: parent.group_discard(group, channel))

    async def group_send(self, group, message):
        parent = super()
        return await self._on_home_loop(lambda: parent.group_send(group, message))
