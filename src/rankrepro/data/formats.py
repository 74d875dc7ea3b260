"""The synthetic dataset also in LVIS v1 and Cityscapes layouts (same images, same instances).

:func:`rankrepro.data.make_synthetic_coco` writes these files next to the COCO ones, so
that the smoke variant of an LVIS or a Cityscapes config keeps its dataset class, its
wrapper and its evaluator (:mod:`rankrepro.smoke`).  Nothing here draws random numbers:
both layouts are functions of the COCO annotations (and, for Cityscapes, of the visible
instance masks), so the COCO part of the dataset is unchanged by them.

LVIS v1 (``annotations/lvis_v1_{train,val}.json``)
-------------------------------------------------
The LVIS v1 annotation format (Gupta et al., "LVIS: A Dataset for Large Vocabulary Instance
Segmentation", CVPR 2019, Sec. 3 and the v1 release format):

* images: ``id``, ``width``, ``height``, ``coco_url`` and the federated-annotation lists
  ``neg_category_ids`` (categories verified absent) and ``not_exhaustive_category_ids``
  (categories whose instances are not all annotated).  LVIS v1 images have no
  ``file_name``: mmdet's ``LVISV1Dataset`` takes the path from ``coco_url`` minus
  ``http://images.cocodataset.org/``, so ``coco_url`` is
  ``http://images.cocodataset.org/<split>/<file>.png`` and configs use ``data_prefix=dict(img='')``
  -- the COCO images are read, none is copied.  The synthetic annotation is exhaustive:
  every class absent from an image is a verified negative of it and no list of
  not-exhaustive classes is needed, so LVIS evaluation counts every false positive, as
  COCO evaluation does.
* annotations: ``id``, ``image_id``, ``category_id``, ``bbox``, ``area``, ``segmentation``
  (LVIS has no ``iscrowd``).
* categories: ``id``, ``name``, ``synonyms``, ``def``, ``image_count`` and
  ``instance_count`` (counted on the train split, for both splits, as in LVIS) and
  ``frequency``.  LVIS groups its categories by the number of train *images* they occur
  in: rare 1-10, common 11-100, frequent > 100 (of ~100k images).  Those absolute
  thresholds would make no class rare here (every class is in >= 27 of the 200 train
  images), so the tiny set keeps LVIS's criterion (train image count) and scales the
  thresholds to the class count: the classes sorted by train image count (ties: the
  later class in :data:`CLASSES` counts as rarer) are split in thirds, rarest third ``r``,
  middle ``c``, most frequent ``f`` (6 classes: 2 / 2 / 2), so that APr, APc and APf are all
  defined (image counts of the default set: 144, 105, 97, 62, 39, 27 -> f f c c r r).  A
  class that a very small train split lacks (objects that do not fit are left out) ranks
  rarest with image count 0.  :func:`lvis_frequencies` holds the rule.

Cityscapes (``cityscapes/``)
----------------------------
mmdet's Cityscapes layout (``tools/dataset_converters/cityscapes.py`` output)::

    cityscapes/annotations/instancesonly_filtered_gtFine_{train,val}.json
    cityscapes/leftImg8bit/{train,val}/shapes/shapes_000000_<id:06d>_leftImg8bit.png
    cityscapes/gtFine/{train,val}/shapes/shapes_000000_<id:06d>_gtFine_instanceIds.png
    cityscapes/gtFine/{train,val}/shapes/shapes_000000_<id:06d>_gtFine_labelIds.png

with the city ``shapes``, sequence ``000000`` and the COCO image id as frame number (the
Cityscapes ``<city>_<seq>_<frame>`` naming that cityscapesscripts parses).  The images are
byte copies of the COCO ones (Cityscapes' evaluator finds the ground truth by renaming the
image path, so the images must carry Cityscapes names).  The COCO-format JSON has the
COCO annotation's boxes, areas and polygons with Cityscapes categories (id = Cityscapes
label id, name = its name) and per image ``file_name`` and ``segm_file`` (the
``*_gtFine_labelIds.png``) relative to the split's folder, as mmdet's converter writes them.

The six synthetic classes become six of the eight Cityscapes instance classes by
frequency rank (:data:`CITYSCAPES_CLASSES`): the synthetic classes are ordered most to
least frequent, and so are these Cityscapes classes by their instance counts in
Cityscapes train (car, person, bicycle, rider, motorcycle, truck; bus and train, the two
rarest, have no instances here, so the official evaluator leaves them out of its means:
a class without ground truth has AP NaN).

``*_gtFine_instanceIds.png`` are 16-bit PNGs as in Cityscapes: a pixel of an instance holds
``label_id * 1000 + k`` (``k`` counts the image's instances of that class from 0); every
other pixel is ``road`` (label id 7), a class that is evaluated as background -- not void
(``unlabeled`` 0 is void, and a prediction lying mostly on void pixels would not count as a
false positive).  ``*_gtFine_labelIds.png`` (8-bit) hold every pixel's label id (an
instance pixel: its class's).  The instance masks are the visible masks of the COCO annotation (which
are disjoint); the official evaluator ignores instances below 100 pixels (Cityscapes'
``minRegionSizes``), i.e. the smallest synthetic objects.
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import RankReproError

#: Synthetic class (``rankrepro.data.CLASSES`` order) -> Cityscapes class name, by frequency rank.
CITYSCAPES_CLASSES = {
    "circle": "car",
    "square": "person",
    "triangle": "bicycle",
    "ellipse": "rider",
    "ring": "motorcycle",
    "cross": "truck",
}
#: Cityscapes label ids (cityscapesscripts.helpers.labels) of the classes used above.
CITYSCAPES_LABEL_IDS = {"person": 24, "rider": 25, "car": 26, "truck": 27, "bus": 28, "train": 31, "motorcycle": 32, "bicycle": 33}
#: The background's Cityscapes label id (``road``: evaluated, not void, not an instance class).
CITYSCAPES_BACKGROUND_ID = 7
CITYSCAPES_CITY = "shapes"
CITYSCAPES_DIR = "cityscapes"

LVIS_URL_PREFIX = "http://images.cocodataset.org/"


def lvis_annotation(split: str) -> str:
    """The LVIS v1 annotation file of ``split``, relative to the dataset root."""
    return f"annotations/lvis_v1_{split}.json"


def cityscapes_annotation(split: str) -> str:
    """The Cityscapes COCO-format annotation file of ``split``, relative to ``cityscapes/``."""
    return f"annotations/instancesonly_filtered_gtFine_{split}.json"


def cityscapes_stem(image_id: int) -> str:
    """``<city>_<sequence>_<frame>`` of the image with COCO id ``image_id``."""
    return f"{CITYSCAPES_CITY}_000000_{int(image_id):06d}"


def cityscapes_image(split: str, image_id: int) -> str:
    """The image's path relative to ``cityscapes/leftImg8bit/<split>/``."""
    return f"{CITYSCAPES_CITY}/{cityscapes_stem(image_id)}_leftImg8bit.png"


