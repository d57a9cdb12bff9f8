"""Decode yolov8 detections (boxes, classes) from the raw output, to compare models by what they detect."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SCORE_THRESHOLD = 0.25
NMS_IOU = 0.45


@dataclass(frozen=True)
class Detection:
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in input pixels
    label: int
    score: float


def decode(output: np.ndarray, score_threshold: float = SCORE_THRESHOLD) -> list[Detection]:
    """Detections of one image from yolov8's [1, 4 + classes, anchors] output, after class-wise NMS."""
    predictions = output[0].T  # [anchors, 4 + classes]
    scores = predictions[:, 4:]
    labels = scores.argmax(axis=1)
    best = scores[np.arange(len(scores)), labels]
    keep = best >= score_threshold
    centers, labels, best = predictions[keep, :4], labels[keep], best[keep]
    boxes = np.concatenate([centers[:, :2] - centers[:, 2:] / 2, centers[:, :2] + centers[:, 2:] / 2], axis=1)
    detections = []
    for label in np.unique(labels):
        chosen = np.flatnonzero(labels == label)
        order = chosen[np.argsort(-best[chosen])]
        while order.size:
            top, order = order[0], order[1:]
            detections.append(Detection(tuple(float(v) for v in boxes[top]), int(label), float(best[top])))
            order = order[iou(boxes[top], boxes[order]) < NMS_IOU]
    return sorted(detections, key=lambda d: -d.score)


def iou(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    others = np.atleast_2d(others)
    top_left = np.maximum(box[:2], others[:, :2])
    bottom_right = np.minimum(box[2:], others[:, 2:])
    intersection = np.prod(np.clip(bottom_right - top_left, 0, None), axis=1)
    area = np.prod(box[2:] - box[:2])
    areas = np.prod(others[:, 2:] - others[:, :2], axis=1)
    return intersection / np.maximum(area + areas - intersection, 1e-9)


# A detection whose score sits within this of the threshold may fall either side of it after any change of
# arithmetic: it is matched against the other model's detections down to threshold - margin.
BORDERLINE_MARGIN = 0.1


def unmatched(reference: list[Detection], candidate: list[Detection], min_iou: float = 0.9,
              score_threshold: float = SCORE_THRESHOLD) -> list[Detection]:
    """Reference detections (score >= threshold) with no candidate detection of the same class at
    IoU >= min_iou; candidates are taken down to threshold - BORDERLINE_MARGIN (decode them that low)."""
    missing = []
    for detection in reference:
        if detection.score < score_threshold:
            continue
        same_class = [c.box for c in candidate if c.label == detection.label]
        if not same_class or iou(np.array(detection.box), np.array(same_class)).max() < min_iou:
            missing.append(detection)
    return missing


def compare_on_photos(reference_session, session, size: int = 320) -> tuple[list[float], list]:
    """Output cosine per sample photo, and the detections that either model has and the other lacks (a
    detection within BORDERLINE_MARGIN of the threshold may fall either side)."""
    from optimizer.benchmarks import zoo

    from optimizer.verify import cosine

    cosines, missing = [], []
    low = SCORE_THRESHOLD - BORDERLINE_MARGIN
    for photo in zoo.PHOTO_NAMES:
        sample = zoo.yolov8n_inputs(size, photo)
        reference, candidate = reference_session.run(sample)["output0"], session.run(sample)["output0"]
        cosines.append(cosine(reference, candidate))
        missing += unmatched(decode(reference), decode(candidate, low))
        missing += unmatched(decode(candidate), decode(reference, low))
    return cosines, missing
