"""avkd.media.faces: detectors by name, box filling/smoothing logic, boxes files, and the 96x96 crops."""

from __future__ import annotations

import os
import pickle
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from avkd.core.errors import MediaError, UsageError
from avkd.media import faces
from avkd.media.faces import build_detector, crop_faces


def blank(n: int = 10, height: int = 160, width: int = 160) -> np.ndarray:
    return np.zeros((n, height, width, 3), np.uint8)


# ---------------------------------------------------------------------------------------------------------------
# fixed


def test_fixed_default_is_lrs2_pixels() -> None:
    boxes = build_detector("fixed").boxes(blank(3), "main/spk/00001")
    assert boxes.dtype == np.int32 and boxes.shape == (3, 4)
    assert boxes.tolist() == [[30, 20, 130, 140]] * 3  # DEFAULT_FIXED_BOX of a 160x160 LRS2 frame


def test_fixed_fractions_scale_with_frame_and_pixels_do_not() -> None:
    frames = blank(2, height=240, width=320)
    frac = build_detector("fixed", box=(0.25, 0.5, 0.75, 1.0)).boxes(frames, "k")
    assert frac[0].tolist() == [80, 120, 240, 240]
    pix = build_detector("fixed", box=(30, 20, 130, 140)).boxes(frames, "k")
    assert pix[0].tolist() == [30, 20, 130, 140]
    clipped = build_detector("fixed", box=(300, 200, 400, 300)).boxes(frames, "k")
    assert clipped[0].tolist() == [300, 200, 320, 240]
    with pytest.raises(MediaError, match="outside"):
        build_detector("fixed", box=(400, 10, 500, 100)).boxes(frames, "k")


@pytest.mark.parametrize("box", [(0.5, 0.1, 0.4, 0.9), (1, 2, 3), "abc", (-1, 0, 10, 10)])
def test_fixed_bad_box(box) -> None:
    with pytest.raises(UsageError, match="fixed detector"):
        build_detector("fixed", box=box)


def test_registry_errors() -> None:
    with pytest.raises(UsageError, match="fixed, haar, boxes"):
        build_detector("s3fd")
    with pytest.raises(UsageError, match=r"unexpected keyword argument 'detect_every'.*takes box"):
        build_detector("fixed", detect_every=2)


# ---------------------------------------------------------------------------------------------------------------
# crops


