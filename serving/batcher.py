"""Micro-batching: requests that arrive while the model is busy are scored together in its next pass.

No request waits on a timer: the batcher takes whatever queued up during the previous pass. Under load this turns
many single-participant forward and backward passes into one, and one thread owns the model, so concurrent requests
never fight over the CPU cores inside torch.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
from collections.abc import Callable
from typing import Generic, TypeVar

import torch

Job = TypeVar("Job")
Result = TypeVar("Result")


class QueueFull(RuntimeError):
    """More items are waiting than the bound allows: the caller should answer 503 and ask the client to retry."""


class MicroBatcher(Generic[Job, Result]):
    """Feeds lists of jobs to `run(jobs) -> results` (same order) on one dedicated thread; at most `max_waiting`
    items wait or run at once (a burst beyond it is refused at once instead of queueing without bound). A pass of at
    least `wide_from` items runs on every core: the event loop has little to do while one large request is scored."""

    def __init__(
        self,
        run: Callable[[list[Job]], list[Result]],
        size: Callable[[Job], int],
        max_items: int = 1000,
        threads: int = 1,
        max_waiting: int = 20_000,
        wide_from: int = 64,
    ):
        self.run, self.size, self.max_items, self.max_waiting = run, size, max_items, max_waiting
        self.threads, self.wide_from, self.cores = threads, wide_from, max(threads, os.cpu_count() or 1)
        self._threads_now = threads
        self.waiting = 0  # items submitted and not yet answered (touched only on the event loop)
        self.queue: asyncio.Queue[tuple[Job, asyncio.Future[Result]]] | None = None
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="scorer")
        self.task: asyncio.Task[None] | None = None
        # One intra-op thread: idle OpenMP workers spin and steal the core that the event loop needs.
        self.pool.submit(torch.set_num_threads, threads).result()

    async def submit(self, job: Job) -> Result:
        n = self.size(job)
        if self.waiting and self.waiting + n > self.max_waiting:
            raise QueueFull(f"{self.waiting} items are waiting to be scored (bound {self.max_waiting})")
        if self.queue is None:
            self.queue = asyncio.Queue()
            self.task = asyncio.get_running_loop().create_task(self._loop())
        fut: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self.waiting += n
        try:
            await self.queue.put((job, fut))
            return await fut
        finally:
            self.waiting -= n

    def _run(self, jobs: list[Job], items: int) -> list[Result]:
        wanted = self.cores if items >= self.wide_from else self.threads
        if wanted != self._threads_now:  # only when a pass changes width: most passes are small
            torch.set_num_threads(wanted)
            self._threads_now = wanted
        return self.run(jobs)

    async def _loop(self) -> None:
        assert self.queue is not None
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self.queue.get()]
            items = self.size(batch[0][0])
            while not self.queue.empty() and items < self.max_items:
                nxt = self.queue.get_nowait()
                batch.append(nxt)
                items += self.size(nxt[0])
            jobs = [j for j, _ in batch]
            try:
                results = await loop.run_in_executor(self.pool, self._run, jobs, items)
            except Exception as err:
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(err)
                continue
            for (_, fut), res in zip(batch, results, strict=True):
                if not fut.done():
                    fut.set_result(res)