def cityscapes_instance_ids(split: str, image_id: int) -> str:
    """The ``*_gtFine_instanceIds.png`` path relative to ``cityscapes/gtFine/<split>/``."""
    return f"{CITYSCAPES_CITY}/{cityscapes_stem(image_id)}_gtFine_instanceIds.png"


def cityscapes_label_ids(split: str, image_id: int) -> str:
    """The ``*_gtFine_labelIds.png`` path relative to ``cityscapes/gtFine/<split>/``."""
    return f"{CITYSCAPES_CITY}/{cityscapes_stem(image_id)}_gtFine_labelIds.png"


def cityscapes_metainfo(classes) -> dict:
    """mmdet ``metainfo`` of the Cityscapes layout: the Cityscapes names of ``classes`` (in
    that order, so label ``i`` is still synthetic class ``i``) and mmdet's palette for them."""
    from mmdet.datasets import CityscapesDataset  # only where mmdet is used

    names = tuple(CITYSCAPES_CLASSES[c] for c in classes)
    palette = dict(zip(CityscapesDataset.METAINFO["classes"], CityscapesDataset.METAINFO["palette"]))
    return {"classes": names, "palette": [palette[n] for n in names]}


# --------------------------------------------------------------------------- LVIS


def lvis_frequencies(image_counts: dict[int, int]) -> dict[int, str]:
    """Category id -> LVIS frequency group ``'r'`` / ``'c'`` / ``'f'`` from train image counts.

    LVIS's criterion (the number of train images a category occurs in), with thresholds at
    the tertiles of the classes instead of LVIS's absolute 10 / 100 images (see the module
    docstring): ``round(n / 3)`` rarest classes are rare, as many most frequent ones are
    frequent, the rest common.  Ties: the higher category id counts as rarer.
    """
    if not image_counts:
        raise RankReproError("LVIS frequencies need at least one category")
    if any(n < 0 for n in image_counts.values()):
        raise RankReproError(f"image counts must be >= 0, got {image_counts}")
    order = sorted(image_counts, key=lambda c: (image_counts[c], -c))  # rarest first
    third = int(math.floor(len(order) / 3 + 0.5))
    groups = {}
    for rank, cat in enumerate(order):
        groups[cat] = "r" if rank < third else ("f" if rank >= len(order) - third else "c")
    return groups


