"""The embedded default dataset: synthetic shapes in COCO detection + instance-segmentation format.

Why it exists
-------------
COCO, LVIS and Cityscapes cannot be downloaded in the environments this project is
checked in, so every stage that needs a dataset (training mmdet detectors with tiny
backbones on CPU, evaluation with pycocotools, the Snakemake workflow) runs by default
on this small, deterministic, generated dataset.  It is easy enough that a tiny CNN's
AP goes clearly up within a few hundred CPU iterations, and not trivial: textured,
noisy backgrounds with distractor strokes, colour jitter, rotations, sizes from
COCO-"small" to COCO-"large", occlusion, 1-6 objects per image and a long-tailed class
distribution.

What it is
----------
Images (default 200 train + 50 val, 128x128 BGR PNGs) show 1-6 filled shapes on a
smooth, low-saturation colour-noise background with a few thin random-coloured lines;
Gaussian pixel noise covers everything.  Each class has its own shape, hue and texture
(hue jittered, saturation and brightness varied per object):

==========  =======  ===========  ===========================
class       hue      texture      share of instances (r=0.6)
==========  =======  ===========  ===========================
circle      red      radial shade 42.0 %
square      blue     stripes      25.2 %
triangle    green    flat         15.1 %
ellipse     orange   gradient      9.1 %
ring        magenta  flat          5.4 %
cross       cyan     checker       3.3 %
==========  =======  ===========  ===========================

Class ``k`` (0-based, in :data:`CLASSES` order) is drawn with probability proportional
to ``imbalance ** k`` (a geometric long tail: 12.9x between the most and the least
frequent class at the default ``imbalance=0.6``); every split gets at least
``min_instances_per_class`` planned instances of each class (so every class is in val).
Object sizes are drawn per COCO area range: 35 % small (mask area < 32**2), 50 % medium,
15 % large (> 96**2 pixels target area; the shapes that do not fit a 128x128 image
shrink into medium).  Objects are painted back to front, largest first; a placement that
would leave an earlier object with less than ``min_visible_fraction`` of its area or
less than ``min_visible_area`` pixels visible is retried elsewhere (and the object is
left out after ``40`` failed tries).

Annotations are standard COCO: ``images`` (id, file_name, width, height),
``annotations`` (id, image_id, category_id 1..6, bbox ``[x, y, w, h]`` of the visible
mask, ``area`` = visible mask pixels, ``iscrowd`` 0, ``segmentation`` = polygons) and
``categories``.  Masks are the *visible* pixels; the polygons come from
``cv2.findContours`` on the mask upsampled 3x, with holes (rings, occluders inside an
object) joined to their outer contour by a zero-width "keyhole" bridge, so that
pycocotools' (even-odd) polygon rasterisation reproduces the visible mask exactly.

Layout under ``root``::

    annotations/instances_train.json
    annotations/instances_val.json
    train/000001.png ...
    val/000001.png ...
    annotations/lvis_v1_{train,val}.json        # the same splits in the LVIS v1 format
    cityscapes/...                              # and in mmdet's Cityscapes layout
    manifest.json        # parameters, per-split counts, SHA-256 of every other file

The LVIS v1 and Cityscapes versions (:mod:`rankrepro.data.formats`: file layout, LVIS
frequency groups, the synthetic -> Cityscapes class mapping, ``*_gtFine_instanceIds.png``)
are functions of the COCO annotations and masks: adding them left the COCO files
byte-identical; the manifest lists them too (and describes them under ``formats``).

Every file is written atomically (temporary file beside it, then ``os.replace``).  A
marker file, ``.rankrepro-synthetic-incomplete`` (listing the files about to be written),
exists from before the first file is written until after the new manifest is, so a
partially generated dataset is reported by :func:`verify_synthetic_coco`.  The same
parameters give byte-identical files (with the same numpy/OpenCV build); another seed
gives other data.

Generation writes only into a new or empty folder or into one that holds a dataset
generated before (recognised by its manifest, by the marker of an interrupted generation
or by its annotation files, e.g. after a workflow deleted the manifest to re-run this
step); it never overwrites or deletes a file that it did not write: files of the
previous dataset that the new one does not have are deleted, anything else is left alone.
Any other folder is refused with :class:`~rankrepro.errors.RankReproError`.

Regenerate (a second or two)::

    python -c "from rankrepro.data import make_synthetic_coco as m; m('data/synthetic')"

and use it in mmdet configs with ``metainfo=rankrepro.data.metainfo()``,
``data_prefix=dict(img='train/')``, ``ann_file='annotations/instances_train.json'``.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
from pathlib import Path

import numpy as np

from ..atomic import write_atomic
from ..errors import RankReproError
from . import formats

#: Bump whenever a change to this module changes the generated bytes.
GENERATOR_VERSION = 1

#: Class names, most to least frequent; category ids are 1 + the index.
CLASSES = ("circle", "square", "triangle", "ellipse", "ring", "cross")

# OpenCV hue (0..179) and texture of each class.
_STYLE = {
    "circle": (0, "radial"),
    "square": (112, "stripes"),
    "triangle": (60, "flat"),
    "ellipse": (26, "gradient"),
    "ring": (150, "flat"),
    "cross": (90, "checker"),
}
# Smallest target area per class (pixels), so thin parts / the ring's hole stay visible.
_MIN_TARGET_AREA = {"circle": 48, "square": 48, "triangle": 56, "ellipse": 56, "ring": 110, "cross": 90}

# COCO area ranges (pixels): target-area tiers and their probabilities.
_TIERS = ((48.0, 32.0**2), (32.0**2, 96.0**2), (96.0**2, 128.0**2))
_TIER_P = (0.35, 0.50, 0.15)

_MAX_TRIES = 40
_UPSAMPLE = 3  # contour upsampling for exact polygons
_SPLITS = ("train", "val")
_MANIFEST = "manifest.json"
_MARKER = ".rankrepro-synthetic-incomplete"
_NAME = "rankrepro-synthetic-coco"
_DESCRIPTION = "rankrepro synthetic shapes"
_OWN_FILE = re.compile(
    r"^(?:(?:train|val)/\d{6}\.png|annotations/(?:instances|lvis_v1)_(?:train|val)\.json"
    r"|cityscapes/annotations/instancesonly_filtered_gtFine_(?:train|val)\.json"
    r"|cityscapes/(?:leftImg8bit|gtFine)/(?:train|val)/shapes/shapes_000000_\d{6}_(?:leftImg8bit|gtFine_instanceIds|gtFine_labelIds)\.png)$"
)


def class_frequencies(imbalance: float = 0.6) -> tuple[float, ...]:
    """Probability of each class in :data:`CLASSES` order: proportional to ``imbalance ** k``."""
    w = np.asarray([imbalance**k for k in range(len(CLASSES))], dtype=np.float64)
    return tuple(float(x) for x in w / w.sum())


def _hsv_to_rgb(h: float, s: float, v: float) -> tuple[int, int, int]:
    import cv2

    bgr = cv2.cvtColor(np.uint8([[[h, s, v]]]), cv2.COLOR_HSV2BGR)[0, 0]
    return int(bgr[2]), int(bgr[1]), int(bgr[0])


def metainfo() -> dict:
    """The mmdet ``metainfo`` for configs: class names and an RGB palette (each class's base colour)."""
    return {
        "classes": CLASSES,
        "palette": [_hsv_to_rgb(_STYLE[c][0], 230, 220) for c in CLASSES],
    }


# --------------------------------------------------------------------------- shapes


def _rotate(points: np.ndarray, theta: float) -> np.ndarray:
    c, s = math.cos(theta), math.sin(theta)
    return points @ np.array([[c, s], [-s, c]])


def _circle_points(r: float, n: int | None = None) -> np.ndarray:
    n = n or max(16, int(2 * math.pi * r / 1.5))
    a = np.linspace(0.0, 2 * math.pi, n, endpoint=False)
    return np.stack([r * np.cos(a), r * np.sin(a)], axis=1)


def _shape(name: str, area: float, rng: np.random.Generator) -> list[np.ndarray]:
    """Polygons (first filled, further ones cut out) of a shape of ~``area`` pixels centred at 0."""
    if name == "circle":
        return [_circle_points(math.sqrt(area / math.pi))]
    if name == "square":
        h = math.sqrt(area) / 2
        pts = np.array([[-h, -h], [h, -h], [h, h], [-h, h]])
        return [_rotate(pts, rng.uniform(0, math.pi / 2))]
    if name == "triangle":
        side = math.sqrt(4 * area / math.sqrt(3))
        rad = side / math.sqrt(3)
        a = np.array([0.0, 2 * math.pi / 3, 4 * math.pi / 3]) + rng.uniform(0, 2 * math.pi)
        return [np.stack([rad * np.cos(a), rad * np.sin(a)], axis=1)]
    if name == "ellipse":
        q = rng.uniform(1.6, 2.4)
        a = math.sqrt(area * q / math.pi)
        pts = _circle_points(a)
        pts[:, 1] /= q
        return [_rotate(pts, rng.uniform(0, math.pi))]
    if name == "ring":
        rho = rng.uniform(0.45, 0.62)
        outer = math.sqrt(area / (math.pi * (1 - rho**2)))
        return [_circle_points(outer), _circle_points(outer * rho)]
    if name == "cross":
        t = rng.uniform(0.28, 0.38)
        length = math.sqrt(area / (2 * t - t * t))
        h, w = length / 2, length * t / 2
        pts = np.array(
            [[-w, -h], [w, -h], [w, -w], [h, -w], [h, w], [w, w], [w, h], [-w, h], [-w, w], [-h, w], [-h, -w], [-w, -w]]
        )
        return [_rotate(pts, rng.uniform(0, math.pi / 2))]
    raise ValueError(f"unknown shape {name!r}")


def _render(polys: list[np.ndarray], shape_hw: tuple[int, int]) -> np.ndarray:
    import cv2

    mask = np.zeros(shape_hw, np.uint8)
    for i, p in enumerate(polys):
        # Pixel (c, r) covers [c, c+1) x [r, r+1); OpenCV samples pixel centres at integers.
        fixed = np.round((p - 0.5) * 16).astype(np.int32).reshape(-1, 1, 2)
        cv2.fillPoly(mask, [fixed], 1 if i == 0 else 0, lineType=cv2.LINE_8, shift=4)
    return mask


# --------------------------------------------------------------------------- painting


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    import cv2

    grid = int(rng.integers(3, 8))
    hue = rng.uniform(0, 180) + rng.normal(0, 12, (grid, grid))
    sat = rng.uniform(0, 70, (grid, grid))
    val = rng.uniform(60, 200, (grid, grid))
    hsv = np.stack([np.mod(hue, 180), sat, val], axis=-1).astype(np.float32)
    small = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2BGR).astype(np.float32)
    img = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    for _ in range(int(rng.integers(0, 5))):  # distractor strokes
        p0 = tuple(int(x) for x in (rng.integers(0, w), rng.integers(0, h)))
        p1 = tuple(int(x) for x in (rng.integers(0, w), rng.integers(0, h)))
        colour = _hsv_to_rgb(float(rng.uniform(0, 180)), float(rng.uniform(40, 255)), float(rng.uniform(60, 255)))
        cv2.line(img, p0, p1, colour[::-1], int(rng.integers(1, 3)), cv2.LINE_AA)
    return img


