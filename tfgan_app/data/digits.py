"""scikit-learn's bundled 8x8 handwritten digits: the offline default dataset.

1,797 grayscale 8x8 images with values ``0..16`` (UCI optical recognition of handwritten
digits), labels ``0..9``. They ship inside scikit-learn, so no download is needed.

Splits (fixed, documented, independent of any global seed):

* ``"all"``: all 1,797 images in scikit-learn's order.
* ``"test"``: a stratified 20% -- for each class ``c`` (in order 0..9) its indices are
  permuted with ``numpy.random.default_rng(DIGITS_SPLIT_SEED + c)`` and the first
  ``round(0.2 * count_c)`` go to the test split (359 images);
* ``"train"``: the remaining 1,438 images.

Indices inside each split are kept in scikit-learn's order. Images map ``0..16`` ->
``[-1, 1]`` (``x / 8 - 1``).
"""

from __future__ import annotations

import functools

import numpy as np

from tfgan_app.data import _pipeline as P
from tfgan_app.data.arrays import from_arrays

DIGITS_SPLIT_SEED = 20240
DIGITS_TEST_FRACTION = 0.2
DIGITS_SPLITS = ("train", "test", "all")
DIGITS_SHAPE = (8, 8, 1)
DIGITS_NUM_CLASSES = 10


@functools.lru_cache(maxsize=1)
def _raw_digits():
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = bunch.images.astype(np.float32)  # [1797, 8, 8], 0..16
    y = bunch.target.astype(np.int32)
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


def digits_split_indices(split: str) -> np.ndarray:
    """Indices (``int64``, ascending) of a digits split: ``"train"``, ``"test"`` or ``"all"``."""
    if split not in DIGITS_SPLITS:
        raise ValueError(f"unknown digits split {split!r}; expected one of {DIGITS_SPLITS}")
    _, y = _raw_digits()
    if split == "all":
        return np.arange(len(y))
    test = []
    for c in range(DIGITS_NUM_CLASSES):
        idx = np.flatnonzero(y == c)
        perm = np.random.default_rng(DIGITS_SPLIT_SEED + c).permutation(idx)
        test.append(perm[:int(round(DIGITS_TEST_FRACTION * len(idx)))])
    test = np.sort(np.concatenate(test))
    if split == "test":
        return test
    mask = np.ones(len(y), dtype=bool)
    mask[test] = False
    return np.flatnonzero(mask)


def load_digits_arrays(split: str = "all"):
    """The digits as numpy arrays.

    Returns ``(x, y)``: ``x`` ``float32 [N, 8, 8, 1]`` in ``[-1, 1]``, ``y`` ``int32 [N]`` in
    ``0..9``; ``N`` is 1,797 (``"all"``), 1,438 (``"train"``) or 359 (``"test"``). Fresh
    copies: safe to modify.
    """
    x, y = _raw_digits()
    idx = digits_split_indices(split)
    xs = (x[idx] / 8.0 - 1.0).astype(np.float32)[..., None]
    return xs, y[idx].copy()


def digits(split: str = "train", *, with_labels: bool = False, image_size=None,
           batch_size: int = 64, shuffle: bool = True, seed: int = 0,
           deterministic: bool = True):
    """scikit-learn's 8x8 digits as a ``tf.data`` pipeline (the offline default).

    Args:
      split: ``"train"`` (1,438), ``"test"`` (359) or ``"all"`` (1,797); see module docs.
      with_labels: yield ``(image, label)`` with ``int32`` labels ``0..9``.
      image_size: ``None`` keeps 8x8; an int or ``(H, W)`` resizes once (bilinear).
      batch_size: global batch size (last partial batch dropped).
      shuffle, seed, deterministic: as in :func:`tfgan_app.data.from_arrays`.

    Returns:
      ``tf.data.Dataset`` of ``float32 [batch_size, 8, 8, 1]`` in ``[-1, 1]`` (or
      ``(images, int32 [batch_size])``), with ``ds.info`` (``num_classes=10``).
    """
    x, y = load_digits_arrays(split)
    return from_arrays(x, y, with_labels=with_labels, value_range=(-1.0, 1.0),
                       num_classes=DIGITS_NUM_CLASSES, image_size=image_size,
                       batch_size=batch_size, shuffle=shuffle, seed=seed,
                       deterministic=deterministic, name="digits", source="digits",
                       split=split, class_names=[str(i) for i in range(10)])