def lvis_categories(train_coco: dict) -> list[dict]:
    """LVIS categories with ``image_count``, ``instance_count`` and ``frequency`` from ``train_coco``."""
    images = {c["id"]: set() for c in train_coco["categories"]}
    instances = dict.fromkeys(images, 0)
    for ann in train_coco["annotations"]:
        images[ann["category_id"]].add(ann["image_id"])
        instances[ann["category_id"]] += 1
    image_counts = {c: len(ids) for c, ids in images.items()}
    frequency = lvis_frequencies(image_counts)
    return [
        {
            "id": c["id"],
            "name": c["name"],
            "synonyms": [c["name"]],
            "def": f"a synthetic {c['name']} shape",
            "image_count": image_counts[c["id"]],
            "instance_count": instances[c["id"]],
            "frequency": frequency[c["id"]],
        }
        for c in train_coco["categories"]
    ]


def coco_to_lvis(coco: dict, split: str, categories: list[dict]) -> dict:
    """The LVIS v1 version of the COCO dict ``coco`` of ``split`` (images read from ``<split>/``)."""
    cat_ids = [c["id"] for c in categories]
    present = {img["id"]: set() for img in coco["images"]}
    for ann in coco["annotations"]:
        present[ann["image_id"]].add(ann["category_id"])
    images = [
        {
            "id": img["id"],
            "width": img["width"],
            "height": img["height"],
            "coco_url": f"{LVIS_URL_PREFIX}{split}/{img['file_name']}",
            "neg_category_ids": [c for c in cat_ids if c not in present[img["id"]]],
            "not_exhaustive_category_ids": [],
        }
        for img in coco["images"]
    ]
    annotations = [
        {k: ann[k] for k in ("id", "image_id", "category_id", "bbox", "area", "segmentation")} for ann in coco["annotations"]
    ]
    info = dict(coco["info"], description=coco["info"]["description"] + " in the LVIS v1 format")
    return {"info": info, "licenses": [], "images": images, "annotations": annotations, "categories": categories}


# --------------------------------------------------------------------------- Cityscapes


def coco_to_cityscapes(coco: dict, split: str, classes) -> dict:
    """The Cityscapes COCO-format dict (categories renamed, Cityscapes file names) of ``coco``."""
    old_to_new = {}
    categories = []
    for cat in coco["categories"]:
        name = CITYSCAPES_CLASSES[classes[cat["id"] - 1]]
        old_to_new[cat["id"]] = CITYSCAPES_LABEL_IDS[name]
        categories.append({"id": CITYSCAPES_LABEL_IDS[name], "name": name})
    images = [
        {
            "id": img["id"],
            "file_name": cityscapes_image(split, img["id"]),
            "segm_file": cityscapes_label_ids(split, img["id"]),
            "width": img["width"],
            "height": img["height"],
        }
        for img in coco["images"]
    ]
    annotations = [dict(ann, category_id=old_to_new[ann["category_id"]]) for ann in coco["annotations"]]
    info = dict(coco["info"], description=coco["info"]["description"] + " in the Cityscapes layout")
    return {"info": info, "licenses": [], "images": images, "annotations": annotations, "categories": categories}


def gt_fine_pngs(shape: tuple[int, int], objects, classes) -> tuple[bytes, bytes]:
    """The ``*_gtFine_instanceIds.png`` and ``*_gtFine_labelIds.png`` bytes of one image.

    ``objects``: ``[(class index, visible mask)]`` (disjoint masks, as the generator makes
    them); each becomes ``label_id * 1000 + k`` in the instance ids and ``label_id`` in the
    label ids, everything else ``road`` (7).
    """
    import cv2

    ids = np.full(shape, CITYSCAPES_BACKGROUND_ID, np.uint16)
    seen: dict[int, int] = {}
    for label, mask in objects:
        label_id = CITYSCAPES_LABEL_IDS[CITYSCAPES_CLASSES[classes[label]]]
        pixels = mask.astype(bool)
        if np.any(ids[pixels] != CITYSCAPES_BACKGROUND_ID):
            raise RankReproError("Cityscapes instanceIds need disjoint instance masks")
        ids[pixels] = label_id * 1000 + seen.get(label_id, 0)
        seen[label_id] = seen.get(label_id, 0) + 1
    labels = np.where(ids >= 1000, ids // 1000, ids).astype(np.uint8)
    encoded = []
    for image in (ids, labels):
        ok, buf = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 3])
        if not ok:
            raise RuntimeError("OpenCV could not encode a gtFine PNG")
        encoded.append(buf.tobytes())
    return encoded[0], encoded[1]
