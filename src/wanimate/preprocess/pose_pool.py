"""Pass 1's pose detection on several stretches of the clip at once, with bounded memory.

A backend follows people from one frame to the next, so it has to see consecutive frames:
backends taking turns on alternate blocks lost everyone at every block and were measured
slower than one. Each worker here gets one contiguous stretch (a :class:`Span`) instead, read
by its own decoder from the stretch's first frame, and starts it as a backend starts a clip
(the whole detector pyramid). One mediapipe backend keeps about 1.3 cores busy (its detector
and landmark graphs wait on each other); two stretches keep two cores busy. Memory is a few
frames per worker whatever the video's length.

A cold start can miss someone the previous worker was following (two people crossing, one
half hidden, at the seam), and the periodic scans may take a second to find them. So at the
end of its stretch each worker carries on into the next one, frame by frame, until the next
worker sees the same people in that frame, has matched everyone the carrying worker followed
since the seam, and the carrying worker is not looking for someone it has just lost (a
backend's ``searching``; a cold start knows nothing of them): the seam moves to that frame
(usually the first one), and the frames before it keep the earlier worker's detections; on
the four-people wide shot, split two frames into a crossing, the first worker carries on to
the end. The tracker links people across the seam as it does through any frame.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

import numpy as np

from wanimate.preprocess.pose.detector import box_iou

MIN_SPAN = 60  # frames: a shorter stretch spends more on its first frame's pyramid than it saves
MAX_AUTO_WORKERS = 4  # more stretches mean more seams and pyramids for less and less gain
MAX_HANDOVER = 90  # frames a worker carries on past its stretch at most, waiting to agree with the next
SOLO_PEOPLE = 2  # people in the first frame from whom on the first worker takes the whole clip, see detect_all
SAME_BOX = 0.5  # box IoU at which two workers' detections are one person


@dataclass(frozen=True)
class Span:
    """Output frames ``start`` up to ``stop`` (exclusive; None: to the end of the clip)."""

    start: int
    stop: int | None = None


def machine_cores() -> int:
    """The cores this process may run on (the affinity mask, e.g. a container's share)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def split(total: int | None, workers: int, min_span: int = MIN_SPAN) -> list[Span]:
    """At most ``workers`` contiguous stretches of at least ``min_span`` frames covering ``total``.

    The last stretch runs to the end of the clip, so a video that decodes to more frames than
    ``total`` (the probe's count) still has every frame looked at; an unknown ``total`` is one stretch.
    """
    count = max(1, min(workers, (total or 0) // max(1, min_span)))
    if total is None or count == 1:
        return [Span(0)]
    bounds = [round(i * total / count) for i in range(count)]
    stops: list[int | None] = [*bounds[1:], None]
    return [Span(start, stop) for start, stop in zip(bounds, stops, strict=True)]


def matched(mine: Sequence[Any], theirs: Sequence[Any]) -> set[int]:
    """Indices in ``mine`` of the people ``theirs`` has too (box IoU >= ``SAME_BOX``, one to one)."""
    free = list(theirs)
    found = set()
    for index, person in enumerate(mine):
        match = next((other for other in free if box_iou(person.bbox, other.bbox) >= SAME_BOX), None)
        if match is not None:
            free.remove(match)
            found.add(index)
    return found


class _Handover:
    """Whether a worker carrying on past its stretch may stop: see the module docstring."""

    def __init__(self) -> None:
        self._owed: dict[int, bool] = {}  # follow number since the seam -> the next worker has matched them

    def agreed(self, mine: Sequence[Any], theirs: Sequence[Any], searching: bool) -> bool:
        same = matched(mine, theirs)
        for index, person in enumerate(mine):
            number = getattr(person, "track", None)
            if number is not None:
                self._owed[number] = self._owed.get(number, False) or index in same
        return not searching and len(same) == len(mine) == len(theirs) and all(self._owed.values())


class _Workers:
    """What the workers found, shared between their threads (see :func:`detect_all`)."""

    def __init__(self, spans: Sequence[Span]) -> None:
        self.spans = spans
        self.found: list[list[list[Any]]] = [[] for _ in spans]  # per worker, its stretch's frames
        self.carried: list[list[list[Any]]] = [[] for _ in spans]  # per worker, frames past its stretch
        self.size: tuple[int, int] | None = None  # (H, W) of the first worker's first frame
        self.finished = [False] * len(spans)
        self.stop = threading.Event()
        self.solo = threading.Event()  # the first worker takes the whole clip; the others stop
        self._changed = threading.Condition()

    def add(self, slot: int, people: list[Any]) -> None:
        with self._changed:
            self.found[slot].append(people)
            self._changed.notify_all()

    def finish(self, slot: int) -> None:
        with self._changed:
            self.finished[slot] = True
            self._changed.notify_all()

    def theirs(self, slot: int, index: int) -> list[Any] | None:
        """Worker ``slot``'s detections of its stretch's frame ``index``, once it has them; None if it never will."""
        with self._changed:
            while len(self.found[slot]) <= index:
                if self.finished[slot] or self.stop.is_set() or self.solo.is_set():
                    return None
                self._changed.wait(0.1)
            return self.found[slot][index]

    def count(self) -> int:
        """Frames done so far (for progress)."""
        return len(self.found[0]) if self.solo.is_set() else sum(len(found) for found in self.found)

    def frames(self) -> list[list[Any]]:
        """Every frame's detections in order: each stretch's, its first frames replaced by the
        detections the previous worker carried into it."""
        if self.solo.is_set():
            return self.found[0]
        out: list[list[Any]] = []
        carried: list[list[Any]] = []
        for slot in range(len(self.spans)):
            out += carried + self.found[slot][len(carried) :]
            carried = self.carried[slot]
        return out


def detect_all(
    read: Callable[[int], Iterator[np.ndarray]],
    backends: Sequence[Any],
    spans: Sequence[Span],
    *,
    on_done: Callable[[int], None] | None = None,
    poll_s: float = 0.1,
    solo_people: int = SOLO_PEOPLE,
) -> tuple[list[list[Any]], tuple[int, int] | None]:
    """Detections for every frame in order, and the (H, W) of the frames (None when there were none).

    ``backends[i]`` works through ``read(spans[i].start)`` (the clip's frames from there on, read
    lazily) to the end of its span and on past it (see the module docstring), in a thread of its
    own. When the first worker finds ``solo_people`` or more people in its first frame, it takes
    the whole clip and the others stop: a backend following several people already keeps two
    cores busy (the landmark graph pipelines their regions), and in a crowd someone is nearly
    always just hidden, so a worker would carry on past its seam for most of the next stretch
    (measured on the four-people shot: 1.2x the CPU, no faster). ``on_done(count)`` is called
    from the calling thread with the frames finished since its last call, at most every
    ``poll_s`` seconds; an exception it raises (or a backend's) stops every worker at its next
    frame and is raised here.
    """
    if len(backends) != len(spans):
        raise ValueError(f"{len(backends)} backends for {len(spans)} spans")
    shared = _Workers(spans)

    def work(slot: int) -> None:
        span = spans[slot]
        frames = read(span.start)  # lazily to the end: a worker may carry on past its stretch
        handover = _Handover()
        try:
            for index, frame in enumerate(frames, start=span.start):
                if shared.stop.is_set() or (slot and shared.solo.is_set()):
                    return
                if slot == 0 and shared.size is None:
                    shared.size = (int(frame.shape[0]), int(frame.shape[1]))
                people = backends[slot].detect(frame)
                if slot == 0 and index == span.start and len(spans) > 1 and len(people) >= solo_people:
                    shared.solo.set()
                end = None if shared.solo.is_set() else span.stop
                if end is None or index < end:
                    shared.add(slot, people)
                    continue
                if index >= end + MAX_HANDOVER:
                    return
                theirs = shared.theirs(slot + 1, index - end)
                if theirs is None or handover.agreed(people, theirs, getattr(backends[slot], "searching", False)):
                    return
                shared.carried[slot].append(people)
        finally:
            shared.finish(slot)
            close = getattr(frames, "close", None)
            if close is not None:
                close()

    reported = 0
    with ThreadPoolExecutor(max_workers=len(spans), thread_name_prefix="pose") as pool:
        futures = [pool.submit(work, slot) for slot in range(len(spans))]
        try:
            while True:
                done, pending = wait(futures, timeout=poll_s, return_when=FIRST_EXCEPTION)
                for future in done:
                    future.result()  # a backend's error, raised here
                count = shared.count()
                if on_done is not None and count > reported:
                    on_done(count - reported)
                    reported = count
                if not pending:
                    break
        except BaseException:
            shared.stop.set()
            raise
    return shared.frames(), shared.size
