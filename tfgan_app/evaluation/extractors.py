"""Feature extractors: images -> (features, logits), run in batches.

Three kinds:

* :func:`keras_extractor` -- any ``keras.Model``: features from a chosen layer (default the
  penultimate), logits from the output layer (a softmax output is turned back into
  log-probabilities, which give the same classifier score).
* :func:`inception_extractor` -- InceptionV3 from a **local** ImageNet weights file (nothing is
  downloaded). Resize protocol: images in ``[-1, 1]`` ``[N, H, W, C]``; grayscale (``C == 1``)
  tiled to 3 channels; bilinear resize to 299x299 (``tf.image.resize``, no antialiasing) --
  the protocol of TF-GAN's ``preprocess_image`` -- kept in ``[-1, 1]``, which is InceptionV3's
  own input convention (``keras.applications.inception_v3.preprocess_input``). Features: the
  2048-D global average pool (``avg_pool``); logits: the 1000-way pre-softmax output (top
  weights only).
* The offline default, :func:`dataset_classifier` (:func:`digits_classifier`,
  :func:`mnist_classifier`): a small CNN trained on the dataset at hand and cached on disk;
  its penultimate layer (``features``: 64-D for 8x8, 128-D for larger images) feeds FID/KID/PRDC
  and its logits feed the classifier score and class coverage -- as TF-GAN's MNIST evaluation
  did with its MNIST classifier. Numbers from different extractors are not comparable.

"Streaming": :meth:`FeatureExtractor.__call__` and :meth:`FeatureExtractor.from_sampler` push
images through the network ``batch_size`` at a time and keep only the activations, so a
sampler can be evaluated on 10,000+ samples without ever holding them (or their resizes).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import uuid
import weakref
from typing import Callable, NamedTuple

import numpy as np

from tfgan_app.utils import write_json

__all__ = [
    "Activations",
    "FeatureExtractor",
    "keras_extractor",
    "inception_extractor",
    "check_images",
    "as_sampler",
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
INCEPTION_SIZE = 299


class Activations(NamedTuple):
    """Extractor output: ``features float32 [N, D]`` and ``logits float32 [N, K]`` or ``None``."""

    features: np.ndarray
    logits: np.ndarray | None


# ----------------------------------------------------------------------------- inputs

def check_images(images, name: str = "images", tolerance: float = 0.01) -> np.ndarray:
    """Validate images and return them as ``float32 [N, H, W, C]`` clipped to ``[-1, 1]``.

    Args:
      images: array-like ``[N, H, W, C]`` or ``[N, H, W]`` (a channel axis is added), values
        in ``[-1, 1]`` (values up to ``tolerance`` outside are clipped).
      name: the argument name used in error messages.
      tolerance: allowed overshoot before values are rejected.

    Raises:
      ValueError: wrong rank, empty, non-finite, or values outside ``[-1, 1]`` (e.g. images
        in ``[0, 255]`` or ``[0, 1]`` must be rescaled first).
    """
    try:
        x = np.asarray(images, dtype=np.float32)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a numeric array [N, H, W, C]; got "
                         f"{type(images).__name__}") from None
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4:
        raise ValueError(f"{name} must have shape [N, H, W, C] or [N, H, W]; got {x.shape}")
    if x.shape[0] == 0:
        raise ValueError(f"{name} is empty")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} contains NaN or infinite values")
    lo, hi = float(x.min()), float(x.max())
    if lo < -1.0 - tolerance or hi > 1.0 + tolerance:
        raise ValueError(f"{name} must have values in [-1, 1]; got range [{lo:.3g}, {hi:.3g}] "
                         "(rescale, e.g. x / 127.5 - 1 for uint8 images)")
    return np.clip(x, -1.0, 1.0)


def as_sampler(source, latent_dim: int | None = None, num_classes: int | None = None,
               latent_distribution: str = "normal") -> Callable[[int, int], np.ndarray]:
    """Turn a generator-like object into ``sample(n, seed) -> np.ndarray [n, ...]``.

    Accepted:

    * an object with ``generate(n, seed=...)`` (a ``GANModel``);
    * a ``keras.Model`` generator: input ``z float32 [B, latent_dim]`` drawn from
      ``latent_distribution`` (``"normal"``: N(0, I); ``"uniform"``: U(-1, 1)), or
      ``[z, labels int32 [B]]`` for a conditional generator (labels cycle through
      ``0..num_classes-1`` so classes are balanced);
    * a plain callable ``f(n, seed=...)``.

    Raises:
      ValueError: anything else, or a conditional generator without ``num_classes``.
    """
    import keras

    if hasattr(source, "generate") and callable(source.generate):
        return lambda n, seed: np.asarray(source.generate(n, seed=seed))
    if isinstance(source, keras.Model):
        inputs = source.inputs
        if not inputs:
            raise ValueError("generator model has no defined inputs; build it with keras.Input")
        zdim = latent_dim or int(inputs[0].shape[-1])
        conditional = len(inputs) == 2
        if conditional and not num_classes:
            raise ValueError("conditional generator (two inputs) needs num_classes")
        if latent_distribution not in ("normal", "uniform"):
            raise ValueError(f"latent_distribution must be 'normal' or 'uniform'; got "
                             f"{latent_distribution!r}")

        def sample(n, seed):
            rng = np.random.default_rng(seed)
            if latent_distribution == "normal":
                z = rng.standard_normal((n, zdim)).astype(np.float32)
            else:
                z = rng.uniform(-1.0, 1.0, (n, zdim)).astype(np.float32)
            if conditional:
                labels = (np.arange(n) % num_classes).astype(np.int32)
                out = source([z, labels], training=False)
            else:
                out = source(z, training=False)
            return np.asarray(out)

        return sample
    if callable(source):
        return lambda n, seed: np.asarray(source(n, seed=seed))
    raise ValueError(f"expected a GANModel (with .generate), a keras.Model generator or a "
                     f"callable f(n, seed=...); got {type(source).__name__}")


# ----------------------------------------------------------------------------- extractor

class FeatureExtractor:
    """Images -> :class:`Activations`, run ``batch_size`` images at a time.

    Args:
      fn: ``fn(images float32 [B, H, W, C] in [-1, 1]) -> (features [B, D], logits [B, K] or
        None)`` (tensors or arrays).
      name: a label recorded in ``eval.json``.
      input_shape: expected ``(H, W, C)`` or ``None`` (any).
      info: extra facts to record (e.g. the classifier's test accuracy).
    """

    def __init__(self, fn, name: str = "custom", input_shape=None, info: dict | None = None):
        if not callable(fn):
            raise ValueError(f"fn must be callable; got {fn!r}")
        self.fn = fn
        self.name = name
        self.input_shape = tuple(input_shape) if input_shape is not None else None
        self.info = dict(info or {})

    def __repr__(self):
        return f"FeatureExtractor(name={self.name!r}, input_shape={self.input_shape})"

    def _check(self, x, name):
        x = check_images(x, name)
        if self.input_shape is not None and tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(f"extractor {self.name!r} expects images of shape "
                             f"{self.input_shape}; {name} has shape {tuple(x.shape[1:])}")
        return x

    def _run(self, x):
        feats, logits = self.fn(x)
        feats = np.asarray(feats, dtype=np.float32).reshape(len(x), -1)
        logits = None if logits is None else np.asarray(logits, np.float32).reshape(len(x), -1)
        return feats, logits

    def __call__(self, images, batch_size: int = 256) -> Activations:
        """Extract activations of ``images`` (``float [N, H, W, C]`` in ``[-1, 1]``).

        Returns:
          :class:`Activations` with ``float32 [N, D]`` features and ``[N, K]`` logits (or None).
        """
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}")
        images = np.asarray(images) if not isinstance(images, np.ndarray) else images
        feats, logits = [], []
        for s in range(0, len(images), batch_size):
            f, lg = self._run(self._check(images[s:s + batch_size], "images"))
            feats.append(f)
            logits.append(lg)
        if not feats:
            raise ValueError("images is empty")
        return Activations(np.concatenate(feats),
                           None if logits[0] is None else np.concatenate(logits))

    def from_sampler(self, sampler, n: int, batch_size: int = 256, seed: int = 0,
                     keep_samples: bool = False):
        """Draw ``n`` samples from ``sampler`` in batches and extract their activations.

        Only one batch of images is alive at a time (unless ``keep_samples``).

        Args:
          sampler: anything :func:`as_sampler` accepts (``GANModel``, generator model, callable).
          n: number of samples (> 0). batch_size: samples per batch.
          seed: batch ``i`` uses seed ``default_rng(seed).integers(2**31 - 1, size=...)[i]``.
          keep_samples: also return the images (``float32 [n, H, W, C]``).

        Returns:
          :class:`Activations`, or ``(Activations, images)`` with ``keep_samples``.
        """
        if not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n must be a positive integer; got {n!r}")
        sample = as_sampler(sampler)
        num_batches = math.ceil(n / batch_size)
        seeds = np.random.default_rng(seed).integers(0, 2**31 - 1, size=num_batches)
        feats, logits, kept = [], [], []
        for i in range(num_batches):
            b = min(batch_size, n - i * batch_size)
            x = self._check(sample(b, int(seeds[i])), "generated samples")
            if len(x) != b:
                raise ValueError(f"sampler returned {len(x)} samples when asked for {b}")
            f, lg = self._run(x)
            feats.append(f)
            logits.append(lg)
            if keep_samples:
                kept.append(x)
        acts = Activations(np.concatenate(feats),
                           None if logits[0] is None else np.concatenate(logits))
        return (acts, np.concatenate(kept)) if keep_samples else acts


def _is_softmax(layer):
    act = getattr(layer, "activation", None)
    return act is not None and getattr(act, "__name__", "") == "softmax"


def _layer_output(model, ref, what):
    if isinstance(ref, (int, np.integer)):
        try:
            return model.layers[ref]
        except IndexError:
            raise ValueError(f"{what} index {ref} out of range for a model with "
                             f"{len(model.layers)} layers") from None
    try:
        return model.get_layer(ref)
    except ValueError:
        raise ValueError(f"{what} {ref!r} is not a layer of model {model.name!r}; layers: "
                         f"{[lyr.name for lyr in model.layers]}") from None


def keras_extractor(model, feature_layer="penultimate", logits_layer=-1, preprocess=None,
                    name: str | None = None, info: dict | None = None) -> FeatureExtractor:
    """A :class:`FeatureExtractor` from any built ``keras.Model`` taking images.

    Args:
      model: ``keras.Model`` with one image input ``[B, H, W, C]``.
      feature_layer: layer name or index whose output gives the features; ``"penultimate"``
        (default) means the layer before ``logits_layer`` -- or, for the offline classifiers,
        the layer named ``features``. ``None``: the model output itself is the feature vector
        and there are no logits.
      logits_layer: layer name or index for the logits (default: the output layer). If that
        layer ends in a softmax, ``log(p)`` is returned (same classifier score). ``None``: no
        logits (no IS / class coverage).
      preprocess: optional ``f(tensor [B, H, W, C] in [-1, 1]) -> model input``.
      name: label for reports; info: extra facts to record.

    Returns:
      :class:`FeatureExtractor` (input shape from the model when fully defined).

    Raises:
      ValueError: model without a functional graph (subclassed and unbuilt) or unknown layers.
    """
    import keras
    import tensorflow as tf

    if not isinstance(model, keras.Model):
        raise ValueError(f"model must be a keras.Model; got {type(model).__name__}")
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        inputs = None
    if feature_layer is None:
        fmodel, has_logits, softmax = model, False, False
    else:
        if not inputs:
            raise ValueError("model has no functional graph (use keras.Input / a built "
                             "Sequential), so inner layers cannot be tapped; pass "
                             "feature_layer=None to use the model output as features")
        if feature_layer == "penultimate":
            names = [lyr.name for lyr in model.layers]
            if "features" in names:
                feature_layer = "features"
            else:
                top = _layer_output(model, -1 if logits_layer is None else logits_layer,
                                    "logits_layer")
                feature_layer = names.index(top.name) - 1
                if feature_layer < 0:
                    raise ValueError("model has no layer before its output layer to take "
                                     "features from; pass feature_layer")
        f_layer = _layer_output(model, feature_layer, "feature_layer")
        outputs = [f_layer.output]
        has_logits = logits_layer is not None
        softmax = False
        if has_logits:
            l_layer = _layer_output(model, logits_layer, "logits_layer")
            outputs.append(l_layer.output)
            softmax = _is_softmax(l_layer)
        fmodel = keras.Model(inputs, outputs)

    @tf.function(reduce_retracing=True)
    def run(x):
        if preprocess is not None:
            x = preprocess(x)
        out = fmodel(x, training=False)
        if not has_logits:
            f = out[0] if isinstance(out, (list, tuple)) else out
            return tf.reshape(f, [tf.shape(f)[0], -1]), None
        f, lg = out
        if softmax:
            lg = tf.math.log(tf.maximum(lg, 1e-30))
        return tf.reshape(f, [tf.shape(f)[0], -1]), lg

    def fn(x):
        f, lg = run(tf.convert_to_tensor(x))
        return f.numpy(), (None if lg is None else lg.numpy())

    in_shape = None
    if preprocess is None and inputs and len(inputs) == 1:
        shp = tuple(inputs[0].shape[1:])
        if all(d is not None for d in shp):
            in_shape = shp
    return FeatureExtractor(fn, name or model.name, in_shape, info)


def inception_extractor(weights_path: str, batch_size_hint: int = 64) -> FeatureExtractor:
    """InceptionV3 pool features (2048-D) and logits (1000-D) from local ImageNet weights.

    Resize protocol (see module docstring): ``[-1, 1]`` images, grayscale tiled to RGB,
    bilinear resize to 299x299, kept in ``[-1, 1]``. Any input size and 1 or 3 channels.

    Args:
      weights_path: local weights file for ``keras.applications.InceptionV3`` -- the full
        model (``inception_v3_weights_tf_dim_ordering_tf_kernels.h5`` or a
        ``.weights.h5`` saved from ``InceptionV3(classifier_activation=None)``) giving
        features and logits, or the ``_notop`` file giving features only (no IS).
      batch_size_hint: unused by the computation; recorded in ``info``.

    Returns:
      :class:`FeatureExtractor` named ``"inception_v3"``.

    Raises:
      ValueError: the file does not exist or fits neither the full nor the no-top model.
    """
    import keras
    import tensorflow as tf

    if not isinstance(weights_path, (str, os.PathLike)) or not os.path.isfile(weights_path):
        raise ValueError(f"Inception weights file not found: {weights_path!r}; expected a local "
                         "InceptionV3 ImageNet weights file (nothing is downloaded)")
    weights_path = os.fspath(weights_path)
    errors = []
    model, has_top = None, True
    for include_top in (True, False):
        try:
            kwargs = dict(include_top=include_top, weights=None, input_shape=(299, 299, 3))
            if include_top:
                kwargs["classifier_activation"] = None
            else:
                kwargs["pooling"] = "avg"
            m = keras.applications.InceptionV3(**kwargs)
            m.load_weights(weights_path)
            model, has_top = m, include_top
            break
        except Exception as err:  # noqa: BLE001 -- try the other variant, report both
            errors.append(f"include_top={include_top}: {type(err).__name__}: {err}"[:300])
    if model is None:
        raise ValueError(f"{weights_path!r} fits neither InceptionV3 with nor without top: "
                         + " | ".join(errors))

    def preprocess(x):
        x = tf.cast(x, tf.float32)
        if x.shape[-1] == 1:
            x = tf.tile(x, [1, 1, 1, 3])
        x = tf.image.resize(x, (INCEPTION_SIZE, INCEPTION_SIZE), method="bilinear",
                            antialias=False)
        return tf.clip_by_value(x, -1.0, 1.0)

    if has_top:
        ext = keras_extractor(model, feature_layer="avg_pool", logits_layer="predictions",
                              preprocess=preprocess, name="inception_v3")
    else:
        ext = keras_extractor(model, feature_layer=None, preprocess=preprocess,
                              name="inception_v3")
    ext.info.update({"weights": os.path.abspath(weights_path), "logits": has_top,
                     "resize": "grayscale->RGB tile, bilinear 299x299, [-1, 1]"})
    return ext


# ----------------------------------------------------------------------------- classifiers

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
      num_classes: ``K`` (default ``max(labels) + 1``). name: cache file stem.
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
        path = os.path.join(cache_dir, f"{name}-{key}.keras")
        if path in _MEMO:
            return _MEMO[path]
        if os.path.isfile(path) and os.path.isfile(path + ".json"):
            try:
                model = keras.saving.load_model(path, compile=False)
                with open(path + ".json", encoding="utf-8") as fh:
                    info = json.load(fh)
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
        tmp = f"{path[:-len('.keras')]}.tmp-{os.getpid()}-{uuid.uuid4().hex}.keras"
        model.save(tmp)
        os.replace(tmp, path)
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
