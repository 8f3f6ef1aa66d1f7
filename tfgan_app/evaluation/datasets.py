"""Real-image sources for evaluation (pluggable), and loaders for the offline datasets.

An evaluation compares generated images with **reference** real images (what the GAN was
trained to imitate) and computes every metric once more for **held-out** real images against
the same reference: the real-vs-real *floor*, the best score a perfect generator could expect
at that sample size.

Built-in sources, keyed by the dataset name in a run's ``config["data"]["name"]`` (the names of
:func:`tfgan_app.data.dataset_by_name`), see :func:`real_images`:

* ``digits`` / ``digits:<split>``: scikit-learn's 8x8 digits with :mod:`tfgan_app.data.digits`'
  fixed stratified split: reference = ``train`` (1,438 images; also the offline classifier's
  training set), held-out = ``test`` (359), whatever split the GAN used.
* ``mnist`` / ``tfds:mnist``: MNIST IDX files in ``data["idx_dir"]`` or the folder named by the
  environment variable ``TFGAN_APP_MNIST_DIR``; else TFDS's local copy (never downloads).
* ``idx:<images>[,<labels>]``: the IDX files the run trained on (``images_path``,
  ``labels_path`` in the data config).

MNIST-style IDX folders: with ``train-*`` files the reference is the training set and the
held-out set ``t10k``; with only ``t10k-*`` (as in ``shared/data/mnist``) the 10,000 test
images are split in two fixed halves (first 5,000 reference, last 5,000 held out). The same
halving applies to any single IDX file.

Add a source with :func:`register_real_images`.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Callable

import numpy as np

__all__ = [
    "RealImages",
    "load_digits_images",
    "load_mnist_idx",
    "register_real_images",
    "real_images",
    "REAL_IMAGE_SOURCES",
]


@dataclasses.dataclass
class RealImages:
    """Real images for an evaluation.

    Attributes:
      name: dataset name.
      reference: ``float32 [N, H, W, C]`` in ``[-1, 1]`` (the training distribution).
      reference_labels: ``int64 [N]`` class labels or ``None``.
      heldout: ``float32 [M, H, W, C]`` in ``[-1, 1]``, disjoint from ``reference``.
      heldout_labels: ``int64 [M]`` or ``None``.
      num_classes: number of classes (``None`` when unlabelled).
      description: one line saying where the images came from and how they were split.
      halves: ``heldout`` is the second half of the images ``reference`` was cut from (a
        single IDX file, MNIST's ``t10k`` alone): a GAN trained on that data has seen both.
    """

    name: str
    reference: np.ndarray
    reference_labels: np.ndarray | None
    heldout: np.ndarray
    heldout_labels: np.ndarray | None
    num_classes: int | None
    description: str = ""
    halves: bool = False


def load_digits_images(split: str = "all"):
    """scikit-learn's 8x8 digits as images, with the data package's fixed split
    (:func:`tfgan_app.data.load_digits_arrays`).

    Args:
      split: ``"all"`` (1,797), ``"train"`` (1,438) or ``"test"`` (359).

    Returns:
      ``(images float32 [N, 8, 8, 1] in [-1, 1] (= v / 8 - 1), labels int64 [N] in 0..9)``.

    Raises:
      ValueError: unknown split.
    """
    from tfgan_app.data.digits import load_digits_arrays

    x, y = load_digits_arrays(split)
    return x.astype(np.float32), y.astype(np.int64)


def _find(directory, stem):
    for name in (stem, stem + ".gz"):
        p = os.path.join(directory, name)
        if os.path.isfile(p):
            return p
    return None


def _idx_images(images_path, labels_path=None):
    from tfgan_app.data.idx import load_idx_arrays

    x, y = load_idx_arrays(images_path, labels_path)
    x = x.astype(np.float32) / 127.5 - 1.0
    if x.ndim == 3:
        x = x[..., None]
    return x, (None if y is None else y.astype(np.int64))


def load_mnist_idx(directory: str, split: str = "test"):
    """MNIST images and labels from IDX files in ``directory``.

    Args:
      directory: folder with ``{train,t10k}-images-idx3-ubyte[.gz]`` and
        ``{train,t10k}-labels-idx1-ubyte[.gz]``.
      split: ``"train"`` or ``"test"`` (the ``t10k`` files).

    Returns:
      ``(images float32 [N, 28, 28, 1] in [-1, 1] (= v / 127.5 - 1), labels int64 [N])``.

    Raises:
      ValueError: bad split or missing files.
    """
    prefix = {"train": "train", "test": "t10k"}.get(split)
    if prefix is None:
        raise ValueError(f"split must be 'train' or 'test'; got {split!r}")
    ip = _find(directory, f"{prefix}-images-idx3-ubyte")
    lp = _find(directory, f"{prefix}-labels-idx1-ubyte")
    if ip is None or lp is None:
        raise ValueError(f"MNIST {split} IDX files ({prefix}-images-idx3-ubyte[.gz], "
                         f"{prefix}-labels-idx1-ubyte[.gz]) not found in {directory!r}")
    return _idx_images(ip, lp)


def _halves(name, x, y, desc):
    half = len(x) // 2
    return RealImages(name, x[:half], None if y is None else y[:half], x[half:],
                      None if y is None else y[half:],
                      None if y is None else int(y.max()) + 1,
                      f"{desc}: reference=first {half}, held-out=last {len(x) - half}",
                      halves=True)


# ----------------------------------------------------------------------------- sources

def _digits_source(data_config: dict) -> RealImages:
    xr, yr = load_digits_images("train")
    xh, yh = load_digits_images("test")
    return RealImages("digits", xr, yr, xh, yh, 10,
                      "scikit-learn digits 8x8 (tfgan_app.data split): reference=train "
                      f"({len(xr)}), held-out=test ({len(xh)})")


def _mnist_dir_source(directory) -> RealImages:
    if _find(directory, "train-images-idx3-ubyte"):
        xr, yr = load_mnist_idx(directory, "train")
        xh, yh = load_mnist_idx(directory, "test")
        return RealImages("mnist", xr, yr, xh, yh, 10,
                          f"MNIST IDX in {directory}: reference=train ({len(xr)}), "
                          f"held-out=t10k ({len(xh)})")
    x, y = load_mnist_idx(directory, "test")
    return _halves("mnist", x, y, f"MNIST t10k IDX in {directory}")


def _mnist_source(data_config: dict) -> RealImages:
    directory = data_config.get("idx_dir") or os.environ.get("TFGAN_APP_MNIST_DIR")
    if directory:
        return _mnist_dir_source(directory)
    try:  # a local TFDS copy, if any; never downloads
        import tensorflow_datasets as tfds

        arrays = {}
        for split in ("train", "test"):
            ds = tfds.as_numpy(tfds.load("mnist", split=split, batch_size=-1, download=False,
                                         data_dir=data_config.get("data_dir")))
            arrays[split] = (ds["image"].astype(np.float32) / 127.5 - 1.0,
                             ds["label"].astype(np.int64))
    except Exception as err:  # noqa: BLE001 -- any failure means "not available offline"
        raise ValueError(
            "MNIST real images not found: set the environment variable TFGAN_APP_MNIST_DIR "
            "(or data.idx_dir in config.json) to a folder with the MNIST IDX files "
            f"(TFDS local copy also unavailable: {type(err).__name__})") from None
    (xr, yr), (xh, yh) = arrays["train"], arrays["test"]
    return RealImages("mnist", xr, yr, xh, yh, 10, "MNIST from TFDS: reference=train, "
                      "held-out=test")


def _idx_source(data_config: dict) -> RealImages:
    ip = data_config.get("images_path")
    lp = data_config.get("labels_path")
    if not ip:
        name = data_config.get("name", "")
        parts = [p for p in name.partition(":")[2].split(",") if p]
        if not parts:
            raise ValueError(f"IDX data config needs 'images_path'; got {data_config!r}")
        ip, lp = parts[0], (parts[1] if len(parts) > 1 else None)
    base = os.path.basename(ip)
    if base.startswith("train-"):
        test_ip = os.path.join(os.path.dirname(ip), "t10k-" + base[len("train-"):])
        test_lp = (os.path.join(os.path.dirname(lp), "t10k-" + os.path.basename(lp)[6:])
                   if lp else None)
        if os.path.isfile(test_ip) and (lp is None or os.path.isfile(test_lp)):
            xr, yr = _idx_images(ip, lp)
            xh, yh = _idx_images(test_ip, test_lp)
            return RealImages(data_config.get("name", "idx"), xr, yr, xh, yh,
                              None if yr is None else int(max(yr.max(), yh.max())) + 1,
                              f"IDX: reference={ip}, held-out={test_ip}")
    x, y = _idx_images(ip, lp)
    return _halves(data_config.get("name", "idx"), x, y, f"IDX {ip}")


REAL_IMAGE_SOURCES: dict[str, Callable[[dict], RealImages]] = {
    "digits": _digits_source,
    "mnist": _mnist_source,
    "tfds:mnist": _mnist_source,
    "idx": _idx_source,
}


def register_real_images(name: str, source: Callable[[dict], RealImages]) -> None:
    """Register a real-image source for :func:`real_images` / ``evaluate_run``.

    Args:
      name: the ``data.name`` value in a run's ``config.json``.
      source: ``source(data_config: dict) -> RealImages``.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string; got {name!r}")
    if not callable(source):
        raise ValueError(f"source must be callable(data_config) -> RealImages; got {source!r}")
    REAL_IMAGE_SOURCES[name] = source


def real_images(data_config) -> RealImages:
    """Real reference and held-out images for a run's data config.

    Args:
      data_config: ``config["data"]`` from a run (a dict with ``"name"``) or just the name.

    Returns:
      :class:`RealImages`.

    Raises:
      ValueError: unknown dataset name (lists the registered ones).
    """
    if isinstance(data_config, str):
        data_config = {"name": data_config}
    name = (data_config or {}).get("name")
    if isinstance(name, str) and name not in REAL_IMAGE_SOURCES:
        # "digits:train" -> "digits"; "idx:<paths>" -> "idx"; "tfds:mnist:3.*.*" -> "tfds:mnist"
        kind, _, rest = name.partition(":")
        if kind == "tfds":
            name = "tfds:" + rest.split(":")[0].split("/")[0]
        elif kind in REAL_IMAGE_SOURCES:
            name = kind
        elif data_config.get("source") in REAL_IMAGE_SOURCES:
            name = data_config["source"]
    if name not in REAL_IMAGE_SOURCES:
        raise ValueError(f"no real-image source for dataset {name!r}; registered: "
                         f"{sorted(REAL_IMAGE_SOURCES)} (add one with register_real_images)")
    out = REAL_IMAGE_SOURCES[name](data_config)
    if not isinstance(out, RealImages):
        raise ValueError(f"real-image source {name!r} returned {type(out).__name__}; "
                         "expected RealImages")
    return out
