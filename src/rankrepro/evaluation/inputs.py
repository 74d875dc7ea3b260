"""Loading and checking ground-truth and detection files, with errors that name the file.

pycocotools and lvis assume well-formed input: they fail deep inside (KeyError,
TypeError, assertion errors) or, worse, give a silently wrong AP (a duplicate annotation
id replaces an object, a NaN area drops it from every area range, an RLE of another size
or with broken counts is compared pixel-wise all the same, a 4-number polygon is read as
a box).  Every field they read is checked here first and reported as
``EvaluationInputError: <file>: <problem>``:

* images: an integer ``id``, unique; for ``segm`` a positive integer ``height`` and
  ``width`` (polygons and uncompressed RLE are rasterised at that size; RLEs must have
  it); LVIS: ``neg_category_ids`` and ``not_exhaustive_category_ids``, lists of known
  category ids, and no category both negative and annotated in the same image.
* categories: an integer ``id``, unique; a non-empty ``name``, unique (per-class results
  are keyed by it); LVIS: ``frequency`` 'r', 'c' or 'f'.
* annotations: ``id`` a positive integer (0 means "unmatched" to both evaluators), unique;
  ``image_id`` / ``category_id`` known; ``area`` a finite number >= 0 (LVIS: > 0, lvis
  drops area-0 annotations); COCO: ``iscrowd`` 0 or 1; LVIS: ``ignore``, if given, 0 or 1;
  ``bbox`` (for bbox) four finite numbers with width, height >= 0; ``segmentation`` (for
  segm) polygons (lists of >= 6 finite coordinates, an even number) or an RLE of the
  image's size whose counts (a list, or a compressed string) cover height x width pixels.
* detections: a list of objects with an integer ``image_id`` and ``category_id`` known to
  the ground truth, a finite ``score``, and a ``bbox`` (as above) or a ``segmentation``
  (as above).  They are handed on as new objects with only these keys, and segm
  polygons / uncompressed RLE compressed (pycocotools' ``loadRes`` takes only compressed
  RLE, and picks its reading of every detection from the keys of the first one).
"""
from __future__ import annotations

import contextlib
import io
import json
import math
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from ..errors import RankReproError

IOU_TYPES = ("bbox", "segm")
DATASETS = ("coco", "lvis")


class EvaluationInputError(RankReproError):
    """A ground-truth or detection file that cannot be evaluated; the message says why (a
    :class:`~rankrepro.errors.RankReproError`, so every subcommand reports it cleanly)."""


def load_json(path: str | Path, what: str):
    path = Path(path)
    if not path.exists():
        raise EvaluationInputError(f"{path}: {what} file does not exist")
    if not path.is_file():
        raise EvaluationInputError(f"{path}: {what} path is not a file")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise EvaluationInputError(f"{path}: {what} file is not valid JSON ({err})") from None
    except RecursionError:
        raise EvaluationInputError(f"{path}: {what} file is not valid JSON (nested too deeply)") from None
    except OSError as err:
        raise EvaluationInputError(f"{path}: cannot read the {what} file ({err.strerror or err})") from None


def _examples(values, limit=5) -> str:
    values = list(values)
    shown = ", ".join(str(v) for v in values[:limit])
    return shown + (f", ... ({len(values)} in all)" if len(values) > limit else "")


def _require(path, bad, problem: str) -> None:
    """Raise ``<path>: <problem> <examples of bad>`` when ``bad`` is not empty."""
    if bad:
        raise EvaluationInputError(f"{path}: {problem} {_examples(bad)}")


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _finite_number(x) -> bool:
    """A JSON number that pycocotools can take as a double (not NaN, not infinite; an integer
    literal too large for a double would make ``math.isfinite`` itself fail)."""
    if isinstance(x, float):
        return math.isfinite(x)
    return isinstance(x, int) and not isinstance(x, bool) and -_DOUBLE_MAX < x < _DOUBLE_MAX


_DOUBLE_MAX = 1.7976931348623157e308


def _flag(x) -> bool:
    """0 or 1 (JSON false / true too)."""
    return type(x) in (int, bool) and x in (0, 1)


def _distinct(values) -> list:
    """Values without repeats, in order (unhashable JSON values too)."""
    seen, result = set(), []
    for v in values:
        key = repr(v)
        if key not in seen:
            seen.add(key)
            result.append(v)
    return result


