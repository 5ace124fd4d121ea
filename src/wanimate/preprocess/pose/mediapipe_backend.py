"""Offline whole-body pose on CPU for everyone in the frame, from mediapipe's bundled models.

mediapipe's landmark models see one person in a region; this backend decides the regions:

* **find**: a person finder (:mod:`wanimate.preprocess.pose.finders`) reports people who are not
  followed yet; by default BlazePose's detector over a pyramid of tiles, so small people in a
  wide shot are found as well as close-ups. The whole pyramid runs on the first frame (and on
  every ``scan_interval``-th frame while nobody is followed); every ``scan_interval`` frames the
  whole frame and the next few tiles of a rotation; and *every* frame, a window around where each
  recently lost person would be now had they kept their speed (and where they were lost), so
  someone who comes back from behind an occluder or into the frame is picked up at once.
* **follow**: everyone found is followed from frame to frame by their own region, placed from
  their previous landmarks and moved along their velocity, as mediapipe's own tracking does.
  All regions of a frame go through one landmark graph (:mod:`wanimate.preprocess.pose.landmarker`)
  as one batch, while the detector graph works on the same frame: the two graphs keep two cores
  busy. A nearer neighbour (lower feet) inside someone's region is painted out for them, so the
  model cannot jump from a hidden person to the one in front; when two regions still end on one
  person, the one whose appearance matches keeps them.

Each person reported carries ``track``, the number of the region that followed them, which the
tracker (:mod:`wanimate.preprocess.tracking`) trusts to link frames. Only model_complexity=1
is bundled in the wheel; 0 and 2 would try to download at run time, so they are never used.
"""

from __future__ import annotations

import itertools
from contextlib import ExitStack
from dataclasses import dataclass, field

import numpy as np

from wanimate.native_logs import quiet_native_logs
from wanimate.preprocess.appearance import distance
from wanimate.preprocess.keypoints import LEFT_HAND, RIGHT_HAND
from wanimate.preprocess.pose.base import PersonPose, check_frame
from wanimate.preprocess.pose.blobs import BlobSearch
from wanimate.preprocess.pose.detector import Window, box_iou
from wanimate.preprocess.pose.finders import (
    Candidate,
    circle_meets_box,
    head_circle,
    make_finder,
    paint_head,
    recovery_window,
)
from wanimate.preprocess.pose.landmarker import HANDS_MIN_HEIGHT, ROI_SCALE, Job, Landmarker, Landmarks, Roi
from wanimate.preprocess.pose.mediapipe_mapping import holistic_to_coco, person_from_keypoints
from wanimate.preprocess.pose.silhouettes import Seen, seen_from, separate, work_scale

# Follow numbers are unique in the process, so that backends working side by side on blocks of
# one clip (pose_pool) never hand the tracker the same number for two people.
_TRACK_NUMBERS = itertools.count(1)
RETRY_SCORE = 0.7  # a confident detection whose landmark run failed is looked for again, briefly
SAME_LOOK = 0.3  # appearance distance under which two follows that meet are one person
FALSE_ALARM_FRAMES = 60  # how long a spot rejected twice is not looked at again
JUMPED = 0.6  # appearance distance from someone's own look beyond which their region has jumped to someone else
MAX_RECOVERY_WINDOWS = 4  # lost people looked for in one frame (the most recently lost first)
MAX_BLOB_SEARCHES = 2  # lost people looked for by silhouette in one frame
MAX_AXIS_SIDE = 4.0  # see next_roi: the largest axis region, in sides of the box of what the model is sure of
BUST_SIDE = 2.0  # the region around someone whose axis region is larger, in sides of that box
RETRY_SIDE = 2.0  # the second look at someone missed, in sides of their last box
HANDS_RETRY = 4  # see _Followed.wants_hands
RECENTLY_LOST = 30  # frames: see MediaPipeBackend.searching