def test_crop_shape_and_square_position() -> None:
    frames = blank(2)
    frames[:, 50:90, 60:100] = (255, 0, 0)  # a red square inside the box
    boxes = np.array([[40, 20, 120, 140]] * 2)  # 80 wide, 120 tall: not square, resized like Wav2Lip/VocaLiST
    crops = crop_faces(frames, boxes, size=96)
    assert crops.shape == (2, 96, 96, 3) and crops.dtype == np.uint8
    # x: (60-40)*96/80 = 24 .. (100-40)*96/80 = 72; y: (50-20)*96/120 = 24 .. (90-20)*96/120 = 56
    assert (crops[0, 26:54, 26:70] == (255, 0, 0)).all()
    assert (crops[0, :22] == 0).all() and (crops[0, 58:] == 0).all()
    assert (crops[0, :, :22] == 0).all() and (crops[0, :, 74:] == 0).all()
    expected = cv2.resize(frames[0, 20:140, 40:120], (96, 96), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_array_equal(crops[0], expected)


def test_crop_clips_box_to_frame() -> None:
    frames = blank(1)
    frames[0, :80, :80] = 200
    crops = crop_faces(frames, np.array([[-80, -80, 80, 80]]), size=32)  # clipped to 0..80
    assert (crops == 200).all()
    with pytest.raises(MediaError, match=r"frame 0: box .* outside the 160x160 frame"):
        crop_faces(frames, np.array([[170, 0, 200, 50]]))
    with pytest.raises(ValueError):
        crop_faces(frames, np.array([[0, 0, 10, 10], [0, 0, 10, 10]]))


# ---------------------------------------------------------------------------------------------------------------
# haar (the logic, with a fake cascade: OpenCV ships no face photo, and OpenCV 5 wheels no cascade at all)


class FakeCascade:
    """Reads the frame index from pixel (0, 0) and returns the boxes listed for that index (x, y, w, h)."""

    def __init__(self, table: dict[int, list[tuple[int, int, int, int]]]) -> None:
        self.table = table
        self.calls: list[int] = []
        self.shapes: list[tuple[int, int]] = []
        self.min_sizes: list[tuple[int, int]] = []

    def detectMultiScale(self, gray, scaleFactor, minNeighbors, minSize):
        index = int(gray[0, 0])
        self.calls.append(index)
        self.shapes.append(gray.shape)
        self.min_sizes.append(minSize)
        found = self.table.get(index, [])
        return np.array(found, dtype=np.int32).reshape(-1, 4) if found else ()

    def empty(self) -> bool:
        return False


def indexed_frames(n: int, height: int = 160, width: int = 160) -> np.ndarray:
    frames = blank(n, height, width)
    frames[:, 0, 0] = np.arange(n)[:, None]  # grey level = frame index
    return frames


@pytest.fixture
def fake_haar(monkeypatch: pytest.MonkeyPatch):
    def install(table: dict[int, list[tuple[int, int, int, int]]], **options):
        cascade = FakeCascade(table)
        monkeypatch.setattr(faces, "_load_cascade", lambda path: cascade)
        options.setdefault("smoothing", 0)
        options.setdefault("expand", 0.0)
        return build_detector("haar", **options), cascade

    return install


def test_haar_holds_last_good_box_and_back_fills_first(fake_haar) -> None:
    table = {i: [(10 + i, 20, 60, 60)] for i in (4, 5, 6, 12)}
    detector, cascade = fake_haar(table, detect_every=1)
    boxes = detector.boxes(indexed_frames(16), "main/spk/00001")
    assert cascade.calls == list(range(16))
    x0 = boxes[:, 0].tolist()
    assert x0 == [14, 14, 14, 14, 14, 15, 16, 16, 16, 16, 16, 16, 22, 22, 22, 22]
    assert boxes[5].tolist() == [15, 20, 75, 80]  # (x, y, w, h) -> (x0, y0, x1, y1)


def test_haar_picks_largest_face(fake_haar) -> None:
    detector, _ = fake_haar({0: [(0, 0, 20, 20), (50, 50, 80, 70), (100, 100, 30, 30)]}, detect_every=1)
    assert detector.boxes(indexed_frames(1), "k")[0].tolist() == [50, 50, 130, 120]


def test_haar_detect_every_interpolates_between_detections(fake_haar) -> None:
    # detections on frames 0, 2, 4, 8, 9 (the last frame is always tried); frame 6 is tried and fails
    table = {i: [(10 * i, 0, 40, 40)] for i in (0, 2, 4, 8, 9)}
    detector, cascade = fake_haar(table, detect_every=2)
    boxes = detector.boxes(indexed_frames(10), "k")
    assert cascade.calls == [0, 2, 4, 6, 8, 9]
    assert boxes[:, 0].tolist() == [0, 10, 20, 30, 40, 40, 40, 40, 80, 90]


def test_haar_no_face_raises(fake_haar) -> None:
    detector, _ = fake_haar({}, detect_every=3)
    with pytest.raises(MediaError, match=r"^main/spk/00002: no face found by the haar detector in 7 frames$"):
        detector.boxes(indexed_frames(7), "main/spk/00002")


def test_haar_smoothing_and_expand(fake_haar) -> None:
    table = {i: [(40, 40, 60, 60)] for i in range(9)}
    table[4] = [(52, 40, 60, 60)]  # one jumpy detection
    raw, _ = fake_haar(table, detect_every=1, smoothing=0)
    smooth, _ = fake_haar(table, detect_every=1, smoothing=2)
    frames = indexed_frames(9)
    assert raw.boxes(frames, "k")[4, 0] == 52
    assert smooth.boxes(frames, "k")[4, 0] == 42  # mean centre over ±2 detections: 40 + 12/5
    grown, _ = fake_haar({0: [(40, 40, 60, 60)]}, detect_every=1, expand=(0.0, 0.0, 0.0, 0.1))
    assert grown.boxes(indexed_frames(1), "k")[0].tolist() == [40, 40, 100, 106]
    wide, _ = fake_haar({0: [(40, 40, 60, 60)]}, detect_every=1, expand=0.5)
    assert wide.boxes(indexed_frames(1), "k")[0].tolist() == [10, 10, 130, 130]
    clipped, _ = fake_haar({0: [(120, 120, 60, 60)]}, detect_every=1)
    assert clipped.boxes(indexed_frames(1), "k")[0].tolist() == [120, 120, 160, 160]


def test_haar_downscales_large_frames(fake_haar) -> None:
    detector, cascade = fake_haar({0: [(50, 40, 100, 100)]}, detect_every=1, max_size=320, min_size_frac=0.3)
    boxes = detector.boxes(indexed_frames(1, height=480, width=640), "k")
    assert cascade.shapes == [(240, 320)]
    assert cascade.min_sizes == [(72, 72)]  # 0.3 of the detection image's shorter side
    assert boxes[0].tolist() == [100, 80, 300, 280]


def test_haar_defaults_and_pickling(fake_haar) -> None:
    table = {i: [(10 * i, 2, 30, 30)] for i in range(5)}
    detector, cascade = fake_haar(table, smoothing=0, expand=(0.0, 0.0, 0.0, 0.1))
    boxes = detector.boxes(indexed_frames(5), "k")
    assert cascade.calls == [0, 2, 4]  # by default every second frame is tried (and the last)
    assert boxes[:, 0].tolist() == [0, 10, 20, 30, 40]  # frames 1 and 3 interpolated
    assert boxes[0].tolist() == [0, 2, 30, 35]  # expand=(0, 0, 0, 0.1): the bottom grows by 0.1 of 30 px
    clone = pickle.loads(pickle.dumps(detector))
    assert clone._cascade is None and clone == detector  # the cascade is not pickled, the settings are
    np.testing.assert_array_equal(clone.boxes(indexed_frames(5), "k"), boxes)


@pytest.mark.parametrize(
    "options",
    [
        {"detect_every": 0},
        {"scale_factor": 1.0},
        {"min_size_frac": 1.5},
        {"smoothing": -1},
        {"expand": (1, 2)},
    ],
)
def test_haar_bad_options(fake_haar, options) -> None:
    with pytest.raises(UsageError, match="haar detector"):
        fake_haar({}, **options)


def _real_cascade_available() -> bool:
    return hasattr(cv2, "CascadeClassifier") and os.path.isfile(faces._default_cascade_path())


@pytest.mark.skipif(_real_cascade_available(), reason="this OpenCV has the frontal-face cascade")
def test_haar_unavailable_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="opencv-python-headless<5"):
        build_detector("haar")