def _duplicates(values) -> list:
    return [v for v, n in Counter(values).items() if n > 1]


def _bad_boxes(entries) -> list:
    """Indices of entries whose ``bbox`` is not [x, y, w, h] with finite values, w, h >= 0."""
    bad = []
    for i, entry in enumerate(entries):
        box = entry.get("bbox")
        if not (isinstance(box, list) and len(box) == 4 and all(_finite_number(v) for v in box) and box[2] >= 0 and box[3] >= 0):
            bad.append(i)
    return bad


# --- masks -----------------------------------------------------------------------------

_BAD_POLYGON = "polygons that are not non-empty lists of at least 6 finite coordinates, an even number,"
_BAD_RLE_SIZE = "an RLE 'size' that is not the image's [height, width]:"
_BAD_RLE_COUNTS = "RLE 'counts' that are not a string or a list of non-negative integers:"
_BAD_RLE_PIXELS = "RLE counts that do not cover height x width pixels:"
_NO_SEGMENTATION = "no 'segmentation' (an RLE or polygons):"


def _valid_polygon(poly) -> bool:
    # pycocotools' frPyObjects reads a first part of exactly 4 numbers as a box, not a polygon
    return isinstance(poly, list) and len(poly) >= 6 and len(poly) % 2 == 0 and all(_finite_number(v) for v in poly)


def compressed_rle_pixels(strings: list[str], chunk_chars: int = 1 << 22) -> np.ndarray:
    """Pixels covered by each COCO compressed RLE string (the sum of its run lengths), or -1
    where pycocotools' decoder (``rleFrString`` in ``maskApi.c``) would read garbage: a
    character outside '0'..'o', a number split over more than 6 characters (beyond the
    decoder's 32-bit arithmetic), a truncated last number, a negative run, or one of 2**32
    or more.  Vectorised over all strings (in chunks of ~``chunk_chars`` characters).

    The format: each run length is written as 5-bit groups, least significant first, in
    characters 48 + group (+ 32 when another group follows); the last group's bit 0x10 is
    the sign.  From the fourth run on, the value is a difference to the run two before.
    """
    result = np.full(len(strings), -1, dtype=np.int64)
    start = 0
    while start < len(strings):
        stop, chars = start, 0
        while stop < len(strings) and (stop == start or chars + len(strings[stop]) <= chunk_chars):
            chars += len(strings[stop])
            stop += 1
        result[start:stop] = _rle_pixels_chunk(strings[start:stop])
        start = stop
    return result


def _rle_pixels_chunk(strings: list[str]) -> np.ndarray:
    n = len(strings)
    result = np.full(n, -1, dtype=np.int64)
    encoded = []
    for text in strings:
        try:
            encoded.append(text.encode("ascii"))
        except UnicodeEncodeError:
            encoded.append(b"\x00")  # a character out of range: marks the string bad below
    lengths = np.fromiter((len(b) for b in encoded), dtype=np.int64, count=n)
    result[lengths == 0] = 0  # no runs at all
    keep = np.flatnonzero(lengths > 0)
    if keep.size == 0:
        return result
    # Characters of all non-empty strings, one after the other; strings are contiguous, so
    # "any per string" and "sum per string" are reductions between string starts.
    code = np.frombuffer(b"".join(encoded), dtype=np.uint8).astype(np.int16) - 48
    string_end = np.cumsum(lengths[keep])
    string_start = string_end - lengths[keep]
    last_char = string_end - 1
    bad = np.logical_or.reduceat((code < 0) | (code > 63), string_start)
    code = np.clip(code, 0, 63)
    ends = (code & 0x20) == 0  # no continuation: the last character of a number
    bad |= ~ends[last_char]  # the last number is cut short
    ends[last_char] = True  # numbers never run across strings
    number_start = np.flatnonzero(np.r_[True, ends[:-1]])
    number_len = np.diff(np.r_[number_start, code.size])
    first_number = np.searchsorted(number_start, string_start)  # of each string
    numbers = np.diff(np.r_[first_number, number_start.size])  # per string
    # more than 6 characters overflow the decoder's 32-bit shifts
    bad |= np.logical_or.reduceat(number_len > 6, first_number)
    position = np.arange(code.size, dtype=np.int32) - np.repeat(number_start.astype(np.int32), number_len)
    shift = 5 * np.minimum(position, 5).astype(np.int64)
    values = np.add.reduceat((code & 0x1F).astype(np.int64) << shift, number_start)
    negative = (code[number_start + number_len - 1] & 0x10) != 0  # sign bit of the last group
    values[negative] -= np.int64(1) << (5 * np.minimum(number_len[negative], 6))
    # run m = value m + run m-2 for m > 2: runs 1, 3, 5, ... and runs 2, 4, 6, ... of a
    # string are running sums of its values (run 0 stands alone): global running sums of
    # each kind, minus their value before the string
    m = np.arange(number_start.size) - np.repeat(first_number, numbers)
    odd = (m & 1) == 1
    sums = []
    for kind in (odd, ~odd):  # run 0 is counted with the even ones and subtracted below
        total = np.cumsum(np.where(kind, values, 0))
        before = np.where(first_number > 0, total[first_number - 1], 0)  # before each string
        sums.append(total - np.repeat(before, numbers))
    first_value = np.repeat(values[first_number], numbers)
    runs = np.where(odd, sums[0], np.where(m > 0, sums[1] - first_value, values))
    bad |= np.logical_or.reduceat((runs < 0) | (runs >= 1 << 32), first_number)
    sums = np.add.reduceat(runs, first_number)
    result[keep] = np.where(bad, -1, sums)
    return result