@dataclass(eq=False)
class _Followed:
    """One followed person: where to look next frame and what they look like."""

    track: int
    roi: Roi  # for the next frame, from this frame's landmarks
    box: np.ndarray
    keypoints: np.ndarray
    look: np.ndarray | None
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2, np.float32))  # px per frame, see _step
    found_in: Roi | None = None  # the detector's region they were found in...
    found_at: np.ndarray | None = None  # ...and their box centre then
    hands_found: bool = True  # the hand models found a hand of theirs in their last frame
    fallback_first: int = 0  # see fallbacks

    def wants_hands(self, frame: int) -> bool:
        """Whether their region gets the hand models this frame: after a frame where a hand of theirs
        was found, else every ``HANDS_RETRY``-th frame.

        The two hands are about 40% of a region's cost, and for someone seen small, from behind or
        with their hands hidden the model looks and finds nothing frame after frame (measured: a
        hand in 3 of 125 regions on the four-people shot, none of 64 on the one-person close-up); a
        hand that comes into view is then picked up at most ``HANDS_RETRY - 1`` frames late.
        """
        return self.hands_found or (frame + self.track) % HANDS_RETRY == 0

    def fallbacks(self) -> list[Roi]:
        """Regions to try when the model misses them in their tracked region: around their last box,
        and the region they were found in, moved along with them since; the one that found them the
        last time they were missed first (each try is a landmark run)."""
        box = self.box + np.tile(self.velocity, 2)
        regions = [Roi.around_box(box, side=RETRY_SIDE * _longer_side(box))]
        if self.found_in is not None and self.found_at is not None:
            regions.append(self.found_in.moved((box[:2] + box[2:]) / 2 - self.found_at))
        first = self.fallback_first % len(regions)
        return regions[first:] + regions[:first]

    def update(self, person: PersonPose, roi: Roi) -> None:
        if person.bbox is not self.box:
            self.velocity = 0.6 * self.velocity + 0.4 * _step(self.keypoints, self.box, person)
        self.box, self.keypoints, self.roi = person.bbox, person.keypoints, roi
        self.hands_found = bool(person.keypoints[LEFT_HAND.start : RIGHT_HAND.stop, 2].any())
        if person.appearance is not None:
            self.look = person.appearance if self.look is None else 0.8 * self.look + 0.2 * person.appearance


@dataclass(eq=False)
class _Lost:
    frame: int
    box: np.ndarray
    velocity: np.ndarray
    look: np.ndarray | None


