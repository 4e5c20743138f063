"""asyncio helpers: the event loop keeps running while they wait, and cancellation is prompt."""

from __future__ import annotations

import asyncio
import time

import pytest

from audioplay import Player
from conftest import tone_s16


def test_write_and_drain_async_keep_the_loop_running():
    async def main() -> None:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        with Player(rate=22050, ring_capacity_ms=200, write_timeout_ms=50) as p:
            tk = asyncio.create_task(ticker())
            t = time.monotonic()
            assert await p.write_async(tone_s16(22050)) == 22050
            assert time.monotonic() - t > 0.5
            assert ticks >= 25, ticks  # the loop ran while write_async waited for room
            before = ticks
            assert await p.drain_async(5000)
            assert ticks > before
            assert p.metrics()["frames_played"] == 22050
            tk.cancel()
            kinds = []
            async for e in p.events_async():
                kinds.append(e.kind)
                if e.kind == "utterance_end":
                    break
            assert kinds[0] == "utterance_start"
            assert await p.wait_event_async(50) is None
            assert await p.write_async(tone_s16(22050), partial=True) < 22050
            p.flush(0)

    asyncio.run(main())


def test_cancelling_drain_async_is_prompt():
    async def main() -> None:
        with Player(rate=22050, ring_capacity_ms=10000) as p:
            p.write(tone_s16(22050 * 5))
            task = asyncio.create_task(p.drain_async())
            await asyncio.sleep(0.3)
            assert not task.done()
            t = time.monotonic()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert time.monotonic() - t < 0.2
            assert 0 < p.metrics()["frames_played"] < 22050 * 5
            assert await p.drain_async(100) is False
            p.flush(0)

    asyncio.run(main())


def test_cancelling_write_async_stops_queueing():
    async def main() -> None:
        with Player(rate=22050, ring_capacity_ms=200) as p:
            task = asyncio.create_task(p.write_async(tone_s16(22050 * 5)))
            await asyncio.sleep(0.4)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            written = p.metrics()["frames_written"]
            assert 0 < written < 22050 * 2
            await asyncio.sleep(0.2)
            assert p.metrics()["frames_written"] - written <= 22050 * 0.06  # at most a slice
            p.flush(0)

    asyncio.run(main())