def _segmentation_problems(entries, image_sizes) -> dict[str, list[int]]:
    """Indices of the entries whose 'segmentation' is malformed, by problem."""
    problems = defaultdict(list)
    strings, string_owner, string_pixels = [], [], []
    for i, entry in enumerate(entries):
        seg = entry.get("segmentation")
        height, width = image_sizes[entry["image_id"]]
        if isinstance(seg, list):
            if not seg or not all(_valid_polygon(p) for p in seg):
                problems[_BAD_POLYGON].append(i)
        elif isinstance(seg, dict) and "counts" in seg and "size" in seg:
            counts = seg["counts"]
            if seg["size"] != [height, width] or not all(_is_int(v) for v in seg["size"]):
                problems[_BAD_RLE_SIZE].append(i)
            elif isinstance(counts, str):
                strings.append(counts)
                string_owner.append(i)
                string_pixels.append(height * width)
            elif not (isinstance(counts, list) and all(_is_int(c) and c >= 0 for c in counts)):
                problems[_BAD_RLE_COUNTS].append(i)
            elif sum(counts) != height * width:
                problems[_BAD_RLE_PIXELS].append(i)
        else:
            problems[_NO_SEGMENTATION].append(i)
    if strings:
        pixels = compressed_rle_pixels(strings)
        problems[_BAD_RLE_PIXELS].extend(i for i, n, want in zip(string_owner, pixels.tolist(), string_pixels) if n != want)
        problems[_BAD_RLE_PIXELS].sort()
    return {k: v for k, v in problems.items() if v}


def _image_sizes(images) -> dict:
    return {img["id"]: (img.get("height"), img.get("width")) for img in images}


# --- ground truth ----------------------------------------------------------------------