class MediaPipeBackend:
    """Whole-body COCO-133 poses for every person in the frame (see the module docstring)."""

    name = "mediapipe"

    def __init__(
        self,
        *,
        video: bool = True,
        max_people: int = 8,
        scan_interval: int = 5,
        finder: str = "tiles",
        min_face: float | None = None,
        recover_frames: int = 90,
    ) -> None:
        self.video = video
        self.max_people = max_people
        self.scan_interval = max(1, scan_interval)
        self._quiet = ExitStack()  # MediaPipe's native logs stay off the terminal while the graphs live
        self._quiet.enter_context(quiet_native_logs())
        self.recover_frames = recover_frames
        self._finder = make_finder(finder, min_face=min_face)
        self._landmarker = Landmarker()
        self._followed: list[_Followed] = []
        self._lost: list[_Lost] = []
        self._frame_index = -1
        self._rejected: list[list] = []  # [head box, times rejected, last frame] of detections with no one there
        self._blobs = BlobSearch() if video and finder == "tiles" else None

    @property
    def finder_runs(self) -> int:
        """Detector passes the finder has made so far."""
        return self._finder.runs

    @property
    def searching(self) -> bool:
        """Whether it is looking for someone it lost in the last ``RECENTLY_LOST`` frames (hidden
        by someone crossing, say): a worker handing over to the next one waits for that
        (:mod:`wanimate.preprocess.pose_pool`), since a cold start knows nothing of them."""
        return any(lost.look is not None and self._frame_index - lost.frame <= RECENTLY_LOST for lost in self._lost)

    @property
    def landmark_runs(self) -> int:
        """Regions the landmark graph has looked at so far."""
        return self._landmarker.runs

    def _schedule(self) -> tuple[bool, bool]:
        """Whether this frame gets the whole pyramid, and whether a sweep (whole frame + rotation)."""
        index = self._frame_index
        if index == 0 or not self.video:
            return True, False
        # with everyone followed and nobody lost, newcomers are looked for half as often
        interval = self.scan_interval if self._lost or not self._followed else 2 * self.scan_interval
        due = index % interval == 0
        return due and not self._followed, due

    def _expected(self, width: int, height: int) -> list[np.ndarray]:
        """One box per recently lost person where to look for them in this frame.

        Where they would be now at their last speed, every other frame; the longer they are gone,
        the less sure that is, so the frames between look a little further along and back along
        their way, and where they were lost, in turn (someone who stopped behind an occluder).
        One window a frame rather than both: each is a detector pass, and while someone stays
        lost these passes were most of the detector's work (two a frame per person lost).
        """
        boxes = []
        for lost in sorted(self._lost, key=lambda item: -item.frame)[:MAX_RECOVERY_WINDOWS]:
            gone = self._frame_index - lost.frame
            w, h = lost.box[2] - lost.box[0], lost.box[3] - lost.box[1]
            spread = min(float(np.abs(lost.velocity).max()) * gone / 2, 2.0 * h)
            steps = int(spread // (0.6 * max(w, h))) if spread > 0 else 0
            offsets = [0.0] + [k * spread / max(steps, 1) for i in range(1, steps + 1) for k in (i, -i)]
            direction = lost.velocity / max(float(np.linalg.norm(lost.velocity)), 1e-6)
            pick = 0 if gone % 2 else 1 + (gone // 2) % len(offsets)
            if pick == len(offsets):
                boxes.append(lost.box.copy())
                continue
            moved = lost.box + np.tile(lost.velocity * gone + direction * offsets[pick], 2)
            # someone walking out is looked for at the border they left by (where they come back)
            moved[[0, 2]] = np.clip(moved[0], -0.5 * w, width - 0.5 * w) + np.array([0, w])
            moved[[1, 3]] = np.clip(moved[1], -0.5 * h, height - 0.5 * h) + np.array([0, h])
            boxes.append(moved)
        return boxes

    def _blob_searches(self, width: int, height: int) -> list[tuple[Window, np.ndarray, np.ndarray]]:
        """(window, look, last box) for the most recently lost people whose look is known."""
        searches = []
        for lost in sorted(self._lost, key=lambda item: -item.frame):
            if lost.look is not None and len(searches) < MAX_BLOB_SEARCHES:
                moved = lost.box + np.tile(lost.velocity * (self._frame_index - lost.frame), 2)
                box = moved if (self._frame_index - lost.frame) % 2 else lost.box
                # segmentation needs no face, so the window can be wider than the detector's
                wide = _inside(box, width, height) + np.array([-1, -1, 1, 1]) * 0.3 * _longer_side(box)
                searches.append((recovery_window(height, width, wide), lost.look, lost.box))
        return searches

    def _job(self, frame: np.ndarray, roi: Roi, hide: list[np.ndarray], hands: bool = True) -> Job:
        """The region's pixels (a crop of the frame) with the heads of the people in ``hide`` painted out.

        The crop is cut at the frame border, not padded, as the frame itself is in mediapipe's own
        graphs (which, like this one, map a rotated region back exactly only in a square image;
        mediapipe logs a warning about it). Padding with black was tried: it made the model see
        people in the padding. ``hands``: whether the hand models may run (if the person is large enough).
        """
        h, w = frame.shape[:2]
        x0, y0, x1, y1 = roi.bounds(w, h)
        image = np.ascontiguousarray(frame[y0:y1, x0:x1])
        if hide and np.shares_memory(image, frame):
            image = image.copy()
        for keypoints in hide:
            moved = keypoints.copy()
            moved[:, :2] -= (x0, y0)
            paint_head(image, moved)
        scale = work_scale(image.shape)
        small = np.ascontiguousarray(image[::scale, ::scale]) if scale > 1 else image
        hands = hands and roi.side / ROI_SCALE >= HANDS_MIN_HEIGHT
        return Job(image=image, offset=(x0, y0), roi=roi, hands=hands, small=small, scale=scale)

    def _heads_to_hide(self, me: _Followed, roi: Roi, width: int, height: int) -> list[np.ndarray]:
        """Keypoints (moved to now) of the other followed people whose head is in ``roi``, for ``me``.

        A head over ``me`` is hidden only when its owner stands in front (lower feet): the head of
        someone behind ``me`` may sit on ``me``'s own pixels.
        """
        bounds = roi.bounds(width, height)
        mine = me.box + np.tile(me.velocity, 2)
        hide = []
        for other in self._followed:
            if other is me:
                continue
            moved = other.keypoints.copy()
            moved[:, :2] += other.velocity
            circle = head_circle(moved)
            if circle is None or not circle_meets_box(circle, bounds):
                continue
            if circle_meets_box(circle, mine) and other.box[3] <= me.box[3]:
                continue
            hide.append(moved)
        return hide

    def detect(self, frame: np.ndarray) -> list[PersonPose]:
        frame = check_frame(frame)
        h, w = frame.shape[:2]
        self._frame_index += 1
        if not self.video:
            self._followed, self._lost = [], []
        full, sweep = self._schedule()
        around = self._expected(w, h) if self._lost else []
        wanted = len(self._followed) < self.max_people and bool(full or sweep or around)
        if wanted:
            self._finder.start(frame, full=full, sweep=sweep, around=around)
        rois = [f.roi.moved(f.velocity) for f in self._followed]
        jobs = [
            self._job(frame, roi, self._heads_to_hide(f, roi, w, h), f.wants_hands(self._frame_index))
            for f, roi in zip(self._followed, rois, strict=True)
        ]
        answers = self._landmarker.run(jobs)
        retried = self._retry(frame, jobs, answers)
        seen = self._keep_followed(answers, jobs, retried, w, h)
        if wanted:
            found = [one.person for _, one, _ in seen]
            candidates = self._finder.finish(frame, found)
            if self._blobs is not None:
                candidates += self._blobs.find(frame, self._blob_searches(w, h), found)
            seen += self._add_new(frame, candidates, seen)
        separate([s for _, s, _ in seen])
        people = []
        for followed, one, roi in seen:
            followed.update(one.person, roi)
            one.person.track = followed.track
            people.append(one.person)
        # a detection the model saw no one in is looked at again only briefly: it was likely background
        self._lost = [
            lost
            for lost in self._lost
            if self._frame_index - lost.frame
            <= (self.recover_frames if lost.look is not None else 2 * self.scan_interval)
        ]
        return people

    def _retry(self, frame: np.ndarray, jobs: list[Job], answers: list[Landmarks | None]) -> set[int]:
        """Look again for the followed people the model missed, in their fallback regions, one round each;
        returns who was looked at again."""
        h, w = frame.shape[:2]
        retried: set[int] = set()
        for attempt in range(2):
            again = []
            for i, (followed, answer) in enumerate(zip(self._followed, answers, strict=True)):
                regions = followed.fallbacks()
                if answer is None and attempt < len(regions):
                    roi = regions[attempt]
                    hide = self._heads_to_hide(followed, roi, w, h)
                    again.append((i, self._job(frame, roi, hide, followed.wants_hands(self._frame_index))))
            if not again:
                break
            for (i, job), answer in zip(again, self._landmarker.run([job for _, job in again]), strict=True):
                jobs[i], answers[i] = job, answer
                retried.add(i)
                if answer is not None:
                    self._followed[i].fallback_first += attempt
        return retried

    def _keep_followed(
        self, answers: list[Landmarks | None], jobs: list[Job], retried: set[int], w: int, h: int
    ) -> list[tuple[_Followed, Seen, Roi]]:
        """This frame's view of each followed person; the ones lost, or now on someone else, are let go.

        Someone found only in a fallback region is looked for in that region (moved along with
        them) next frame: where the region from their landmarks failed once, it tends to again.
        """
        found: list[tuple[_Followed, Seen, Roi]] = []
        for i, (followed, job, answer) in enumerate(zip(self._followed, jobs, answers, strict=True)):
            one = None if answer is None else _to_seen(answer, job, w, h)
            if one is not None and answer is not None and not _jumped(followed.look, one.person):
                if i in retried:
                    roi = job.roi.moved(_step(followed.keypoints, followed.box, one.person))
                else:
                    roi = next_roi(answer, one.person)
                found.append((followed, one, roi))
            else:
                self._lose(followed)
        # two regions that ended on one person: the one who looks like them keeps them
        found.sort(key=lambda item: _look_distance(item[0].look, item[1].person))
        kept: list[tuple[_Followed, Seen, Roi]] = []
        for item in found:
            twin = next((other for _, other, _ in kept if same_person(item[1].person, other.person)), None)
            if twin is None:
                kept.append(item)
            elif _look_distance(item[0].look, twin.person) >= SAME_LOOK:
                self._lose(item[0])  # their region ended on someone else: they are hidden, look for them
            # else: one person followed twice; the second follow just ends
        order = {id(f): i for i, f in enumerate(self._followed)}
        kept.sort(key=lambda item: order[id(item[0])])
        self._followed = [f for f, _, _ in kept]
        return kept

    def _lose(self, followed: _Followed) -> None:
        self._lost.append(_Lost(self._frame_index, followed.box, followed.velocity.copy(), followed.look))

    def _reject(self, head: np.ndarray) -> None:
        """Remember a detection the landmark model saw no one in."""
        for rejection in self._rejected:
            if box_iou(rejection[0], head) > 0.5:
                rejection[1] += 1
                rejection[2] = self._frame_index
                return
        self._rejected.append([head, 1, self._frame_index])

    def _false_alarm(self, candidate: Candidate) -> bool:
        """A detection at a spot rejected twice lately (background the detector keeps seeing a person in)."""
        self._rejected = [r for r in self._rejected if self._frame_index - r[2] <= FALSE_ALARM_FRAMES]
        head = candidate.head
        return head is not None and any(r[1] >= 2 and box_iou(r[0], head) > 0.5 for r in self._rejected)

    def _add_new(
        self, frame: np.ndarray, candidates: list[Candidate], seen: list[tuple[_Followed, Seen, Roi]]
    ) -> list[tuple[_Followed, Seen, Roi]]:
        """Start following the candidates the landmark model confirms as someone not followed yet."""
        h, w = frame.shape[:2]
        room = self.max_people - len(seen)
        candidates = [c for c in candidates if not self._false_alarm(c)]
        candidates = sorted(candidates, key=lambda c: -c.score)[: max(0, 2 * room)]
        if not candidates or room <= 0:
            return []
        people = [one.person for _, one, _ in seen]
        jobs = [self._job(frame, c.roi, _heads_apart(c, people, w, h)) for c in candidates]
        added: list[tuple[_Followed, Seen, Roi]] = []
        for candidate, job, answer in zip(candidates, jobs, self._landmarker.run(jobs), strict=True):
            if len(people) >= self.max_people:
                break
            one = None if answer is None else _to_seen(answer, job, w, h)
            if one is None or answer is None or not candidate.is_who(one.person) or _overlaps(one.person, people):
                if one is None and candidate.head is not None:
                    self._reject(candidate.head)
                    if candidate.score >= RETRY_SCORE:
                        figure = _figure_from_head(candidate.head)
                        self._lost.append(_Lost(self._frame_index, figure, np.zeros(2), None))
                continue
            person = one.person
            followed = _Followed(next(_TRACK_NUMBERS), next_roi(answer, person), person.bbox, person.keypoints, None)
            followed.found_in, followed.found_at = candidate.roi, (person.bbox[:2] + person.bbox[2:]) / 2
            self._followed.append(followed)
            people.append(person)
            added.append((followed, one, followed.roi))
            self._lost = [lost for lost in self._lost if not _explains(person, lost, self._frame_index)]
        return added

    def close(self) -> None:
        self._followed = []
        self._landmarker.close()
        self._finder.close()
        if self._blobs is not None:
            self._blobs.close()
        self._quiet.close()


def _heads_apart(candidate: Candidate, people: list[PersonPose], width: int, height: int) -> list[np.ndarray]:
    """Keypoints of the people whose head is in the candidate's region but away from the candidate's head."""
    bounds = candidate.roi.bounds(width, height)
    own = candidate.head if candidate.head is not None else candidate.body
    hide = []
    for person in people:
        circle = head_circle(person.keypoints)
        if circle is not None and circle_meets_box(circle, bounds) and not circle_meets_box(circle, own):
            hide.append(person.keypoints)
    return hide


def _step(keypoints: np.ndarray, box: np.ndarray, person: PersonPose) -> np.ndarray:
    """How far someone moved since their last frame: their head's move, else their box centre's.

    The head is what stays in view longest: someone walking behind an occluder or out of the
    frame keeps their head's speed while the box shrinks against the edge.
    """
    before, now = head_circle(keypoints), head_circle(person.keypoints)
    if before is not None and now is not None:
        return (now[0] - before[0]).astype(np.float32)
    return ((person.bbox[:2] + person.bbox[2:] - box[:2] - box[2:]) / 2).astype(np.float32)


def _inside(box: np.ndarray, width: int, height: int) -> np.ndarray:
    """``box`` moved (not cut) so that at least half of it lies in the frame."""
    w, h = box[2] - box[0], box[3] - box[1]
    x0 = float(np.clip(box[0], -0.5 * w, width - 0.5 * w))
    y0 = float(np.clip(box[1], -0.5 * h, height - 0.5 * h))
    return np.array([x0, y0, x0 + w, y0 + h], np.float32)


def _overlaps(person: PersonPose, people: list[PersonPose]) -> bool:
    """Whether ``person`` is one of ``people`` seen twice: boxes that mostly overlap, or one head on the other."""
    return any(same_person(person, other) for other in people)


def same_person(a: PersonPose, b: PersonPose) -> bool:
    if box_iou(a.bbox, b.bbox) > 0.6:
        return True
    ca, cb = head_circle(a.keypoints), head_circle(b.keypoints)
    if ca is None or cb is None:
        return False
    return float(np.linalg.norm(ca[0] - cb[0])) < 0.75 * max(ca[1], cb[1])


def _to_seen(answer: Landmarks, job: Job, width: int, height: int) -> Seen | None:
    """The landmark graph's answer as a frame-pixel person with their silhouette, box and appearance."""
    x0, y0 = job.offset
    jh, jw = job.image.shape[:2]
    kp = holistic_to_coco(answer.result, x0, y0, jw, jh)
    person = None if kp is None else person_from_keypoints(kp, width, height)
    return None if person is None else seen_from(person, answer.mask, job.small, job.offset, job.scale)


def next_roi(answer: Landmarks, person: PersonPose) -> Roi:
    """Where to look for ``person`` in the next frame: mediapipe's region from the body axis, unless
    that is far larger than the part of them the model is sure of.

    Below someone seen from the chest up, BlazePose invents hips and legs and centres its region
    on them; frame by frame the region then drifts down and grows until the person is a small
    figure at its top, and the model loses them. A region around the sure part keeps them large.
    """
    axis = Roi.from_axis(answer.aux[0], answer.aux[1])
    side = _longer_side(person.bbox)
    return axis if axis.side <= MAX_AXIS_SIDE * side else Roi.around_box(person.bbox, side=BUST_SIDE * side)


def _longer_side(box: np.ndarray) -> float:
    return float(max(box[2] - box[0], box[3] - box[1], 16.0))


def _look_distance(look: np.ndarray | None, person: PersonPose) -> float:
    if look is None or person.appearance is None:
        return 0.5
    return distance(look, person.appearance)


def _jumped(look: np.ndarray | None, person: PersonPose) -> bool:
    return look is not None and person.appearance is not None and distance(look, person.appearance) > JUMPED


def _explains(person: PersonPose, lost: _Lost, now: int) -> bool:
    """Whether a newly found ``person`` is the one lost as ``lost`` (same look, or where they should be)."""
    if lost.look is not None and person.appearance is not None:
        return distance(lost.look, person.appearance) < 0.3
    moved = lost.box + np.tile(lost.velocity * (now - lost.frame), 2)
    return box_iou(moved, person.bbox) > 0.1 or box_iou(lost.box, person.bbox) > 0.1


def _figure_from_head(head: np.ndarray) -> np.ndarray:
    """A rough person box under a detector's head box, to look there again in the next frames."""
    x0, y0, x1, y1 = head
    return np.array([x0, y0, x1, y1 + 2 * (y1 - y0)], np.float32)