@pytest.mark.skipif(not _real_cascade_available(), reason="this OpenCV ships no Haar cascade (OpenCV 5)")
def test_haar_finds_a_real_face() -> None:
    matplotlib = pytest.importorskip("matplotlib")
    photo = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    if not photo.is_file():
        pytest.skip("matplotlib's sample portrait is not installed")
    image = cv2.imread(str(photo))[:, :, ::-1]
    # an LRS2-like framing: 160x160, face-centred, the face about 100 px wide
    frame = cv2.resize(np.ascontiguousarray(image[50:405, 88:443]), (160, 160), interpolation=cv2.INTER_AREA)
    frames = np.stack([np.roll(frame, shift, axis=1) for shift in (0, 1, 2, 3, 4, 5)])
    boxes = build_detector("haar").boxes(frames, "k")
    x0, y0, x1, y1 = boxes[0]
    fx0, fy0, fx1, fy1 = 30, 20, 130, 140  # the default fixed box
    inter = max(0, min(x1, fx1) - max(x0, fx0)) * max(0, min(y1, fy1) - max(y0, fy0))
    union = (x1 - x0) * (y1 - y0) + (fx1 - fx0) * (fy1 - fy0) - inter
    assert inter / union > 0.7


# ---------------------------------------------------------------------------------------------------------------
# boxes file


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_boxes_file_nearest_frame_fill(tmp_path: Path) -> None:
    path = write(
        tmp_path / "boxes.csv",
        "key,frame,x0,y0,x1,y1\n"
        "main/6330311066473698535/00011,2,10,10,50,50\n"
        "main/6330311066473698535/00011, 6, 20, 10, 60, 50\n"
        "# a comment\n\n"
        "main/6330311066473698535/00011,9,30.4,10,70.6,50\n"
        "pretrain/1/00001,0,0,0,8,8\n",
    )
    detector = build_detector("boxes", path=str(path))
    boxes = detector.boxes(blank(12), "main/6330311066473698535/00011")
    assert boxes.dtype == np.int32 and boxes.shape == (12, 4)
    # frame 4 is equally far from 2 and 6: the earlier wins; frames past the last listed hold it
    assert boxes[:, 0].tolist() == [10, 10, 10, 10, 10, 20, 20, 20, 30, 30, 30, 30]
    assert boxes[9].tolist() == [30, 10, 71, 50]
    assert detector.boxes(blank(2), "pretrain/1/00001").tolist() == [[0, 0, 8, 8]] * 2