def check_gt(data, path, dataset: str = "coco", iou_type: str = "bbox") -> None:
    """Every field of a COCO- or LVIS-format ground truth that pycocotools / lvis read."""
    if dataset not in DATASETS:
        raise EvaluationInputError(f"unknown dataset {dataset!r}; choose from {DATASETS}")
    if iou_type not in IOU_TYPES:
        raise EvaluationInputError(f"unknown iou type {iou_type!r}; choose from {IOU_TYPES}")
    if not isinstance(data, dict):
        raise EvaluationInputError(f"{path}: ground truth must be a JSON object with images, annotations, categories")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise EvaluationInputError(f"{path}: ground truth has no '{key}' list")
    images, annotations, categories = data["images"], data["annotations"], data["categories"]
    if not images:
        raise EvaluationInputError(f"{path}: ground truth has no images")
    if not categories:
        raise EvaluationInputError(f"{path}: ground truth has no categories")

    _require(path, [i for i, img in enumerate(images) if not (isinstance(img, dict) and _is_int(img.get("id")))],
             "every image needs an integer 'id': positions")
    _require(path, _duplicates(img["id"] for img in images), "duplicate image ids:")
    _require(path, [i for i, c in enumerate(categories) if not (isinstance(c, dict) and _is_int(c.get("id")))],
             "every category needs an integer 'id': positions")
    _require(path, _duplicates(c["id"] for c in categories), "duplicate category ids:")
    _require(path, [c["id"] for c in categories if not (isinstance(c.get("name"), str) and c["name"])],
             "every category needs a non-empty 'name': ids")
    _require(path, _duplicates(c["name"] for c in categories), "duplicate category names (per-class results are keyed by name):")
    image_ids = {img["id"] for img in images}
    cat_ids = {c["id"] for c in categories}

    _require(path, [i for i, a in enumerate(annotations) if not isinstance(a, dict) or not {"id", "image_id", "category_id"} <= a.keys()],
             "annotations without id/image_id/category_id at positions")
    # pycocotools and lvis record a match by the ground truth's id, with 0 meaning
    # "unmatched": an annotation with id 0 would silently count as missed.
    _require(path, [a["id"] for a in annotations if not (_is_int(a["id"]) and a["id"] > 0)], "annotation ids must be positive integers, got")
    # Both index annotations by id: a duplicate silently replaces the other object.
    _require(path, _duplicates(a["id"] for a in annotations), "duplicate annotation ids:")
    required = {"area", "iscrowd"} if dataset == "coco" else {"area"}
    _require(path, [a["id"] for a in annotations if not required <= a.keys()], f"annotations need {sorted(required)}: ids")
    _require(path, _distinct(a["image_id"] for a in annotations if not (_is_int(a["image_id"]) and a["image_id"] in image_ids)),
             "annotations refer to image ids not in 'images':")
    _require(path, _distinct(a["category_id"] for a in annotations if not (_is_int(a["category_id"]) and a["category_id"] in cat_ids)),
             "annotations refer to category ids not in 'categories':")
    if iou_type == "bbox":
        bad = _bad_boxes(annotations)
        _require(path, [annotations[i]["id"] for i in bad], "annotations with a missing, non-finite or negative-size bbox: ids")
    else:
        _require(path, [img["id"] for img in images if not all(_is_int(img.get(k)) and img[k] > 0 for k in ("height", "width"))],
                 "segm evaluation needs a positive integer 'height' and 'width' for every image: ids")
        for problem, bad in _segmentation_problems(annotations, _image_sizes(images)).items():
            _require(path, [annotations[i]["id"] for i in bad], f"annotations with {problem} ids")
    if dataset == "coco":
        _require(path, [a["id"] for a in annotations if not (_finite_number(a["area"]) and a["area"] >= 0)],
                 "annotations need a finite 'area' >= 0: ids")
        _require(path, [a["id"] for a in annotations if not _flag(a["iscrowd"])], "annotations need 'iscrowd' 0 or 1: ids")
    else:
        # lvis' get_ann_ids keeps only 0 < area < inf: an area-0 object would vanish silently
        _require(path, [a["id"] for a in annotations if not (_finite_number(a["area"]) and a["area"] > 0)],
                 "LVIS annotations need a finite 'area' > 0: ids")
        _require(path, [a["id"] for a in annotations if "ignore" in a and not _flag(a["ignore"])], "annotations with 'ignore' other than 0 or 1: ids")
    if dataset == "lvis":
        _check_lvis_fields(data, path, cat_ids)


def _check_lvis_fields(data, path, cat_ids) -> None:
    images = data["images"]
    keys = ("neg_category_ids", "not_exhaustive_category_ids")
    _require(path, [img["id"] for img in images if not set(keys) <= img.keys()], "LVIS images need neg_category_ids and not_exhaustive_category_ids: ids")
    for key in keys:
        _require(path, [img["id"] for img in images if not (isinstance(img[key], list) and all(_is_int(c) and c in cat_ids for c in img[key]))],
                 f"LVIS images whose {key} is not a list of known category ids: ids")
    _require(path, [c["id"] for c in data["categories"] if c.get("frequency") not in ("r", "c", "f")],
             "LVIS categories need a frequency of 'r', 'c' or 'f': ids")
    annotated = defaultdict(set)
    for a in data["annotations"]:
        annotated[a["image_id"]].add(a["category_id"])
    # a category verified absent cannot have objects: lvis would count them all the same
    _require(path, [img["id"] for img in images if annotated[img["id"]] & set(img["neg_category_ids"])],
             "LVIS images with annotations of a category in their neg_category_ids: ids")


