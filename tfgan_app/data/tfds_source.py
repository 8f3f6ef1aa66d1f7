"""TensorFlow Datasets image datasets by name: ``from_tfds``.

The image feature is ``"image"`` when present (else the first ``tfds.features.Image``), the
label feature ``"label"`` when it is a ``ClassLabel`` (else the first ``ClassLabel``); both
can be named explicitly. ``tensorflow_datasets`` is imported lazily.
"""

from __future__ import annotations

import difflib

import numpy as np
import tensorflow as tf

from tfgan_app.data import _pipeline as P


def _tfds():
    import tensorflow_datasets as tfds

    return tfds


def tfds_names():
    """Names of the TFDS builders known to the installed ``tensorflow_datasets``."""
    return list(_tfds().list_builders(with_community_datasets=False))


def check_tfds_name(name: str) -> str:
    """Return the builder name part of ``name`` (``"mnist"`` for ``"mnist:3.0.1"``).

    Raises ``ValueError`` with close matches (difflib) when TFDS does not know the name.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"TFDS dataset name must be a non-empty string, got {name!r}")
    base = name.split(":")[0].split("/")[0]
    known = tfds_names()
    if base not in known:
        close = difflib.get_close_matches(base, known, n=5, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else \
            " (see tfds.list_builders() for the full list)"
        raise ValueError(f"unknown TFDS dataset {base!r}{hint}")
    return base


def prepared_builder(name: str, data_dir=None, download: bool = True):
    """The TFDS builder of ``name`` (checked: close names suggested), downloaded and prepared
    first when ``download``; ``ValueError`` saying what to do when that fails."""
    check_tfds_name(name)
    builder = _tfds().builder(name, data_dir=data_dir)
    if download:
        try:
            builder.download_and_prepare()
        except Exception as e:  # network/permission errors come in many types
            raise ValueError(f"could not download/prepare TFDS dataset {name!r} ({e}); "
                             "without network, prepare it elsewhere and pass data_dir=..., "
                             "download=False") from e
    return builder


def _find_feature(features, kind, preferred, explicit, what, name):
    keys = list(features.keys())
    if explicit is not None:
        if explicit not in keys or not isinstance(features[explicit], kind):
            raise ValueError(f"TFDS dataset {name!r} has no {what} feature {explicit!r}; "
                             f"features: {keys}")
        return explicit
    if preferred in keys and isinstance(features[preferred], kind):
        return preferred
    for k in keys:
        if isinstance(features[k], kind):
            return k
    return None


def from_tfds(name: str, split: str = "train", data_dir=None, image_size=None,
              with_labels: bool = False, *, batch_size: int = P.DEFAULT_BATCH_SIZE,
              shuffle: bool = True, seed: int = 0, download: bool = True, cache=True,
              deterministic: bool = True, shuffle_buffer=None, center_crop=False,
              image_key=None, label_key=None):
    """Any TFDS image dataset by name (``mnist``, ``fashion_mnist``, ``cifar10``, ``celeb_a``...).

    Args:
      name: TFDS builder name, optionally with config/version (``"mnist:3.*.*"``).
      split: TFDS split string (``"train"``, ``"test"``, ``"train[:10%]"``...).
      data_dir: TFDS data folder (default: TFDS's, ``~/tensorflow_datasets``).
      image_size: ``None`` keeps the dataset's fixed size (required for datasets with
        variable image sizes); an int or ``(H, W)`` resizes (bilinear, antialiased).
      with_labels: yield ``(image, int32 label)`` from the dataset's ``ClassLabel`` feature.
      batch_size: global batch size (last partial batch dropped).
      shuffle: shuffle files (seeded) and examples (reshuffled every epoch).
      seed, deterministic, shuffle_buffer: see :mod:`tfgan_app.data._pipeline`.
      download: run ``download_and_prepare`` first (needs network unless prepared).
      cache: ``True``: cache decoded ``uint8`` images in memory; a string: a cache file.
      center_crop: ``True``/int: central square crop before resizing (e.g. ``celeb_a``).
      image_key, label_key: feature names, when the defaults do not fit.

    Returns:
      ``tf.data.Dataset`` of ``float32 [batch_size, H, W, C]`` in ``[-1, 1]`` (or
      ``(images, int32 [batch_size])``) with ``ds.info`` (``split``, ``class_names``).

    Raises:
      ValueError: unknown name (close names suggested), no image feature, no label
        feature when ``with_labels``, variable image size without ``image_size``, dataset
        not prepared/downloadable.
    """
    tfds = _tfds()
    batch_size = P.check_batch_size(batch_size)
    size = P.normalize_image_size(image_size)
    builder = prepared_builder(name, data_dir, download)
    features = builder.info.features
    img_key = _find_feature(features, tfds.features.Image, "image", image_key, "image", name)
    if img_key is None:
        raise ValueError(f"TFDS dataset {name!r} has no image feature; features: "
                         f"{list(features.keys())}")
    lbl_key = _find_feature(features, tfds.features.ClassLabel, "label", label_key, "label",
                            name)
    if with_labels and lbl_key is None:
        raise ValueError(f"with_labels=True but TFDS dataset {name!r} has no ClassLabel "
                         f"feature; features: {list(features.keys())}")
    h, w, c = features[img_key].shape
    if c is None:
        raise ValueError(f"TFDS dataset {name!r}: image feature {img_key!r} has an unknown "
                         "number of channels")
    if size is None:
        if center_crop or h is None or w is None:
            raise ValueError(f"TFDS dataset {name!r} has image shape {(h, w, c)}"
                             + (" (variable size)" if h is None or w is None else "")
                             + "; pass image_size=(H, W)")
        size_out = (h, w)
    else:
        size_out = size
    shape = (int(size_out[0]), int(size_out[1]), int(c))

    read_config = tfds.ReadConfig(shuffle_seed=seed, try_autocache=False)
    try:
        ds = builder.as_dataset(split=split, shuffle_files=shuffle, read_config=read_config)
    except Exception as e:
        raise ValueError(f"could not read split {split!r} of TFDS dataset {name!r}: {e}") from e

    num_examples = int(ds.cardinality().numpy())
    if num_examples < 0:
        try:
            num_examples = int(builder.info.splits[split].num_examples)
        except Exception:  # unknown split info (not prepared, mocked...)
            num_examples = None
    P.check_enough(num_examples, batch_size, f"TFDS {name!r} split {split!r}")

    def image_of(ex):
        img = ex[img_key]
        if img.dtype != tf.uint8:
            img = tf.image.convert_image_dtype(img, tf.uint8, saturate=True)
        if size is not None or center_crop:
            img = P.resize_uint8(img, size, center_crop=center_crop)
        return tf.ensure_shape(img, shape)

    if with_labels:
        ds = ds.map(lambda ex: (image_of(ex), tf.cast(ex[lbl_key], tf.int32)),
                    num_parallel_calls=P.AUTOTUNE, deterministic=deterministic)
    else:
        ds = ds.map(image_of, num_parallel_calls=P.AUTOTUNE, deterministic=deterministic)
    ds = P.element_pipeline(ds, batch_size=batch_size, shuffle=shuffle, seed=seed, cache=cache,
                            deterministic=deterministic, shuffle_buffer=shuffle_buffer,
                            num_examples=num_examples, element_bytes=int(np.prod(shape)),
                            with_labels=with_labels)
    num_classes = class_names = None
    if lbl_key is not None:
        num_classes = features[lbl_key].num_classes
        names = features[lbl_key].names
        class_names = list(names) if names and len(names) <= 1000 else None
    info = P.make_info(name=f"tfds:{name}", source="tfds", sample_shape=shape,
                       num_examples=num_examples, batch_size=batch_size,
                       with_labels=with_labels, num_classes=num_classes,
                       class_names=class_names, seed=seed, split=split,
                       tfds_name=name, data_dir=None if data_dir is None else str(data_dir))
    return P.attach(ds, info)
