"""The vitpose backend's plumbing, on tiny ONNX stand-ins with the official models' names and shapes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from wanimate.errors import WanimateError
from wanimate.preprocess.pose import make_backend
from wanimate.preprocess.pose.vitpose_backend import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    box_center_scale,
    decode_detections,
    decode_heatmaps,
    pose_input,
)

FRAME_HW = (480, 800)
ZERO = np.float32(0)
HM_HW = (64, 48)


def _constant_model(path: Path, in_name: str, in_shape: list, out_name: str, value: np.ndarray) -> None:
    """A graph that ignores its input's values and returns ``value`` once per batch item.

    0 x the per-item mean of the input, shaped (N, 1, 1, ...), is added to ``value`` (1, ...), so a
    symbolic batch size ("N") gives N copies, as an exported model with a dynamic batch would.
    """
    axes = list(range(1, len(in_shape)))
    out_shape = [in_shape[0], *value.shape[1:]]
    nodes = [
        helper.make_node("ReduceMean", [in_name], ["m"], axes=axes, keepdims=1),
        helper.make_node("Mul", ["m", "zero"], ["z"]),
        helper.make_node("Reshape", ["z", "batch_shape"], ["zb"]),
        helper.make_node("Add", ["const", "zb"], [out_name]),
    ]
    graph = helper.make_graph(
        nodes,
        "stand_in",
        [helper.make_tensor_value_info(in_name, TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, out_shape)],
        [
            numpy_helper.from_array(value.astype(np.float32), "const"),
            numpy_helper.from_array(np.float32(0), "zero"),
            numpy_helper.from_array(np.array([-1] + [1] * (value.ndim - 1), np.int64), "batch_shape"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))


def _to_det(box: tuple, score: float, cls: int) -> list[float]:
    """A YOLOv10 row in 640x640 input pixels for a box given in frame pixels."""
    sx, sy = 640 / FRAME_HW[1], 640 / FRAME_HW[0]
    return [box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy, score, cls]


MAIN = (300.0, 60.0, 500.0, 420.0)
SIDE = (640.0, 150.0, 790.0, 470.0)  # near the corner: some points fall outside
PEAKS = np.stack([np.linspace(6.3, 41.7, 133), np.linspace(5.2, 58.6, 133)[::-1]], 1)  # heatmap px


def _heatmaps() -> np.ndarray:
    yy, xx = np.mgrid[0 : HM_HW[0], 0 : HM_HW[1]].astype(np.float64)
    hm = np.exp(-((xx[None] - PEAKS[:, :1, None]) ** 2 + (yy[None] - PEAKS[:, 1:, None]) ** 2) / (2 * 2.0**2))
    hm *= np.linspace(0.9, 0.6, 133)[:, None, None]
    return hm[None].astype(np.float32)


@pytest.fixture(scope="module", params=[1, "N"], ids=["fixed-batch", "dynamic-batch"])
def checkpoint(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ckpt") / "process_checkpoint"
    rows = np.zeros((300, 6), np.float32)
    rows[0] = _to_det(MAIN, 0.9, 0)
    rows[1] = _to_det(SIDE, 0.8, 0)
    rows[2] = _to_det((302, 62, 498, 418), 0.7, 0)  # duplicate of MAIN: NMS removes it
    rows[3] = _to_det((10, 10, 200, 200), 0.95, 2)  # a car
    rows[4] = _to_det((700, 300, 780, 470), 0.1, 0)  # clutter: above 0.05 but not a confident person
    _constant_model(root / "det" / "yolov10m.onnx", "images", [1, 3, 640, 640], "output0", rows[None])
    # the mmdeploy layout: a folder holding end2end.onnx
    pose = root / "pose2d" / "vitpose_h_wholebody.onnx" / "end2end.onnx"
    _constant_model(pose, "input", [request.param, 3, 256, 192], "output", _heatmaps())
    return root


def test_decoded_keypoints_land_where_the_heatmaps_peak(checkpoint: Path) -> None:
    backend = make_backend("vitpose", models_dir=checkpoint.parent)
    frame = np.zeros((*FRAME_HW, 3), np.uint8)
    people = backend.detect(frame)
    backend.close()
    assert [p.score for p in people] == pytest.approx([0.9, 0.8])
    for person, box in zip(people, (MAIN, SIDE), strict=True):
        np.testing.assert_allclose(person.bbox, box, atol=1.0)
        center, size = box_center_scale(np.array(box), (256, 192))
        px_per_cell = size / np.array([HM_HW[1], HM_HW[0]])
        expected = PEAKS * px_per_cell + center - size / 2
        inside = (expected[:, 0] < FRAME_HW[1] - 1) & (expected[:, 1] < FRAME_HW[0] - 1)
        err = np.abs(person.keypoints[inside, :2] - expected[inside]) / px_per_cell
        assert err.max() < 0.05, "sub-pixel DARK decoding lost precision"
        peak_values = _heatmaps()[0].reshape(133, -1).max(1)  # the score is the heatmap maximum
        np.testing.assert_allclose(person.keypoints[inside, 2], peak_values[inside], atol=1e-5)
        assert (person.keypoints[~inside, 2] == 0).all()  # beyond the frame border: missing
    assert (people[1].keypoints[:, 2] == 0).sum() > 10


def test_dark_decoding_beats_argmax() -> None:
    coords, maxvals = decode_heatmaps(_heatmaps())
    assert np.abs(coords[0] - PEAKS).max() < 0.02
    assert np.abs(np.round(PEAKS) - PEAKS).max() > 0.3  # the integer argmax alone would be this far off
    assert maxvals.shape == (1, 133)


def test_pose_input_is_rgb_imagenet_normalised_crop() -> None:
    frame = np.zeros((*FRAME_HW, 3), np.uint8)
    frame[..., 0] = 255  # pure red
    frame[:, :200] = 0
    blob, center, size = pose_input(frame, np.array(MAIN), (256, 192))
    assert blob.shape == (3, 256, 192)
    red = (1 - IMAGENET_MEAN[0]) / IMAGENET_STD[0]
    assert blob[0, 128, 96] == pytest.approx(red, abs=1e-4)
    assert blob[1, 128, 96] == pytest.approx(-IMAGENET_MEAN[1] / IMAGENET_STD[1], abs=1e-4)
    # the box is taller than 256:192, so the crop is 1.25 x its height, at the model's aspect
    assert size[1] == pytest.approx(1.25 * (MAIN[3] - MAIN[1]))
    assert size[0] / size[1] == pytest.approx(192 / 256)
    np.testing.assert_allclose(center, [400, 240])


def test_yolov8_layout_and_class_filter() -> None:
    out = np.zeros((1, 84, 3), np.float32)
    out[0, :4, 0] = [320, 320, 100, 200]  # person, centre/size in 640 px
    out[0, 4, 0] = 0.9
    out[0, :4, 1] = [100, 100, 50, 50]
    out[0, 4 + 5, 1] = 0.99  # a bus
    out[0, :4, 2] = [322, 321, 100, 200]
    out[0, 4, 2] = 0.5  # overlapping duplicate
    boxes, scores = decode_detections(out, (1280, 640), (640, 640), 0.05, 0.5)
    assert scores.tolist() == pytest.approx([0.9])
    np.testing.assert_allclose(boxes[0], [270 / 1, 220 * 2, 370, 420 * 2])


def test_missing_models_say_where_and_how(tmp_path: Path) -> None:
    with pytest.raises(WanimateError, match=r"det/yolov10m\.onnx.*huggingface-cli download"):
        make_backend("vitpose", models_dir=tmp_path)
    with pytest.raises(WanimateError, match="process_checkpoint"):
        make_backend("vitpose", models_dir=None)
    with pytest.raises(WanimateError, match="unknown pose backend"):
        make_backend("openpose")