def _texture(kind: str, centre: np.ndarray, size: float, rng: np.random.Generator, yy, xx) -> np.ndarray:
    """Brightness factor field (around 1) of a texture, anchored at the object."""
    dx, dy = xx - centre[0], yy - centre[1]
    if kind == "flat":
        return np.ones_like(xx)
    if kind == "radial":
        d2 = (dx * dx + dy * dy) / max(size / 2, 1.0) ** 2
        return 1.15 - 0.45 * np.clip(d2, 0, 1)
    phi = rng.uniform(0, math.pi)
    u = dx * math.cos(phi) + dy * math.sin(phi)
    if kind == "stripes":
        period = rng.uniform(4.0, 7.0)
        return np.where(np.sin(2 * math.pi * u / period) >= 0, 1.1, 0.65)
    if kind == "gradient":
        return 1.0 + 0.35 * np.clip(u / max(size / 2, 1.0), -1, 1)
    if kind == "checker":
        v = -dx * math.sin(phi) + dy * math.cos(phi)
        cell = rng.uniform(3.0, 5.0)
        return np.where((np.floor(u / cell) + np.floor(v / cell)) % 2 == 0, 1.1, 0.6)
    raise ValueError(f"unknown texture {kind!r}")


# --------------------------------------------------------------------------- masks -> COCO


