"""Whole-body pose backends (COCO-WholeBody-133) behind one small interface."""

from wanimate.preprocess.pose.base import PersonPose, PoseBackend
from wanimate.preprocess.pose.factory import BACKENDS, make_backend

__all__ = ["BACKENDS", "PersonPose", "PoseBackend", "make_backend"]
