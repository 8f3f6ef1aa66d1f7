"""The offline evaluation classifiers: a small CNN trained on the dataset at hand, cached on disk.

:func:`dataset_classifier` trains (or loads) it for a
:class:`~tfgan_app.evaluation.datasets.RealImages` -- :func:`digits_classifier` and
:func:`mnist_classifier` for the built-in sets -- and :func:`classifier_extractor` wraps it as
the default :class:`~tfgan_app.evaluation.extractors.FeatureExtractor`: its penultimate layer
(``features``: 64-D for 8x8 images, 128-D for larger ones) feeds FID/KID/PRDC and its logits
feed the classifier score and class coverage -- as TF-GAN's MNIST evaluation did with its
MNIST classifier. :func:`classify` labels images with such a classifier.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import weakref

import numpy as np

from tfgan_app.evaluation.extractors import (FeatureExtractor, _is_softmax, check_images,
                                             keras_extractor)
from tfgan_app.utils import atomic_path, read_json, write_json

__all__ = [
    "train_classifier",
    "dataset_classifier",
    "digits_classifier",
    "mnist_classifier",
    "classifier_info",
    "classifier_extractor",
    "classify",
    "default_cache_dir",
]

CLASSIFIER_VERSION = 1


def default_cache_dir() -> str:
    """``$TFGAN_APP_CACHE_DIR`` or ``~/.cache/tfgan_app``."""
    return os.environ.get("TFGAN_APP_CACHE_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "tfgan_app")


def _build_classifier(input_shape, num_classes, seed):
    import keras

    init = lambda i: keras.initializers.GlorotUniform(seed=seed + i)  # noqa: E731
    small = input_shape[0] < 16
    inp = keras.Input(input_shape, name="images")
    h = keras.layers.Conv2D(32, 3, padding="same", activation="relu",
                            kernel_initializer=init(1))(inp)
    if not small:
        h = keras.layers.MaxPooling2D()(h)
    h = keras.layers.Conv2D(64, 3, padding="same", activation="relu",
                            kernel_initializer=init(2))(h)
    h = keras.layers.MaxPooling2D()(h)
    h = keras.layers.Flatten()(h)
    h = keras.layers.Dropout(0.3, seed=seed + 3)(h)
    f = keras.layers.Dense(64 if small else 128, activation="relu", name="features",
                           kernel_initializer=init(4))(h)
    h = keras.layers.Dropout(0.3, seed=seed + 5)(f)
    out = keras.layers.Dense(num_classes, name="logits", kernel_initializer=init(6))(h)
    return keras.Model(inp, out, name="eval_classifier")


def _fingerprint(*arrays, extra=""):
    h = hashlib.sha1(f"v{CLASSIFIER_VERSION}:{extra}".encode())
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str((a.shape, str(a.dtype))).encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


_MEMO: dict[str, object] = {}


def train_classifier(images, labels, test_images=None, test_labels=None, *,
                     num_classes: int | None = None, name: str = "classifier",
                     cache_dir: str | None = None, epochs: int | None = None, seed: int = 0,
                     verbose: int = 0):
    """Train (or load from cache) the small evaluation CNN.

    Architecture: conv32 - [pool] - conv64 - pool - dropout - dense ``features`` (64-D if the
    images are smaller than 16 px, else 128-D, ReLU) - dropout - dense ``logits``. Adam 1e-3,
    batch 64, ``epochs`` (default ``clip(ceil(30000 / N), 3, 40)``). Training reseeds the
    global Python/NumPy/TensorFlow generators (``keras.utils.set_random_seed(seed)``).

    The model is cached as ``<cache_dir>/<name>-<fingerprint>.keras`` with a ``.json``
    sidecar (test accuracy, sizes); the fingerprint covers the data, labels, settings and a
    code version, and both files are written atomically (temporary file then ``os.replace``).

    Args:
      images: ``float [N, H, W, C]`` in ``[-1, 1]``; labels: ``int [N]`` in ``0..K-1``.
      test_images, test_labels: held-out set for the reported accuracy (optional).
      num_classes: ``K`` (default ``max(labels) + 1``). name: cache file stem (characters
        other than letters, digits, ``_.-`` become ``_``; its last 80 kept).
      cache_dir: folder (default :func:`default_cache_dir`); ``False`` disables caching.
      epochs, seed, verbose: training settings.

    Returns:
      ``(model, info)``: ``keras.Model`` images -> logits ``float32 [N, K]``, and a dict with
      ``test_accuracy`` (or ``None``), ``num_train``, ``num_test``, ``path``.
    """
    import keras

    x = check_images(images, "images")
    y = np.asarray(labels).astype(np.int64).reshape(-1)
    if len(y) != len(x):
        raise ValueError(f"labels must have one entry per image; got {len(y)} for {len(x)}")
    k = int(num_classes or (y.max() + 1))
    if y.min() < 0 or y.max() >= k:
        raise ValueError(f"labels must lie in 0..{k - 1}; got range {y.min()}..{y.max()}")
    xt = yt = None
    if test_images is not None:
        xt = check_images(test_images, "test_images")
        yt = np.asarray(test_labels).astype(np.int64).reshape(-1)
        if len(yt) != len(xt):
            raise ValueError("test_labels must have one entry per test image")
    if epochs is None:
        epochs = int(np.clip(math.ceil(30000 / len(x)), 3, 40))
    key = _fingerprint(x, y, *(() if xt is None else (xt, yt)),
                       extra=f"{k}:{epochs}:{seed}")
    path = None
    if cache_dir is not False:
        cache_dir = cache_dir or default_cache_dir()
        # a dataset's name may be a path (``idx:/data/t10k-images...``): one file name of it
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(name)).strip("_.")[-80:] or "classifier"
        path = os.path.join(cache_dir, f"{stem}-{key}.keras")
        if path in _MEMO:
            return _MEMO[path]
        if os.path.isfile(path) and os.path.isfile(path + ".json"):
            try:
                model = keras.saving.load_model(path, compile=False)
                info = read_json(path + ".json")
                _MEMO[path] = (model, info)
                return model, info
            except Exception:  # noqa: BLE001 -- a corrupt cache entry is simply retrained
                pass
    keras.utils.set_random_seed(seed)
    model = _build_classifier(x.shape[1:], k, seed)
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    model.fit(x, y, epochs=epochs, batch_size=64, verbose=verbose)
    acc = None
    if xt is not None:
        pred = np.argmax(model.predict(xt, batch_size=512, verbose=0), axis=1)
        acc = float(np.mean(pred == yt))
    info = {"name": name, "test_accuracy": acc, "num_train": int(len(x)),
            "num_test": None if xt is None else int(len(xt)), "epochs": epochs, "seed": seed,
            "num_classes": k, "input_shape": list(x.shape[1:]), "fingerprint": key,
            "path": path, "version": CLASSIFIER_VERSION}
    if path is not None:
        os.makedirs(cache_dir, exist_ok=True)
        with atomic_path(path, suffix=".keras") as tmp:
            model.save(tmp)
        write_json(path + ".json", info, sort_keys=True)
        _MEMO[path] = (model, info)
    return model, info


def dataset_classifier(real, cache_dir: str | None = None):
    """The offline classifier for a :class:`~tfgan_app.evaluation.datasets.RealImages`:
    trained on its reference images and labels, tested on its held-out images.

    Returns:
      ``(model, info)`` as :func:`train_classifier`.

    Raises:
      ValueError: the dataset has no labels.
    """
    if real.reference_labels is None:
        raise ValueError(f"dataset {real.name!r} has no labels, so no offline classifier can be "
                         "trained; pass an extractor (keras_extractor / inception_extractor)")
    return train_classifier(real.reference, real.reference_labels, real.heldout,
                            real.heldout_labels, num_classes=real.num_classes,
                            name=f"{real.name}_classifier", cache_dir=cache_dir)


def digits_classifier(cache_dir: str | None = None):
    """The digits classifier (8x8x1 images in ``[-1, 1]`` -> 10 logits), trained on the
    ``train`` half of scikit-learn's digits and cached; its accuracy on the ``test`` half is
    in :func:`classifier_info` (about 0.98).

    Returns:
      ``keras.Model``: input ``float32 [N, 8, 8, 1]`` in ``[-1, 1]``, output logits
      ``float32 [N, 10]``; the 64-D penultimate layer is named ``features``.
    """
    from tfgan_app.evaluation import datasets

    return dataset_classifier(datasets.real_images("digits"), cache_dir)[0]


def mnist_classifier(idx_dir: str, cache_dir: str | None = None):
    """The MNIST classifier trained from IDX files (see
    :func:`tfgan_app.evaluation.datasets.load_mnist_idx`; with only the ``t10k`` files it
    trains on the first 5,000 test images and is tested on the last 5,000).

    Returns:
      ``keras.Model``: ``float32 [N, 28, 28, 1]`` in ``[-1, 1]`` -> logits ``[N, 10]``,
      128-D ``features`` layer.
    """
    from tfgan_app.evaluation import datasets

    return dataset_classifier(datasets.real_images({"name": "mnist", "idx_dir": idx_dir}),
                              cache_dir)[0]


def classifier_info(model) -> dict:
    """Training facts (``test_accuracy``, ``num_train``, ...) of a classifier returned by
    :func:`digits_classifier` / :func:`mnist_classifier` / :func:`train_classifier` in this
    process; ``{}`` for other models."""
    for m, info in _MEMO.values():
        if m is model:
            return dict(info)
    return {}


def classifier_extractor(model, info: dict | None = None) -> FeatureExtractor:
    """Extractor from an offline classifier: ``features`` layer + logits."""
    return keras_extractor(model, feature_layer="penultimate", logits_layer=-1,
                           name=(info or classifier_info(model)).get("name", model.name),
                           info=info or classifier_info(model))


_CLASSIFY_EXTRACTORS = weakref.WeakKeyDictionary()


def to_classifier_input(images, classifier) -> np.ndarray:
    """``images`` ``[N, H, W, C]`` area-resized to ``classifier``'s input size and, when the
    channel counts differ, averaged to grey and repeated to its channels."""
    import tensorflow as tf

    x = np.asarray(images, np.float32)
    h, w, c = classifier.inputs[0].shape[1:]
    if x.shape[1:3] != (h, w):
        x = tf.image.resize(x, [h, w], method="area").numpy()
    return x if x.shape[-1] == c else np.repeat(x.mean(-1, keepdims=True), c, axis=-1)


def classify(images, classifier=None, batch_size: int = 512):
    """Classify images with a classifier (default: :func:`digits_classifier`).

    Args:
      images: ``float [N, H, W, C]`` (or ``[N, H, W]``) in ``[-1, 1]``, shaped as the
        classifier expects (8x8x1 for digits).
      classifier: ``keras.Model`` images -> logits (or softmax probabilities).
      batch_size: images per batch.

    Returns:
      ``(labels int64 [N], confidences float32 [N])``: argmax class and its softmax
      probability in ``(0, 1]``.
    """
    import tensorflow as tf

    model = classifier if classifier is not None else digits_classifier()
    # One extractor (one traced tf.function) per classifier, not one per call.
    ext = _CLASSIFY_EXTRACTORS.get(model)
    if ext is None:
        ext = _CLASSIFY_EXTRACTORS[model] = keras_extractor(model, feature_layer=None,
                                                            name="classifier")
    probs_softmax = _is_softmax(model.layers[-1]) if getattr(model, "layers", None) else False
    out = ext(images, batch_size=batch_size).features
    probs = out if probs_softmax else tf.nn.softmax(out.astype(np.float64), axis=-1).numpy()
    return np.argmax(probs, axis=1).astype(np.int64), np.max(probs, axis=1).astype(np.float32)