def mask_to_polygons(mask: np.ndarray) -> list[list[float]]:
    """COCO polygons whose pycocotools rasterisation is exactly ``mask`` (holes by keyhole bridges).

    Contours are traced on the mask upsampled ``3x`` (nearest), so they run 1/6 pixel
    inside the pixel edges; each hole contour is spliced into its outer contour through
    a bridge traversed in both directions, which even-odd filling cancels.
    """
    import cv2

    k = _UPSAMPLE
    up = cv2.resize(mask.astype(np.uint8), None, fx=k, fy=k, interpolation=cv2.INTER_NEAREST)
    contours, hierarchy = cv2.findContours(up, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    if hierarchy is None:
        return []
    hierarchy = hierarchy[0]
    polygons = []
    for i, contour in enumerate(contours):
        if hierarchy[i][3] >= 0:  # a hole: spliced into its parent below
            continue
        poly = contour.reshape(-1, 2)
        j = hierarchy[i][2]
        while j >= 0:
            hole = contours[j].reshape(-1, 2)
            d = ((poly[:, None, :].astype(np.int64) - hole[None, :, :]) ** 2).sum(-1)
            a, b = np.unravel_index(int(np.argmin(d)), d.shape)
            poly = np.concatenate([poly[: a + 1], hole[b:], hole[: b + 1], poly[a:]])
            j = hierarchy[j][0]
        if len(poly) < 3:  # cannot happen for an upsampled mask; keep pycocotools' >= 3 points rule
            continue
        coords = np.round((poly.astype(np.float64) + 0.5) / k, 2)
        polygons.append([float(c) for c in coords.ravel()])
    return polygons


def _bbox(mask: np.ndarray) -> list[float]:
    ys = np.flatnonzero(mask.any(axis=1))
    xs = np.flatnonzero(mask.any(axis=0))
    return [float(xs[0]), float(ys[0]), float(xs[-1] - xs[0] + 1), float(ys[-1] - ys[0] + 1)]


# --------------------------------------------------------------------------- generation


def _plan_labels(rng, num_images, min_objects, max_objects, probs, min_per_class):
    counts = rng.integers(min_objects, max_objects + 1, size=num_images)
    total = int(counts.sum())
    c = len(CLASSES)
    m = min(min_per_class, total // c)
    guaranteed = np.repeat(np.arange(c), m)
    rest = rng.choice(c, size=total - len(guaranteed), p=probs)
    labels = rng.permutation(np.concatenate([guaranteed, rest]))
    return np.split(labels, np.cumsum(counts)[:-1])


def _make_image(rng, labels, h, w, min_visible_area, min_visible_fraction):
    """One image: (BGR uint8 array, [(class index, visible mask)] in painting order)."""
    targets = []
    for label in labels:
        tier = rng.choice(len(_TIERS), p=_TIER_P)
        lo, hi = _TIERS[tier]
        lo = max(lo, _MIN_TARGET_AREA[CLASSES[label]])
        area = math.exp(rng.uniform(math.log(lo), math.log(max(hi, lo + 1))))
        targets.append((area, int(label)))
    targets.sort(key=lambda t: -t[0])  # painter's order: largest at the back

    placed = []  # [label, full mask, visible mask, full area, centre, extent]
    for area, label in targets:
        name = CLASSES[label]
        for attempt in range(_MAX_TRIES):
            a = max(area * 0.8 ** (attempt // 4), _MIN_TARGET_AREA[name])
            polys = _shape(name, a, rng)
            lo_xy, hi_xy = polys[0].min(axis=0), polys[0].max(axis=0)
            span = hi_xy - lo_xy
            if span[0] > w - 2 or span[1] > h - 2:
                continue
            offset = np.array([rng.uniform(1 - lo_xy[0], w - 1 - hi_xy[0]), rng.uniform(1 - lo_xy[1], h - 1 - hi_xy[1])])
            mask = _render([p + offset for p in polys], (h, w))
            if int(mask.sum()) < min_visible_area:
                continue
            ok = True
            for obj in placed:
                left = int(np.count_nonzero(obj[2] & (mask == 0)))
                if left < max(min_visible_area, min_visible_fraction * obj[3]):
                    ok = False
                    break
            if ok:
                for obj in placed:
                    obj[2] &= 1 - mask
                placed.append([label, mask, mask.copy(), int(mask.sum()), offset, float(max(span))])
                break

    img = _background(rng, h, w)
    for label, mask, _vis, _area, centre, size in placed:
        hue, texture = _STYLE[CLASSES[label]]
        rgb = _hsv_to_rgb(
            float(np.mod(hue + rng.normal(0, 4), 180)), float(rng.uniform(150, 255)), float(rng.uniform(140, 235))
        )
        yy, xx = np.nonzero(mask)
        factor = _texture(texture, centre, size, rng, yy.astype(np.float64), xx.astype(np.float64))
        img[yy, xx] = np.asarray(rgb[::-1], np.float64)[None, :] * factor[:, None]
    img = img + 7.0 * rng.standard_normal(img.shape, dtype=np.float32)
    img = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    objects = [(label, vis) for label, _m, vis, *_ in placed if int(vis.sum()) >= min_visible_area]
    return img, objects


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _json_bytes(obj, indent=None) -> bytes:
    text = json.dumps(obj, sort_keys=True, indent=indent, separators=(",", ": ") if indent else (",", ":"))
    return (text + "\n").encode("utf-8")


def make_synthetic_coco(
    root: str | os.PathLike,
    num_train: int = 200,
    num_val: int = 50,
    image_size: tuple[int, int] = (128, 128),
    seed: int = 0,
    *,
    min_objects: int = 1,
    max_objects: int = 6,
    imbalance: float = 0.6,
    min_instances_per_class: int = 3,
    min_visible_area: int = 16,
    min_visible_fraction: float = 0.5,
) -> dict:
    """Generate the synthetic COCO dataset under ``root``; returns the manifest (also in ``root/manifest.json``).

    ``image_size`` is ``(height, width)``.  ``imbalance`` is the ratio of successive class
    frequencies (1.0: balanced).  ``root`` must be new, empty or hold a dataset generated
    here before (see the module docstring); files of that dataset that the new one does not
    contain are removed, no other file is touched.  Bad parameters or another kind of
    folder raise :class:`~rankrepro.errors.RankReproError`.
    """
    import cv2

    h, w = (int(x) for x in image_size)
    if h < 32 or w < 32:
        raise RankReproError(f"image_size must be at least 32x32, got {image_size}")
    if num_train < 1 or num_val < 1:
        raise RankReproError(f"num_train and num_val must be >= 1, got {num_train} and {num_val}")
    if not 1 <= min_objects <= max_objects:
        raise RankReproError("need 1 <= min_objects <= max_objects")
    if not 0.0 < imbalance <= 1.0:
        raise RankReproError("imbalance must be in (0, 1]")
    if seed < 0:
        raise RankReproError(f"seed must be >= 0, got {seed}")
    root = Path(root)
    manifest_path = root / _MANIFEST
    planned = [f"{split}/{i:06d}.png" for split, num in zip(_SPLITS, (num_train, num_val)) for i in range(1, num + 1)]
    planned += [f"annotations/instances_{split}.json" for split in _SPLITS]
    planned += _format_files(num_train, num_val)
    ours = _files_written_before(root, planned)
    root.mkdir(parents=True, exist_ok=True)
    write_atomic(root / _MARKER, _json_bytes({"name": _NAME, "files": sorted(set(planned) | ours)}, indent=1))

    probs = np.asarray(class_frequencies(imbalance))
    params = {
        "num_train": int(num_train),
        "num_val": int(num_val),
        "image_size": [h, w],
        "seed": int(seed),
        "min_objects": int(min_objects),
        "max_objects": int(max_objects),
        "imbalance": float(imbalance),
        "min_instances_per_class": int(min_instances_per_class),
        "min_visible_area": int(min_visible_area),
        "min_visible_fraction": float(min_visible_fraction),
    }
    categories = [{"id": i + 1, "name": c, "supercategory": "shape"} for i, c in enumerate(CLASSES)]
    files: dict[str, str] = {}
    instances: dict[str, dict[str, int]] = {}
    lvis_categories = None
    for split_index, (split, num) in enumerate(zip(_SPLITS, (num_train, num_val))):
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), split_index, GENERATOR_VERSION]))
        plan = _plan_labels(rng, num, min_objects, max_objects, probs, min_instances_per_class)
        images, annotations = [], []
        counts = dict.fromkeys(CLASSES, 0)
        cityscapes = []  # per image: (PNG bytes, objects) for the Cityscapes layout
        for image_id, labels in enumerate(plan, start=1):
            img, objects = _make_image(rng, labels, h, w, min_visible_area, min_visible_fraction)
            file_name = f"{image_id:06d}.png"
            ok, buf = cv2.imencode(".png", img, [cv2.IMWRITE_PNG_COMPRESSION, 3])
            if not ok:
                raise RuntimeError(f"OpenCV could not encode {split}/{file_name}")
            data = buf.tobytes()
            write_atomic(root / split / file_name, data)
            files[f"{split}/{file_name}"] = _sha256(data)
            cityscapes.append((data, objects))
            images.append({"id": image_id, "file_name": file_name, "width": w, "height": h})
            for label, vis in objects:
                annotations.append(
                    {
                        "id": len(annotations) + 1,
                        "image_id": image_id,
                        "category_id": label + 1,
                        "bbox": _bbox(vis),
                        "area": float(np.count_nonzero(vis)),
                        "iscrowd": 0,
                        "segmentation": mask_to_polygons(vis),
                    }
                )
                counts[CLASSES[label]] += 1
        coco = {
            "info": {
                "description": f"{_DESCRIPTION} ({split})",
                "version": str(GENERATOR_VERSION),
                "seed": int(seed),
            },
            "licenses": [],
            "images": images,
            "annotations": annotations,
            "categories": categories,
        }
        rel = f"annotations/instances_{split}.json"
        data = _json_bytes(coco)
        write_atomic(root / rel, data)
        files[rel] = _sha256(data)
        instances[split] = counts
        # The same split in the LVIS v1 and Cityscapes layouts (rankrepro.data.formats):
        # functions of the COCO annotation and masks, no random numbers drawn.
        if lvis_categories is None:  # train comes first: LVIS counts and frequencies are train's
            lvis_categories = formats.lvis_categories(coco)
        outputs = {formats.lvis_annotation(split): _json_bytes(formats.coco_to_lvis(coco, split, lvis_categories))}
        cs = formats.CITYSCAPES_DIR
        outputs[f"{cs}/{formats.cityscapes_annotation(split)}"] = _json_bytes(formats.coco_to_cityscapes(coco, split, CLASSES))
        for image, (png, objects) in zip(images, cityscapes):
            instance_ids, label_ids = formats.gt_fine_pngs((h, w), objects, CLASSES)
            outputs[f"{cs}/leftImg8bit/{split}/{formats.cityscapes_image(split, image['id'])}"] = png
            outputs[f"{cs}/gtFine/{split}/{formats.cityscapes_instance_ids(split, image['id'])}"] = instance_ids
            outputs[f"{cs}/gtFine/{split}/{formats.cityscapes_label_ids(split, image['id'])}"] = label_ids
        for rel, data in outputs.items():
            write_atomic(root / rel, data)
            files[rel] = _sha256(data)

    # Files of the previous dataset that this one does not have, and temporary files that an
    # interrupted write of one of our files left; nothing else.
    for rel in sorted(ours - set(files)):
        if (root / rel).is_file():
            (root / rel).unlink()
    for rel in sorted(ours | set(files)):
        folder, name = (root / rel).parent, (root / rel).name
        for tmp in folder.glob(f".{name}.*.tmp"):
            tmp.unlink()

    manifest = {
        "name": _NAME,
        "generator_version": GENERATOR_VERSION,
        "params": params,
        "classes": list(CLASSES),
        "class_frequencies": [round(p, 6) for p in probs.tolist()],
        "num_images": {"train": int(num_train), "val": int(num_val)},
        "instances": instances,
        "formats": _formats_manifest(lvis_categories),
        "files": dict(sorted(files.items())),
    }
    write_atomic(manifest_path, _json_bytes(manifest, indent=1))
    (root / _MARKER).unlink()
    return manifest


