"""The mapper's threads: window readers ahead of the model, one strip writer behind it.

GDAL dataset handles are not thread-safe, so each reader thread reads through its own handles
(:class:`~flairlc.mapping.inputs.AerialSource` and
:class:`~flairlc.mapping.inputs.SentinelSeries` open them per thread). rasterio releases the
GIL while GDAL decodes, so ``N`` reader threads decode ``N`` windows at once on ``N`` cores; each
also gives GDAL's decoders (JPEG2000, deflate) ``GDAL_NUM_THREADS`` threads of the cores left
over. The writer thread keeps the working files open and closes them (GDAL then flushes its
cache) only every :data:`FLUSH_EVERY_S` seconds, before the sidecar records the strips as done.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from typing import Any, TypeVar

import rasterio

T = TypeVar("T")
R = TypeVar("R")

#: Most reader threads chosen by default (more rarely pay: the model's thread and the writer's
#: need cores too, and the disk's bandwidth is shared).
MAX_DEFAULT_READ_THREADS = 8
#: CPUs per default reader thread on JPEG2000. OpenJPEG decodes the 2-4 code tiles a window
#: touches in parallel, and readers on neighbouring columns each decode the code tiles their
#: windows share: on 2 cores one reader with 2 decoder threads mapped 1.07x (idle) to 1.2x
#: (loaded) faster than two readers with one each (benchmarks/RESULTS.md).
JPEG2000_CPUS_PER_READER = 2
#: Seconds between flushes of the working files (and saves of the resume sidecar).
FLUSH_EVERY_S = 5.0


def available_cpus() -> int:
    """CPUs this process may run on (its affinity, e.g. under ``taskset``), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def default_read_threads(jpeg2000: bool = False) -> int:
    """Reader threads by default: one per available CPU, at most :data:`MAX_DEFAULT_READ_THREADS`;
    for JPEG2000, one per :data:`JPEG2000_CPUS_PER_READER` CPUs, so that each reader's decoder
    has threads of its own (:func:`decoder_threads`)."""
    readers = min(available_cpus(), MAX_DEFAULT_READ_THREADS)
    return max(1, readers // JPEG2000_CPUS_PER_READER) if jpeg2000 else readers


def decoder_threads(read_threads: int) -> str:
    """``GDAL_NUM_THREADS`` of each reader: the environment's when set, else the CPUs left per
    reader, at least 1."""
    return os.environ.get("GDAL_NUM_THREADS") or str(max(1, available_cpus() // max(1, read_threads)))


def ordered_map(function: Callable[[T], R], items: Iterable[T], threads: int, ahead: int,
                lane: Callable[[T], int] | None = None, thread_end: Callable[[], None] | None = None) -> Iterator[R]:
    """``function(item)`` of every item, in order, computed by ``threads`` threads up to ``ahead``
    items ahead of the consumer (0 threads: in the caller's thread, one at a time).

    Each thread runs in a :class:`rasterio.Env` of its own with ``GDAL_NUM_THREADS``
    (:func:`decoder_threads`). With ``lane``, item ``x`` goes to thread ``lane(x) % threads``
    (e.g. the same columns of every row to the same thread, whose file handles then find in
    GDAL's block cache the blocks that neighbouring windows share); else to any free thread. Each
    thread calls ``thread_end()`` as it ends (to close the files it opened). An exception raised
    by ``function`` is raised here at its item's turn; the threads have ended when this generator
    returns or is closed.
    """
    if threads <= 0:
        for item in items:
            yield function(item)
        return
    queues: list[queue.Queue] = [queue.Queue() for _ in range(threads if lane is not None else 1)]
    stop = threading.Event()
    gdal_threads = decoder_threads(threads)

    def work(tasks: queue.Queue) -> None:
        with rasterio.Env(GDAL_NUM_THREADS=gdal_threads):
            try:
                while not stop.is_set():
                    task = tasks.get()
                    if task is None:
                        return
                    item, future = task
                    if not future.set_running_or_notify_cancel():
                        continue
                    try:
                        future.set_result(function(item))
                    except BaseException as error:  # noqa: BLE001 - handed to the consumer
                        future.set_exception(error)
            finally:
                if thread_end is not None:
                    thread_end()

    workers = [threading.Thread(target=work, args=(queues[i % len(queues)],), name=f"flairlc-map-reader-{i}",
                                daemon=True) for i in range(threads)]
    for worker in workers:
        worker.start()
    pending: deque[Future] = deque()
    source = iter(items)
    try:
        while True:
            while len(pending) < max(ahead, threads):
                item = next(source, _END)
                if item is _END:
                    break
                future: Future = Future()
                queues[lane(item) % threads if lane is not None else 0].put((item, future))
                pending.append(future)
            if not pending:
                return
            yield pending.popleft().result()
    finally:
        stop.set()
        for future in pending:
            future.cancel()
        for i in range(threads):
            queues[i % len(queues)].put(None)
        for worker in workers:
            worker.join()


_END = object()


def prefetched(iterator: Iterator[Any], depth: int) -> Iterator[Any]:
    """The items of ``iterator``, produced by a background thread up to ``depth`` items ahead.

    An exception raised while producing is raised here, in the consumer; the thread has ended
    (the iterator is exhausted or abandoned) when this generator returns.
    """
    done = object()
    items: queue.Queue = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in iterator:
                while not stop.is_set():
                    try:
                        items.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            items.put(done)
        except BaseException as error:  # noqa: BLE001 - handed to the consumer
            items.put(error)
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name="flairlc-map-batches", daemon=True)
    thread.start()
    try:
        while True:
            item = items.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():
            try:
                items.get_nowait()
            except queue.Empty:
                thread.join(timeout=0.1)


class StripWriter:
    """A thread that writes strips into open working files, in the order they come.

    ``open_files()`` opens the working files (rasterio datasets in ``"r+"`` mode) and returns
    them; ``write(files, strip)`` writes one strip; ``flushed(keys)`` is called with the keys of
    every strip written since the last flush, once the files were closed (so their strips are on
    disk) — the resume sidecar is saved there. The files are closed and reopened every
    ``flush_every_s`` seconds, and when the writer closes, also after an error elsewhere (the
    strips already written then count as done).

    Args:
        open_files: opens the working files.
        write: writes one strip into them.
        flushed: told the keys of the strips now on disk.
        flush_every_s: seconds between flushes.
        depth: strips waiting at most (bounds memory; the model's thread then waits).
    """

    def __init__(self, open_files: Callable[[], list], write: Callable[[list, Any], None],
                 flushed: Callable[[list[str]], None], flush_every_s: float = FLUSH_EVERY_S,
                 depth: int = 2) -> None:
        self._open_files, self._write, self._flushed = open_files, write, flushed
        self._flush_every_s = flush_every_s
        self._strips: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="flairlc-map-writer", daemon=True)
        self._thread.start()

    def put(self, key: str, strip: Any) -> None:
        """Queue a strip (waits while ``depth`` strips wait); raises the writer's error, if any."""
        self._raise_error()
        while self._thread.is_alive():
            try:
                self._strips.put((key, strip), timeout=0.1)
                return
            except queue.Full:
                continue
        self._raise_error()

    def close(self) -> None:
        """Write the strips queued, flush, stop the thread; raises the writer's error, if any."""
        while self._thread.is_alive():
            try:
                self._strips.put(None, timeout=0.1)
                break
            except queue.Full:
                continue
        self._thread.join()
        self._raise_error()

    def _raise_error(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _run(self) -> None:
        files: list | None = None  # None: closed
        written: list[str] = []
        last_flush = time.monotonic()

        def flush() -> None:
            nonlocal files, written, last_flush
            for ds in files or []:
                ds.close()
            files = None
            if written:
                self._flushed(written)
            written = []
            last_flush = time.monotonic()

        try:
            while True:
                task = self._strips.get()
                if task is None:
                    break
                if files is None:
                    files = self._open_files()
                key, strip = task
                self._write(files, strip)
                written.append(key)
                if time.monotonic() - last_flush >= self._flush_every_s:
                    flush()
            flush()
        except BaseException as error:  # noqa: BLE001 - handed to the model's thread
            self._error = error
            try:
                flush()
            except BaseException:  # noqa: BLE001 - the first error is the one to tell
                pass
            while True:  # let a waiting put() return
                try:
                    if self._strips.get(timeout=0.1) is None:
                        return
                except queue.Empty:
                    return