def coco_from_dict(data) -> COCO:
    """A pycocotools COCO index over an in-memory dictionary, without its progress prints."""
    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def load_coco_gt(path, iou_type: str = "bbox") -> COCO:
    data = load_json(path, "ground-truth")
    check_gt(data, path, "coco", iou_type)
    return coco_from_dict(data)


# --- detections ------------------------------------------------------------------------


def check_detections(detections, path, image_ids, cat_ids, iou_type: str, image_sizes: dict | None = None) -> list[dict]:
    """Detections in the COCO results format, consistent with the ground truth.

    ``image_sizes`` ({image id: (height, width)}) is needed for segm.  Returns new objects
    with only image_id, category_id, score and bbox (bbox) or a compressed-RLE
    segmentation (segm): what pycocotools' / lvis' ``loadRes`` read, and nothing that
    would change how they read it (an extra 'bbox' would make the box, not the mask, give
    a segm detection's area, as mmdet and detectron2 also avoid).
    """
    if iou_type not in IOU_TYPES:
        raise EvaluationInputError(f"unknown iou type {iou_type!r}; choose from {IOU_TYPES}")
    if not isinstance(detections, list):
        raise EvaluationInputError(f"{path}: detections must be a JSON list in the COCO results format")
    image_ids, cat_ids = set(image_ids), set(cat_ids)
    if iou_type == "bbox":
        clean = _plain_bbox_detections(detections, image_ids, cat_ids)
        if clean is not None:
            return clean
    # the checks one by one, each with its message
    _require(path, [i for i, d in enumerate(detections) if not isinstance(d, dict) or not {"image_id", "category_id", "score"} <= d.keys()],
             "detections without image_id/category_id/score at positions")
    _require(path, _distinct(d["image_id"] for d in detections if not (_is_int(d["image_id"]) and d["image_id"] in image_ids)),
             "detections on image ids not in the ground truth:")
    _require(path, _distinct(d["category_id"] for d in detections if not (_is_int(d["category_id"]) and d["category_id"] in cat_ids)),
             "detections with category ids not in the ground truth:")
    _require(path, [i for i, d in enumerate(detections) if not _finite_number(d["score"])],
             "detections with a NaN, infinite or non-numeric score at positions")
    if iou_type == "bbox":
        _require(path, _bad_boxes(detections), "detections with a missing, non-finite or negative-size bbox at positions")
        return [{"image_id": d["image_id"], "category_id": d["category_id"], "bbox": d["bbox"], "score": d["score"]} for d in detections]
    if image_sizes is None:
        raise ValueError("check_detections needs image_sizes for segm")
    for problem, bad in _segmentation_problems(detections, image_sizes).items():
        _require(path, bad, f"segm detections with {problem} positions")
    return [
        {"image_id": d["image_id"], "category_id": d["category_id"], "segmentation": _compressed(d["segmentation"], image_sizes[d["image_id"]]),
         "score": d["score"]}
        for d in detections
    ]


def _plain_bbox_detections(detections, image_ids: set, cat_ids: set) -> list[dict] | None:
    """The bbox detections as :func:`check_detections` returns them, in one fast pass over
    plain JSON values; None at the first doubt (the checks then run one by one). Accepts
    nothing that those checks would refuse."""
    big = _DOUBLE_MAX
    clean = []
    append = clean.append
    for d in detections:
        if type(d) is not dict:
            return None
        i, c, s, b = d.get("image_id"), d.get("category_id"), d.get("score"), d.get("bbox")
        if not (type(i) is int and i in image_ids and type(c) is int and c in cat_ids and type(b) is list and len(b) == 4):
            return None
        for v in (s, *b):  # finite numbers: float x - x is 0 unless x is NaN or infinite
            t = type(v)
            if not ((t is float and v - v == 0.0) or (t is int and -big < v < big)):
                return None
        if b[2] < 0 or b[3] < 0:
            return None
        append({"image_id": i, "category_id": c, "bbox": b, "score": s})
    return clean


def _compressed(seg, size) -> dict:
    """A compressed RLE of a checked segmentation (polygons merged into one mask)."""
    if isinstance(seg, dict) and isinstance(seg["counts"], str):
        return seg
    height, width = size
    rle = mask_utils.frPyObjects(seg, height, width)
    return mask_utils.merge(rle) if isinstance(rle, list) else rle