def test_boxes_file_whitespace_separated(tmp_path: Path) -> None:
    path = write(tmp_path / "boxes.txt", "key frame x0 y0 x1 y1\nclip/a 0 1 2 3 4\nclip/a\t1\t5 6 7 8\n")
    boxes = build_detector("boxes", path=path).boxes(blank(3), "clip/a")
    assert boxes.tolist() == [[1, 2, 3, 4], [5, 6, 7, 8], [5, 6, 7, 8]]


def test_boxes_file_missing_key(tmp_path: Path) -> None:
    path = write(tmp_path / "boxes.csv", "key,frame,x0,y0,x1,y1\na,0,0,0,5,5\n")
    with pytest.raises(MediaError, match=f"^main/x/00001: no boxes in {re.escape(str(path))}$"):
        build_detector("boxes", path=path).boxes(blank(2), "main/x/00001")


@pytest.mark.parametrize(
    ("text", "lineno", "reason"),
    [
        ("key,frame,x0,y0,x1,y1\na,0,0,0,5\n", 2, "expected 6 fields"),
        ("key,frame,x0,y0,x1,y1\na,0,0,0,5,5\na,one,0,0,5,5\n", 3, "frame must be an integer"),
        ("key,frame,x0,y0,x1,y1\na,-1,0,0,5,5\n", 2, "frame must be >= 0"),
        ("key,frame,x0,y0,x1,y1\na,0,0,0,x,5\n", 2, "coordinates must be numbers"),
        ("key,frame,x0,y0,x1,y1\n\na,0,9,0,5,5\n", 3, "x0 < x1"),
        ("key,frame,x0,y0,x1,y1\na,0,0,0,5,5\na,0,1,1,6,6\n", 3, "duplicate box for a frame 0"),
        ("clip,frame,left,top,right,bottom\n", 1, "header"),
        ("a,0,0,0,5,5\n", 1, "header"),
        ("", 1, "empty boxes file"),
    ],
)
def test_boxes_file_malformed(tmp_path: Path, text: str, lineno: int, reason: str) -> None:
    path = write(tmp_path / "boxes.csv", text)
    detector = build_detector("boxes", path=path)
    with pytest.raises(UsageError, match=f"^{re.escape(str(path))}:{lineno}: .*{reason}"):
        detector.boxes(blank(2), "a")


def test_boxes_file_parsed_once_and_not_pickled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "boxes.csv", "key,frame,x0,y0,x1,y1\na,0,0,0,5,5\n")
    detector = build_detector("boxes", path=path)
    calls = []
    real = faces._parse_boxes_file
    monkeypatch.setattr(faces, "_parse_boxes_file", lambda p: calls.append(p) or real(p))
    detector.boxes(blank(1), "a")
    detector.boxes(blank(1), "a")
    assert len(calls) == 1
    clone = pickle.loads(pickle.dumps(detector))
    assert clone._table is None
    assert clone.boxes(blank(1), "a").tolist() == [[0, 0, 5, 5]]


def test_boxes_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="boxes file not found"):
        build_detector("boxes", path=tmp_path / "nope.csv")
    with pytest.raises(UsageError, match="path=FILE is required"):
        build_detector("boxes")
