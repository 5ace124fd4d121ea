"""A cast: several character images played by several tracked performers, in both modes (docs/cast.md).

Animate mode composes one reference frame from the separate character images and runs MultiAnimate;
replace mode runs Wan2.2-Animate-14B once per cast person, each pass on the previous one's output.
The CPU preview renders either. Stages: the cast asked for (:mod:`~wanimate.cast.spec`), the
character cut-outs (:mod:`~wanimate.cast.characters`), the composed reference
(:mod:`~wanimate.cast.compose`), the tracking (:mod:`~wanimate.cast.track`), the cast folder
(:mod:`~wanimate.cast.build`, :mod:`~wanimate.cast.folder`), replace mode's passes
(:mod:`~wanimate.cast.replace`) and ``run --cast`` (:mod:`~wanimate.cast.run`, :mod:`~wanimate.cast.runner`).
"""

from wanimate.cast.folder import CastFolder, is_cast_folder, load_cast
from wanimate.cast.spec import MAX_CHARACTERS, CastMember, CastRequest, cast_request

__all__ = ["MAX_CHARACTERS", "CastFolder", "CastMember", "CastRequest", "cast_request", "is_cast_folder", "load_cast"]