def _format_files(num_train: int, num_val: int) -> list[str]:
    """The LVIS and Cityscapes files of a dataset of this size (relative paths)."""
    cs = formats.CITYSCAPES_DIR
    rels = []
    for split, num in zip(_SPLITS, (num_train, num_val)):
        rels += [formats.lvis_annotation(split), f"{cs}/{formats.cityscapes_annotation(split)}"]
        for image_id in range(1, num + 1):
            rels.append(f"{cs}/leftImg8bit/{split}/{formats.cityscapes_image(split, image_id)}")
            rels.append(f"{cs}/gtFine/{split}/{formats.cityscapes_instance_ids(split, image_id)}")
            rels.append(f"{cs}/gtFine/{split}/{formats.cityscapes_label_ids(split, image_id)}")
    return rels


def _formats_manifest(lvis_categories) -> dict:
    """The manifest's description of the extra layouts (where they are, how classes map)."""
    return {
        "coco": {split: f"annotations/instances_{split}.json" for split in _SPLITS},
        "lvis_v1": {
            **{split: formats.lvis_annotation(split) for split in _SPLITS},
            "frequency": {c["name"]: c["frequency"] for c in lvis_categories},
            "image_count": {c["name"]: c["image_count"] for c in lvis_categories},
        },
        "cityscapes": {
            "root": formats.CITYSCAPES_DIR,
            **{split: formats.cityscapes_annotation(split) for split in _SPLITS},
            "classes": dict(formats.CITYSCAPES_CLASSES),
        },
    }


