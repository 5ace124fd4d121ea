"""Replace mode for a cast: Wan2.2-Animate-14B once per cast person, each pass on the previous output.

The passes run in the cast's order (back to front by the depth cue, or by id; ``cast.json``).
Pass k is an ordinary one-character replace-mode materials folder, written when the pass starts:

* ``src_mask.mp4``: person k's own pixels (from the id-labelled masks), grown the official way
  (``refine_mask``), which is where the model generates;
* ``src_bg.mp4``: the scene so far (the driving frames with passes 1..k-1 pasted in), blacked out
  under that mask; ``src_pose.mp4``: person k's skeleton; ``src_face.mp4``, ``src_ref.png``: person
  k's face crops and character.

Each pass's generated frames are pasted into the scene only inside its grown mask and never over
another person's pixels, so everyone not in the cast stays exactly as the scene shows them, and a
person in front of a cast performer keeps covering their character. The final video is the scene
with every pass pasted in, encoded once.

Resume: a finished pass keeps its ``generated.mp4``; the pass in progress keeps its materials and
its finished segments (the shared segment engine's work folder), so a killed run started again
skips the finished passes and continues the current one at its last finished segment.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from wanimate.cast.folder import LABELS, SCENE, CastFolder, face_file, load_cast, ref_file
from wanimate.errors import WanimateError
from wanimate.generate.engine import ProgressCallback, ProgressEvent
from wanimate.generate.settings import GenerateSettings
from wanimate.materials.folder import MATERIAL_FILES, MaterialsMeta, write_meta
from wanimate.materials.layout import KEYPOINTS_NAME
from wanimate.preprocess.masks import refine_mask
from wanimate.preprocess.settings import PreprocessSettings
from wanimate.preprocess.skeleton import draw_skeleton
from wanimate.video import VideoWriter, iter_frames

if TYPE_CHECKING:
    from wanimate.models.loading import LoadedModel
    from wanimate.models.session import ModelSession

GENERATED = "generated.mp4"
_MASK = PreprocessSettings()  # the official mask growth, as one-character replace mode uses it


def pass_dir(work: Path, index: int, person: int) -> Path:
    return work / f"pass-{index + 1}-person-{person}"


def model_mask(labels: np.ndarray, person: int) -> np.ndarray:
    """Where the model generates person ``person``: their pixels grown the official way."""
    mine = labels == person + 1
    grown = refine_mask(
        mine, iterations=_MASK.mask_iterations, k=_MASK.mask_k, w_len=_MASK.mask_w_len, h_len=_MASK.mask_h_len
    )
    return np.asarray(grown) > 0


def paste_region(labels: np.ndarray, person: int) -> np.ndarray:
    """Where a pass's output replaces the scene: the grown mask, less every other person's pixels."""
    return model_mask(labels, person) & ((labels == 0) | (labels == person + 1))


def composite_scenes(cast: CastFolder, work: Path, done: list[int]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(scene so far, labels) per frame: the driving frames with the finished passes ``done`` pasted in, in order."""
    with ExitStack() as stack:
        generated = [
            stack.enter_context(_closing(iter_frames(pass_dir(work, i, cast.order[i]) / GENERATED))) for i in done
        ]
        labels = (frame[..., 0] for frame in iter_frames(cast.root / LABELS))
        for scene, label in zip(iter_frames(cast.root / SCENE), labels, strict=True):
            for index, frames in zip(done, generated, strict=True):
                region = paste_region(label, cast.order[index])
                scene[region] = next(frames)[region]
            yield scene, label


class _closing:
    """Close a generator when the stack unwinds (an abandoned decoder keeps its file open otherwise)."""

    def __init__(self, gen: Iterator[np.ndarray]) -> None:
        self.gen = gen

    def __enter__(self) -> Iterator[np.ndarray]:
        return self.gen

    def __exit__(self, *exc: object) -> None:
        close = getattr(self.gen, "close", None)
        if close is not None:
            close()


