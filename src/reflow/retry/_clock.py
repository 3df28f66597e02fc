"""The clock the retry layer reads and sleeps on.

Kept as module attributes so `reflow.testing.instant()` can swap in a virtual clock for every
Retriable at once, including ones decorated before the swap.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable


async def _asyncio_sleep(seconds: float) -> None:
    import asyncio  # imported on first use: `import reflow` stays light

    await asyncio.sleep(seconds)


monotonic: Callable[[], float] = time.monotonic
sleep: Callable[[float], None] = time.sleep
async_sleep: Callable[[float], Awaitable[None]] = _asyncio_sleep
