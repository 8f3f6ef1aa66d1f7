"""Feature extractors: images -> (features, logits), run in batches; and :func:`as_sampler`.

Two constructors here, and the offline default in :mod:`tfgan_app.evaluation.classifiers`:

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
* The offline default, :func:`~tfgan_app.evaluation.classifiers.dataset_classifier`: a small
  CNN trained on the dataset at hand and cached on disk. Numbers from different extractors are
  not comparable.

Batches: :meth:`FeatureExtractor.__call__` and :meth:`FeatureExtractor.from_sampler` push
images through the network ``batch_size`` at a time and keep only the activations, so the
network's inputs (e.g. 299x299 Inception resizes) are never all held at once.
:meth:`FeatureExtractor.from_sampler` draws its ``n`` samples with **one** call
``sampler(n, seed)`` -- for a generator, exactly ``GANModel.generate(n, seed=seed)``, which
batches internally.
"""

from __future__ import annotations

import os
from typing import Callable, NamedTuple

import numpy as np

__all__ = [
    "Activations",
    "FeatureExtractor",
    "keras_extractor",
    "inception_extractor",
    "check_images",
    "as_sampler",
]

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


def as_sampler(source, latent_dim: int | None = None,
               num_classes: int | None = None) -> Callable[[int, int], np.ndarray]:
    """Turn a generator-like object into ``sample(n, seed) -> np.ndarray [n, ...]``.

    Accepted:

    * an object with ``generate(n, seed=...)``: a ``GANModel``, or a
      :class:`tfgan_app.sampling.Sampler` (what :meth:`tfgan_app.rundir.RunDir.sampler` gives);
    * a ``keras.Model`` generator taking ``z float32 [B, latent_dim]``, or ``[z, labels int32
      [B]]`` for a conditional one: wrapped in :class:`tfgan_app.sampling.Sampler`, so ``z``
      is the one latent draw of :mod:`tfgan_app.sampling` (``stateless_normal([n, latent_dim],
      seed=[seed, 0])``) and the labels are balanced (``arange(n) % num_classes``) -- the same
      samples as ``GANModel.generate(n, seed=seed)``;
    * a plain callable ``f(n, seed=...)``.

    Args:
      source: see above.
      latent_dim: size of ``z`` for a ``keras.Model`` (default: its first input's last axis).
      num_classes: classes of a conditional (two-input) ``keras.Model`` generator.

    Raises:
      ValueError: anything else, or a conditional generator without ``num_classes``.
    """
    import keras

    if hasattr(source, "generate") and callable(source.generate):
        return lambda n, seed: np.asarray(source.generate(n, seed=seed))
    if isinstance(source, keras.Model):
        from tfgan_app.sampling import Sampler

        inputs = source.inputs
        if not inputs:
            raise ValueError("generator model has no defined inputs; build it with keras.Input")
        conditional = len(inputs) == 2
        if conditional and not num_classes:
            raise ValueError("conditional generator (two inputs) needs num_classes")
        sampler = Sampler(source, latent_dim or int(inputs[0].shape[-1]),
                          num_classes if conditional else None)
        return lambda n, seed: sampler.generate(n, seed=seed)
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

    def _extract(self, images, batch_size, name):
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}")
        feats, logits = [], []
        for s in range(0, len(images), batch_size):
            f, lg = self._run(self._check(images[s:s + batch_size], name))
            feats.append(f)
            logits.append(lg)
        if not feats:
            raise ValueError(f"{name} is empty")
        return Activations(np.concatenate(feats),
                           None if logits[0] is None else np.concatenate(logits))

    def __call__(self, images, batch_size: int = 256) -> Activations:
        """Extract activations of ``images`` (``float [N, H, W, C]`` in ``[-1, 1]``),
        ``batch_size`` images at a time.

        Returns:
          :class:`Activations` with ``float32 [N, D]`` features and ``[N, K]`` logits (or None).
        """
        images = np.asarray(images) if not isinstance(images, np.ndarray) else images
        return self._extract(images, batch_size, "images")

    def from_sampler(self, sampler, n: int, batch_size: int = 256, seed: int = 0,
                     keep_samples: bool = False):
        """Draw ``n`` samples with one call ``sampler(n, seed)`` and extract their activations
        ``batch_size`` at a time.

        The sample set is exactly what the sampler gives for ``(n, seed)`` -- for a generator,
        ``GANModel.generate(n, seed=seed)`` (see :func:`as_sampler`).

        Args:
          sampler: anything :func:`as_sampler` accepts (``GANModel``, generator model, callable).
          n: number of samples (> 0). batch_size: images per extractor batch.
          seed: the sampling seed (``None``: the sampler's choice, e.g. a random one).
          keep_samples: also return the images (``float32 [n, H, W, C]`` in ``[-1, 1]``).

        Returns:
          :class:`Activations`, or ``(Activations, images)`` with ``keep_samples``.
        """
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
            raise ValueError(f"n must be a positive integer; got {n!r}")
        seed = None if seed is None else int(seed)
        x = check_images(as_sampler(sampler)(int(n), seed), "generated samples")
        if len(x) != n:
            raise ValueError(f"sampler returned {len(x)} samples when asked for {n}")
        acts = self._extract(x, batch_size, "generated samples")
        return (acts, x) if keep_samples else acts


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


def _inputs(model):
    try:
        return model.inputs
    except (AttributeError, ValueError):
        return None


def tap_layers(model, feature_layer="penultimate", logits_layer=-1):
    """``(fmodel, has_logits, softmax)``: a ``keras.Model`` on ``model``'s input giving
    ``[features, logits]`` (``feature_layer`` / ``logits_layer`` as in :func:`keras_extractor`),
    whether it gives logits, and whether those "logits" are a softmax's probabilities. Shared
    by the evaluation's extractors and the training doctor's probes."""
    import keras

    if not isinstance(model, keras.Model):
        raise ValueError(f"model must be a keras.Model; got {type(model).__name__}")
    inputs = _inputs(model)
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
        # a single input as itself (a list of one warns when called with a tensor)
        fmodel = keras.Model(inputs[0] if len(inputs) == 1 else inputs, outputs)

    return fmodel, has_logits, softmax


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
    import tensorflow as tf

    fmodel, has_logits, softmax = tap_layers(model, feature_layer, logits_layer)
    inputs = _inputs(model)

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


def inception_extractor(weights_path: str) -> FeatureExtractor:
    """InceptionV3 pool features (2048-D) and logits (1000-D) from local ImageNet weights.

    Resize protocol (see module docstring): ``[-1, 1]`` images, grayscale tiled to RGB,
    bilinear resize to 299x299, kept in ``[-1, 1]``. Any input size and 1 or 3 channels.

    Args:
      weights_path: local weights file for ``keras.applications.InceptionV3`` -- the full
        model (``inception_v3_weights_tf_dim_ordering_tf_kernels.h5`` or a
        ``.weights.h5`` saved from ``InceptionV3(classifier_activation=None)``) giving
        features and logits, or the ``_notop`` file giving features only (no IS).

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