def write_pass_materials(cast: CastFolder, passes: Path, index: int) -> Path:
    """Pass ``index``'s one-character replace materials (reused when already complete)."""
    from wanimate.paths import temp_sibling
    from wanimate.workdir import MATERIALS_LAYOUT, remove_tree_if_owned

    person = cast.order[index]
    folder = pass_dir(passes, index, person) / "materials"
    if (folder / "meta.json").is_file():
        return folder
    arrays = cast.arrays()
    row = arrays.index(person)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = temp_sibling(folder)
    remove_tree_if_owned(staging, MATERIALS_LAYOUT)  # left by a killed run
    remove_tree_if_owned(folder, MATERIALS_LAYOUT)  # incomplete (no meta.json)
    staging.mkdir()
    try:
        shutil.copyfile(cast.root / ref_file(person), staging / MATERIAL_FILES["ref"])
        shutil.copyfile(cast.root / face_file(person), staging / MATERIAL_FILES["face"])
        with ExitStack() as stack:
            videos = {
                name: stack.enter_context(
                    VideoWriter(staging / MATERIAL_FILES[name], cast.fps, lossless=name == "mask")
                )
                for name in ("pose", "bg", "mask")
            }
            for t, (scene, labels) in enumerate(composite_scenes(cast, passes, list(range(index)))):
                mask = model_mask(labels, person)
                videos["pose"].write(draw_skeleton(arrays.driving[row, t], cast.height, cast.width))
                videos["bg"].write(cv2.bitwise_and(scene, scene, mask=(~mask).view(np.uint8)))
                videos["mask"].write(cv2.cvtColor(mask.astype(np.uint8) * 255, cv2.COLOR_GRAY2RGB))
        np.savez(
            staging / KEYPOINTS_NAME,
            driving=arrays.driving[row],
            reference=arrays.reference[row],
            detected=arrays.present[row],
        )
        meta = MaterialsMeta(
            mode="replace",
            fps=cast.fps,
            width=cast.width,
            height=cast.height,
            num_frames=cast.num_frames,
            provenance={"tool": "wanimate cast replace", "pass": index + 1, "person": person, "cast": str(cast.root)},
        )
        write_meta(staging, meta)
        staging.replace(folder)
    except BaseException:
        remove_tree_if_owned(staging, MATERIALS_LAYOUT)
        raise
    return folder


def _local(weights: str) -> Path | None:
    path = Path(weights).expanduser()
    return path if not weights.startswith("random:") and path.exists() else None


def generate_cast_replace(
    cast: CastFolder | str | Path,
    output: str | Path,
    *,
    settings: GenerateSettings | None = None,
    session: ModelSession | None = None,
    model: LoadedModel | None = None,
    work_dir: str | Path | None = None,
    resume: bool = True,
    keep_work: bool = False,
    overwrite: bool = False,
    progress: ProgressCallback | None = None,
    on_pass: Any = None,
) -> Path:
    """Run every pass (resuming where a killed run stopped), then write the final video to ``output``.

    The passes live in ``work_dir`` (default ``<output stem>.work``, a marked work folder: only
    wanimate's own files in it are ever deleted); they are removed after the video is written unless
    ``keep_work``. Every path is checked before any pass starts. ``on_pass(index, count, person)`` is
    told when each pass starts (finished passes are skipped silently). Every pass runs on one model
    session (``session``, or one around an already loaded ``model``, or one loaded for the first pass
    that needs it), so the weights load once.
    """
    from wanimate.devices import check_device
    from wanimate.generate.pipeline import generate
    from wanimate.models.limits import known_limits
    from wanimate.paths import check_apart, os_faults, output_file
    from wanimate.video import audio_to_carry
    from wanimate.workdir import PASSES, PASSES_LAYOUT, WorkDir, default_work_dir, remove_tree_if_owned

    cast = cast if isinstance(cast, CastFolder) else load_cast(cast)
    if cast.mode != "replace":
        raise WanimateError(f"{cast.root} is an animate-mode cast; it is generated with MultiAnimate")
    from wanimate.generate.runtime import session_for
    from wanimate.models.session import ModelSession

    settings = settings or GenerateSettings()
    check_device(settings.device)
    if session is None and model is not None:
        session = ModelSession.wrap(
            model, dtype=settings.dtype, device=settings.resolved_device(), weights=settings.weights
        )
    weights = settings.weights
    output = output_file(output, "-o", overwrite=overwrite)
    work = WorkDir(work_dir if work_dir else default_work_dir(output), explicit=work_dir is not None)
    source_audio = audio_to_carry(cast.audio) if settings.audio else None
    check_apart(
        {
            "cast folder": cast.root,
            "driving video (its audio)": Path(source_audio.path) if source_audio else None,
            "--weights": _local(weights) if session is None else None,
        },
        {"-o": output, "the work folder": work.path / PASSES},
    )
    limits = known_limits(weights) if session is None else None
    if limits is not None:
        limits.check(cast.width, cast.height, settings.segment_frames)
    with os_faults(), work:
        passes = work.child(PASSES)
        if not resume:
            remove_tree_if_owned(passes, PASSES_LAYOUT)
        passes.mkdir(exist_ok=True)
        for index, person in enumerate(cast.order):
            folder = pass_dir(passes, index, person)
            if (folder / GENERATED).is_file():
                continue
            if on_pass is not None:
                on_pass(index, len(cast.order), person)
            materials = write_pass_materials(cast, passes, index)
            session = session or session_for(settings)
            generate(
                materials,
                folder / GENERATED,
                settings,
                session=session,
                work_dir=work.path,  # the segments of the pass in progress; another pass's are discarded
                resume=resume,
                audio=False,
                progress=progress,
            )
        notify = progress or (lambda event: None)
        notify(ProgressEvent("write", num_segments=0))
        with VideoWriter(output, cast.fps, audio=source_audio) as writer:
            for scene, _ in composite_scenes(cast, passes, list(range(len(cast.order)))):
                writer.write(scene)
        if not keep_work:
            remove_tree_if_owned(passes, PASSES_LAYOUT)
    return output
