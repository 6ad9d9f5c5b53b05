"""One model, one thread: requests queue for the CPU instead of oversubscribing it.

Every piece of tensor work of the server (tiles, bicubic tiles, downloads) is a `Job`
run by the `ModelWorker`'s single thread, which owns the model and the intra-op
threads. Tiles go before downloads; a download calls `job.checkpoint()` between blocks,
which runs the tiles that arrived meanwhile (so zooming stays responsive during a long
download) and stops the download once it is cancelled. A job cancelled while queued
never runs; one cancelled while running stops at its next block.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import torch


class Cancelled(Exception):
    """The client that asked for this work went away."""


class ModelThreadFailed(RuntimeError):
    """The model thread died: this job will never run (nor will any later one)."""


class Job:
    def __init__(self, worker: ModelWorker, work: Callable[[Job], Any], background: bool) -> None:
        self.worker = worker
        self.work = work
        self.background = background
        self.future: Future = Future()
        self.cancelled = threading.Event()
        self.done_pixels = 0

    def cancel(self) -> None:
        self.cancelled.set()

    def checkpoint(self, pixels: int = 0) -> None:
        """Called by the work between blocks: counts progress, yields to tiles, stops if cancelled."""
        self.done_pixels += pixels
        if self.cancelled.is_set():
            raise Cancelled
        if self.background:
            self.worker.run_interactive()


class ModelWorker:
    """The model thread. Should the thread itself fail (not a job: jobs fail alone), every
    queued job and every later one fails with ModelThreadFailed, and `on_failure` is
    called once with the error, so that the server can stop instead of hanging."""

    def __init__(self, threads: int | None = None, on_failure: Callable[[BaseException], None] | None = None) -> None:
        self.threads = threads
        self.on_failure = on_failure
        self.failure: BaseException | None = None
        self._interactive: deque[Job] = deque()
        self._background: deque[Job] = deque()
        self._wake = threading.Condition()
        self._stopping = False
        self.stats = {"finished": 0, "cancelled": 0, "failed": 0, "max_running": 0}
        self._running = 0
        self._thread = threading.Thread(target=self._loop, name="liifsr-model", daemon=True)
        self._thread.start()

    def submit(self, work: Callable[[Job], Any], background: bool = False) -> Job:
        job = Job(self, work, background)
        with self._wake:
            if self.failure is None:
                (self._background if background else self._interactive).append(job)
                self._wake.notify()
                return job
        job.future.set_exception(self.failure_error())
        return job

    def failure_error(self) -> ModelThreadFailed:
        return ModelThreadFailed(f"the model thread failed ({' '.join(str(self.failure).split()) or type(self.failure).__name__})")

    def queued(self) -> int:
        with self._wake:
            return len(self._interactive) + len(self._background)

    def stop(self) -> None:
        with self._wake:
            self._stopping = True
            for job in [*self._interactive, *self._background]:
                job.cancel()
            self._wake.notify()
        self._thread.join(timeout=10)

    def run_interactive(self) -> None:
        """Run the queued interactive jobs now (from inside a background job's checkpoint)."""
        while True:
            with self._wake:
                if not self._interactive:
                    return
                job = self._interactive.popleft()
            self._run(job)

    def _loop(self) -> None:
        job = None
        try:
            if self.threads:
                torch.set_num_threads(self.threads)
            while True:
                with self._wake:
                    while not (self._interactive or self._background or self._stopping):
                        self._wake.wait()
                    if self._stopping:
                        return
                    job = (self._interactive or self._background).popleft()
                self._run(job)
        except BaseException as error:  # the thread itself, not a job, failed
            self._fail_everything(error, job)

    def _fail_everything(self, error: BaseException, current: Job | None) -> None:
        with self._wake:
            self.failure = error
            pending = [*([current] if current is not None else []), *self._interactive, *self._background]
            self._interactive.clear()
            self._background.clear()
        for job in pending:
            if not job.future.done():
                job.future.set_exception(self.failure_error())
        if self.on_failure is not None:
            self.on_failure(error)

    def _run(self, job: Job) -> None:
        if job.cancelled.is_set():
            self.stats["cancelled"] += 1
            job.future.set_exception(Cancelled())
            return
        self._running += 1
        self.stats["max_running"] = max(self.stats["max_running"], self._running)
        try:
            with torch.no_grad():
                result = job.work(job)
        except Cancelled as error:
            self.stats["cancelled"] += 1
            job.future.set_exception(error)
        except BaseException as error:  # handed to the request, which answers with an error
            self.stats["failed"] += 1
            job.future.set_exception(error)
        else:
            self.stats["finished"] += 1
            job.future.set_result(result)
        finally:
            self._running -= 1
