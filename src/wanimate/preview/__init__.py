"""The model-free CPU preview: a rigged cut-out of the character follows the driving skeleton."""

from wanimate.preview.renderer import CharacterRenderer, PoseTrack, render_frames, render_preview
from wanimate.preview.rig import Rig, build_rig

__all__ = ["CharacterRenderer", "PoseTrack", "Rig", "build_rig", "render_frames", "render_preview"]