def _read_json_list(path: Path, key: str):
    """``path``'s ``key`` if ``path`` is one of our JSON files (``name`` is ours), else ``None``."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("name") != _NAME:
        return None
    files = data.get(key)
    if not isinstance(files, (list, dict)) or not all(isinstance(f, str) for f in files):
        return None
    return {f for f in files if _OWN_FILE.match(f)}  # never a path outside the dataset's layout


def _annotated_files(root: Path, split: str):
    """The annotation files of ``split`` (COCO, LVIS, Cityscapes) and the images they list, of
    those that we wrote (``None`` if none is)."""
    cs = formats.CITYSCAPES_DIR
    found = None
    for rel, listed in (
        (f"annotations/instances_{split}.json", lambda img: [f"{split}/{img['file_name']}"]),
        (formats.lvis_annotation(split), lambda img: []),
        (
            f"{cs}/{formats.cityscapes_annotation(split)}",
            lambda img: [
                f"{cs}/leftImg8bit/{split}/{formats.cityscapes_image(split, img['id'])}",
                f"{cs}/gtFine/{split}/{formats.cityscapes_instance_ids(split, img['id'])}",
                f"{cs}/gtFine/{split}/{formats.cityscapes_label_ids(split, img['id'])}",
            ],
        ),
    ):
        try:
            coco = json.loads((root / rel).read_text(encoding="utf-8"))
            if not str(coco["info"]["description"]).startswith(_DESCRIPTION):
                continue
            images = {f for image in coco["images"] for f in listed(image)}
        except (OSError, ValueError, KeyError, TypeError):
            continue
        found = (found or set()) | {f for f in images | {rel} if _OWN_FILE.match(f)}
    return found


def _files_written_before(root: Path, planned: list[str]) -> set[str]:
    """The files (relative paths) that an earlier generation wrote into ``root``; raises
    :class:`RankReproError` if ``root`` is neither new, empty nor a generated dataset, or if
    generating would overwrite a file that is not one of them."""
    existing = root
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing.is_dir() and not os.access(existing, os.W_OK | os.X_OK):
        raise RankReproError(f"cannot write into {existing}")
    if not root.exists():
        return set()
    if not root.is_dir():
        raise RankReproError(f"{root} exists and is not a folder")
    if not any(root.iterdir()):
        return set()
    ours = set()
    recognised = False
    for name, key in ((_MANIFEST, "files"), (_MARKER, "files")):
        found = _read_json_list(root / name, key) if (root / name).is_file() else None
        if found is not None:
            recognised = True
            ours |= found
    for split in _SPLITS:  # without a manifest (e.g. deleted by a workflow re-running this step)
        found = _annotated_files(root, split)
        if found is not None:
            recognised = True
            ours |= found
    if not recognised:
        raise RankReproError(
            f"{root} is not empty and holds no dataset made by `rankrepro make-data` (no readable "
            f"{_MANIFEST} of one); choose a new or empty folder (nothing was written)"
        )
    foreign = [rel for rel in planned if (root / rel).exists() and rel not in ours]
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise RankReproError(
            f"{root} holds files that `rankrepro make-data` did not write and would overwrite: {shown}; "
            "move them away or choose another folder (nothing was written)"
        )
    return ours


def verify_synthetic_coco(root: str | os.PathLike) -> None:
    """Check that ``root`` holds a complete generated dataset: the manifest and every file's SHA-256.

    Raises :class:`~rankrepro.errors.RankReproError` (a :class:`ValueError`) naming the
    manifest or the first (in sorted order) missing or modified file, or saying that a
    generation into ``root`` did not finish.
    """
    root = Path(root)
    manifest_path = root / _MANIFEST
    if not root.is_dir():
        raise RankReproError(f"synthetic dataset {root} does not exist (make it with `rankrepro make-data {root}`)")
    if (root / _MARKER).exists():
        raise RankReproError(
            f"synthetic dataset {root} is incomplete: its generation did not finish ({_MARKER} is present); "
            f"run `rankrepro make-data {root}` again"
        )
    if not manifest_path.is_file():
        raise RankReproError(f"synthetic dataset {root} is incomplete: {_MANIFEST} is missing")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        files = manifest["files"]
        if not isinstance(files, dict) or not files:
            raise TypeError("'files' must be a non-empty object")
    except (ValueError, KeyError, TypeError) as err:
        raise RankReproError(f"synthetic dataset {root}: unreadable {_MANIFEST}: {err}") from None
    for rel, digest in sorted(files.items()):
        path = root / rel
        if not path.is_file():
            raise RankReproError(f"synthetic dataset {root}: file {rel} listed in {_MANIFEST} is missing")
        if _sha256(path.read_bytes()) != digest:
            raise RankReproError(f"synthetic dataset {root}: file {rel} does not match its checksum in {_MANIFEST}")
