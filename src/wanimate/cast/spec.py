"""Who plays whom: the cast a user asks for, checked against the models and then against the video.

A cast is given either by id (``--cast 0=knight.png --cast 2=dragon.png``, ids from
``wanimate people``) or as images in order (repeated ``--image``), which are assigned left to right
to the people present in the first frame. Everything that can be checked without the video (the
model, the number of characters, an id cast twice) is checked first, before anything is tracked or
written; the rest (an id that never appears, one never visible in replace mode) once the people are
known.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wanimate.cast.people import PeopleRecord, person_by_id
from wanimate.errors import WanimateError
from wanimate.generate.settings import check_model
from wanimate.materials.layout import check_mode

MAX_CHARACTERS = 7  # MultiAnimate's larger release; replace mode keeps the same ceiling
# The model that animates a cast in each mode, and why the other one cannot.
CAST_MODEL = {"animate": "multianimate", "replace": "animate"}
_NO_CAST_PATH = {
    ("animate", "animate"): "Wan2.2-Animate-14B animates one character; a cast in animate mode runs MultiAnimate "
    "(--model multianimate or auto)",
    ("replace", "multianimate"): "MultiAnimate has no replace mode; a cast in replace mode runs Wan2.2-Animate-14B "
    "one pass per person (--model animate or auto)",
}

CastInput = Mapping[int, str | Path] | Sequence[str | Path]


@dataclass(frozen=True)
class CastMember:
    """One character: the tracked person (id) it plays and its image."""

    person: int
    image: Path


@dataclass(frozen=True)
class CastRequest:
    """The cast as asked: by id, or images in order (left to right in the first frame)."""

    by_id: tuple[tuple[int, Path], ...] = ()
    in_order: tuple[Path, ...] = ()

    @property
    def images(self) -> list[Path]:
        return [image for _, image in self.by_id] or list(self.in_order)

    def __len__(self) -> int:
        return len(self.by_id) or len(self.in_order)


def parse_cast_option(text: str) -> tuple[int, Path]:
    """``"2=dragon.png"`` -> (2, Path("dragon.png"))."""
    person, sep, image = text.partition("=")
    if not sep or not person.strip().isdigit() or not image.strip():
        raise WanimateError(
            f"--cast must be ID=IMAGE with an id from `wanimate people` (e.g. 0=knight.png), not {text!r}"
        )
    return int(person), _image(image.strip())


def _image(value: str | Path) -> Path:
    """A cast image as given, or the file behind ``example:NAME``."""
    from wanimate.examples import resolve_input

    return resolve_input(value)


def cast_request(cast: CastInput | CastRequest) -> CastRequest:
    """A cast from Python: ``{id: image}``, images in order, or ``"ID=IMAGE"`` strings (as on the command line)."""
    if isinstance(cast, CastRequest):
        request = cast
    elif isinstance(cast, Mapping):
        request = CastRequest(by_id=tuple((int(k), _image(v)) for k, v in cast.items()))
    else:
        items = list(cast)
        pairs = [isinstance(i, str) and "=" in i and i.partition("=")[0].strip().isdigit() for i in items]
        if items and all(pairs):
            request = CastRequest(by_id=tuple(parse_cast_option(str(i)) for i in items))
        elif any(pairs):
            raise WanimateError("give the cast either as ID=IMAGE pairs or as images in order, not both")
        else:
            request = CastRequest(in_order=tuple(_image(i) for i in items))
    _check_ids(request)
    return request


def _check_ids(request: CastRequest) -> None:
    seen: dict[int, Path] = {}
    for person, image in request.by_id:
        if person in seen:
            raise WanimateError(
                f"person {person} is cast twice ({seen[person].name} and {image.name}); give each id one character"
            )
        seen[person] = image


def cast_model(mode: str, model: str, count: int) -> str:
    """The model that renders a cast of ``count`` in ``mode``; one line when that combination has no path."""
    check_model(model)
    check_mode(mode)
    if (mode, model) in _NO_CAST_PATH:
        raise WanimateError(f"--cast with --model {model} in {mode} mode: {_NO_CAST_PATH[(mode, model)]}")
    if count > MAX_CHARACTERS:
        what = "MultiAnimate's multianimate-7 checkpoint" if mode == "animate" else "a replace-mode cast"
        raise WanimateError(f"{count} characters cast but {what} takes at most {MAX_CHARACTERS}")
    if count < 1:
        raise WanimateError("the cast is empty; give at least one --cast ID=IMAGE")
    return CAST_MODEL[mode]


def resolve_cast(request: CastRequest, people: PeopleRecord, video: str | Path) -> list[CastMember]:
    """The cast against the tracked people: ids that appear, or the images assigned left to right.

    Members come back in id order, which is their character number (person of lowest id = character 1).
    """
    tracked = person_by_id(people)
    listing = ", ".join(str(i) for i in sorted(tracked)) or "none"
    hint = f"see `wanimate people {Path(video).name}`"
    if request.by_id:
        for person, _ in request.by_id:
            if person not in tracked or not tracked[person].present.any():
                raise WanimateError(
                    f"cast id {person} never appears in {Path(video).name}; the tracked people are {listing} ({hint})"
                )
        members = [CastMember(p, image) for p, image in request.by_id]
    else:
        first = [p for p in tracked.values() if p.present[0]]
        first.sort(key=lambda p: float(np.mean(p.boxes[0, [0, 2]])))
        if len(request.in_order) > len(first):
            raise WanimateError(
                f"{len(request.in_order)} character images but {len(first)} people in the first frame of "
                f"{Path(video).name}; cast the others by id with --cast ID=IMAGE ({hint})"
            )
        members = [CastMember(int(p.id), image) for p, image in zip(first, request.in_order, strict=False)]
    return sorted(members, key=lambda m: m.person)


def check_visible(members: Sequence[CastMember], pixels: Mapping[int, int], video: str | Path) -> None:
    """Replace mode replaces pixels: a cast person of whom no pixel is ever seen is an error."""
    for member in members:
        if pixels.get(member.person, 0) == 0:
            raise WanimateError(
                f"cast id {member.person} is never visible in {Path(video).name} (no pixel of them in any frame); "
                "replace mode needs someone to replace: cast another id"
            )
