"""Micro-batching: requests for one model version that arrive close together run as one numpy call.

Python pays per call, numpy pays per row: 32 clients sending one row each
cost 32 model calls unbatched and one when batched.  A ``Batcher`` belongs to
one loaded version (so a batch never mixes versions) and one event loop.  A
request joins the queue; the loop's collector takes the first waiting request,
waits up to ``max_wait`` for more rows (stopping early at ``max_batch_size``),
concatenates rows of requests with equal batch keys, runs the model once and
hands each request its slice.  The queue is bounded: when ``max_queue``
requests wait, a new one is refused with 503 and a ``Retry-After``.
"""
from __future__ import annotations

import asyncio
import time
from collections import deque

import numpy as np

from .errors import InferError


class Batcher:
    """Queue + collector for one model version."""

    def __init__(self, run, *, max_batch_size: int, max_wait_s: float, max_queue: int,
                 observe=None) -> None:
        self.run = run                      # (X, params) -> {name: array}
        self.max_batch_size = max(1, int(max_batch_size))
        self.max_wait_s = max(0.0, float(max_wait_s))
        self.max_queue = max(1, int(max_queue))
        self.observe = observe or (lambda rows, waits: None)
        self.queue: deque = deque()
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task | None = None

    def _ensure_started(self) -> None:
        if self._task is None or self._task.done():
            self._wake = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._collect())

    async def submit(self, X, params: dict, key):
        """This request's outputs, computed within a batch."""
        self._ensure_started()
        if len(self.queue) >= self.max_queue:
            raise InferError(503, f"the model's queue is full ({self.max_queue} requests waiting)",
                             retry_after=max(1.0, self.max_wait_s * 4))
        fut = asyncio.get_running_loop().create_future()
        self.queue.append((X, params, key, fut, time.perf_counter()))
        self._wake.set()
        return await fut

    async def _collect(self) -> None:
        while True:
            if not self.queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            first_at = self.queue[0][4]
            deadline = first_at + self.max_wait_s
            while self._rows_waiting() < self.max_batch_size:
                left = deadline - time.perf_counter()
                if left <= 0:
                    break
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), left)
                except TimeoutError:
                    break
            self._run_one(self._take())
            await asyncio.sleep(0)   # let the answered requests' handlers run

    def _rows_waiting(self) -> int:
        return sum(len(item[0]) for item in self.queue)

    def _take(self) -> list:
        """Queued requests of the first one's key, up to ``max_batch_size`` rows (at least one request)."""
        key = self.queue[0][2]
        batch, rows, keep = [], 0, deque()
        while self.queue:
            item = self.queue.popleft()
            if item[2] == key and (not batch or rows + len(item[0]) <= self.max_batch_size):
                batch.append(item)
                rows += len(item[0])
            else:
                keep.append(item)
        self.queue.extendleft(reversed(keep))
        return batch

    def _run_one(self, batch: list) -> None:
        now = time.perf_counter()
        waits = [now - item[4] for item in batch]
        try:
            X = batch[0][0] if len(batch) == 1 else np.concatenate([item[0] for item in batch])
            outputs = self.run(X, batch[0][1])
        except Exception as exc:   # every request of the batch gets the model's error
            for item in batch:
                if not item[3].done():
                    item[3].set_exception(exc)
            return
        self.observe(len(X), waits)
        start = 0
        for item in batch:
            n = len(item[0])
            if not item[3].done():
                item[3].set_result({k: v[start:start + n] for k, v in outputs.items()})
            start += n

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        while self.queue:
            fut = self.queue.popleft()[3]
            if not fut.done():
                fut.set_exception(InferError(503, "the model version was unloaded", retry_after=1))
