"""Using an export: load a SavedModel (numpy in and out), draw a PNG from it, run TFLite.

Generator exports load as :class:`ExportedGenerator`, image-to-image exports as
:class:`ExportedTranslator` (:func:`load_exported` picks by the recorded kind).

TensorFlow is imported when a SavedModel is loaded; a TFLite export runs with the
``ai_edge_litert`` runtime when it is installed (else ``tf.lite``).
"""

from __future__ import annotations

import copy
import json
import math
import os
import warnings

import numpy as np

from tfgan_app import images as _images
from tfgan_app.export import contract as c


def _resolve_saved_model_dir(path):
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"export directory not found: {path!r}")
    if not os.path.isdir(path):
        raise NotADirectoryError(f"not a directory: {path!r}")
    if os.path.isfile(os.path.join(path, c.SAVED_MODEL_FILENAME)):
        return path
    if os.path.isfile(os.path.join(path, c.TFLITE_FILENAME)):
        raise ValueError(f"{path!r} holds a TFLite export ({c.TFLITE_FILENAME}); use tflite_generate()")
    versions = [v for v in c.list_versions(path)
                if os.path.isfile(os.path.join(path, str(v), c.SAVED_MODEL_FILENAME))]
    if versions:
        return os.path.join(path, str(versions[-1]))
    raise ValueError(
        f"{path!r} is not a SavedModel: no {c.SAVED_MODEL_FILENAME} in it and no numbered "
        "version directory holding one"
    )


def _read_metadata(path) -> dict:
    meta_path = os.path.join(path, c.METADATA_RELPATH)
    if not os.path.isfile(meta_path):
        return {}
    with open(meta_path, encoding="utf-8") as f:
        return json.load(f)


def _open(obj, path):
    """Set ``obj``'s ``path`` (the version directory), ``version``, ``module`` (what
    ``tf.saved_model.load`` returned) and ``signatures``."""
    import tensorflow as tf

    obj.path = _resolve_saved_model_dir(path)
    name = os.path.basename(os.path.normpath(obj.path))
    obj.version = int(name) if name.isdigit() else None
    try:
        obj.module = tf.saved_model.load(obj.path)
    except Exception as e:  # noqa: BLE001
        raise ValueError(f"cannot load SavedModel {obj.path!r}: {e}") from e
    obj.signatures = dict(obj.module.signatures)


class ExportedGenerator:
    """A loaded export, with numpy in and out.

    Args:
        path: a version directory (holding ``saved_model.pb``) or a base directory (its
            highest version is loaded).

    Attributes:
        path: the version directory loaded.
        version: int version (the directory name) or None.
        module: what ``tf.saved_model.load`` returned.
        signatures: dict name -> concrete function.
        latent_dim: int.
        num_classes: None or int.
        conditional: bool, whether the signatures take ``labels``.
        output_key: ``"images"`` or ``"samples"``, the output of ``serving_default``.
        output_shape: tuple, the generator's output shape without the batch axis.
        metadata: the export's JSON description (empty dict if it has none).
        kind: ``"images"``, ``"conditional_images"`` or ``"points"`` (None for exports
            written before the kind was recorded).
    """

    def __init__(self, path):
        _open(self, path)
        missing = {c.SERVING_SIGNATURE, c.SAMPLE_SIGNATURE} - set(self.signatures)
        if missing:
            raise ValueError(
                f"{self.path!r} is a SavedModel but not a tfgan_app generator export: "
                f"missing signatures {sorted(missing)} (has {sorted(self.signatures)})"
            )
        self.metadata = _read_metadata(self.path)
        self.kind = self.metadata.get("kind")
        serve = self.signatures[c.SERVING_SIGNATURE]
        specs = serve.structured_input_signature[1]
        out_spec = serve.structured_outputs
        if "z" not in specs or not ({c.IMAGES, c.SAMPLES} & set(out_spec)):
            raise ValueError(
                f"{self.path!r}: serving_default takes {sorted(specs)} and returns {sorted(out_spec)}; "
                "expected z (and labels) -> images or samples"
            )
        self.latent_dim = int(specs["z"].shape[-1])
        self.num_classes = self.metadata.get("num_classes")
        self.conditional = c.LABELS in specs
        self.output_key = c.IMAGES if c.IMAGES in out_spec else c.SAMPLES
        self.output_shape = tuple(int(d) for d in out_spec[self.output_key].shape[1:])

    def _labels(self, labels, n, what):
        if not self.conditional:
            if labels is not None:
                raise ValueError("this export is unconditional: labels must be None")
            return {}
        if labels is None:
            raise ValueError("this export is conditional: pass labels (int [N])")
        return {c.LABELS: c.labels_array(labels, n, what)}

    def generate(self, z, labels=None):
        """Run ``serving_default``.

        Args:
            z: float array ``[N, latent_dim]``.
            labels: int ``[N]`` (or a scalar, repeated) for conditional exports, else None.

        Returns:
            np.ndarray float32 ``[N, *output_shape]``, in ``[-1, 1]`` for tanh generators.
        """
        z = np.asarray(z, dtype=np.float32)
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"z must have shape [N, {self.latent_dim}], got {list(z.shape)}")
        kw = self._labels(labels, z.shape[0], "row of z")
        if self.conditional and kw[c.LABELS].size != z.shape[0]:
            raise ValueError("labels must have one entry per row of z")
        out = self.signatures[c.SERVING_SIGNATURE](z=z, **kw)
        return out[self.output_key].numpy()

    def _run(self, signature, count, count_name, labels, **scalars):
        """Run ``sample``/``interpolate`` for ``count`` outputs; numpy dict out."""
        if signature not in self.signatures:
            raise ValueError(f"{self.path!r} was exported without the {signature} signature")
        n = int(count)
        if n < 1:
            raise ValueError(f"{count_name} must be >= 1, got {count}")
        if self.conditional and labels is None:
            labels = np.zeros([0], np.int32)
        kw = self._labels(labels, n, "step" if signature == c.INTERPOLATE_SIGNATURE else "sample")
        args = {name: np.asarray(value, c.INPUT_DTYPES[name])
                for name, value in {count_name: n, **scalars}.items()}
        out = self.signatures[signature](**args, **kw)
        return {k: v.numpy() for k, v in out.items()}

    def sample(self, num_samples, seed=0, labels=None):
        """Run ``sample``: the generator on ``sampling.latent_vectors(num_samples, L, seed)``.

        Args:
            num_samples: int >= 1.
            seed: int (int64); equal seeds give equal outputs.
            labels: conditional exports: int ``[num_samples]``, a scalar (repeated), or
                None/empty for labels drawn from the seed. Unconditional: None.

        Returns:
            dict of numpy arrays: ``images`` uint8 ``[N, H, W, C]`` and
            ``images_png_bytes`` object ``[N]`` of ``bytes``; or ``samples`` float32 for
            non-image generators.
        """
        return self._run(c.SAMPLE_SIGNATURE, num_samples, "num_samples", labels, seed=seed)

    def interpolate(self, seed_a, seed_b, steps=8, labels=None):
        """Run ``interpolate``: ``steps`` outputs from ``sample(1, seed_a)`` to ``sample(1, seed_b)``.

        Args:
            seed_a, seed_b: int (int64) seeds of the two ends.
            steps: int >= 1.
            labels: as for :meth:`sample`, with ``steps`` entries (None/empty: one label
                drawn from ``seed_a``).

        Returns:
            dict as for :meth:`sample`, with ``steps`` entries.
        """
        return self._run(c.INTERPOLATE_SIGNATURE, steps, "steps", labels, seed_a=seed_a, seed_b=seed_b)

    def __repr__(self):
        return (
            f"ExportedGenerator(path={self.path!r}, latent_dim={self.latent_dim}, "
            f"num_classes={self.num_classes}, output_shape={self.output_shape}, "
            f"signatures={sorted(self.signatures)})"
        )


class ExportedTranslator:
    """A loaded image-to-image export (``kind`` ``"translation"`` or ``"cyclegan"``), with
    numpy in and out, translating in one direction.

    What ``tfgan-app sample --saved-model DIR --input IMAGE`` calls; the checks of
    :func:`tfgan_app.export.contract.source_size_problem` run before anything is sent to
    the graph, so a bad image gets a ``ValueError`` naming its shape and what was expected.

    Args:
        path: a version directory (holding ``saved_model.pb``) or a base directory (its
            highest version is loaded).
        direction: a CycleGAN export's direction, ``"a_to_b"`` (default, what
            ``serving_default`` translates) or ``"b_to_a"`` (also ``AtoB``/``BtoA``:
            :func:`~tfgan_app.export.contract.direction_name`); a one-way (translation)
            export takes None or ``"a_to_b"``.

    Attributes:
        path, version, module, signatures, metadata: as :class:`ExportedGenerator`.
        kind: ``"translation"`` or ``"cyclegan"``.
        directions: the directions the export has (``()`` for a one-way export);
        direction: the one this object translates (None for a one-way export).
        source_shape: ``(h, w, Cs)`` the model was trained on; output_shape: ``(H, W, C)``
            for that size; scale: ``H // h``; size_multiple: what other sizes must be
            divisible by; fixed_size: whether only ``(h, w)`` is accepted; max_samples: the
            largest batch one call of a signature takes (larger inputs are split here).
    """

    def __init__(self, path, direction=None):
        _open(self, path)
        self.metadata = _read_metadata(self.path)
        self.kind = self.metadata.get("kind") or "translation"
        self.directions = tuple(d for d in c.DIRECTIONS
                                if c.DIRECTION_SIGNATURES[d][0] in self.signatures)
        expected = c.CYCLEGAN_SIGNATURES if self.directions else c.TRANSLATION_SIGNATURES
        missing = set(expected) - set(self.signatures)
        if missing:
            raise ValueError(f"{self.path!r} is not a tfgan_app translation export: missing "
                             f"signatures {sorted(missing)} (has {sorted(self.signatures)})")
        self.max_samples = int(self.metadata.get("max_samples") or c.DEFAULT_MAX_SAMPLES)
        self._set_direction(direction)

    def _set_direction(self, direction):
        if not self.directions:
            if direction is not None and c.direction_name(direction) != "a_to_b":
                raise ValueError(f"{self.path!r} is a one-way ({self.kind}) export: it "
                                 "translates source to target only; a direction other than "
                                 "a_to_b needs the export of a CycleGAN run")
            self.direction = None
            self.translate_signature, self.png_signature = (c.TRANSLATE_SIGNATURE,
                                                            c.TRANSLATE_PNG_SIGNATURE)
            meta = self.metadata
        else:
            self.direction = c.direction_name("a_to_b" if direction is None else direction)
            self.translate_signature, self.png_signature = c.DIRECTION_SIGNATURES[self.direction]
            meta = {**self.metadata, **(self.metadata.get("directions") or {}).get(
                self.direction, {})}
        spec = self.signatures[self.translate_signature].structured_input_signature[1][c.SOURCE]
        self.source_shape = tuple(int(d) for d in meta.get("source_shape") or spec.shape[1:])
        self.output_shape = tuple(int(d) for d in meta["output_shape"])
        self.scale = int(meta.get("scale") or 1)
        self.size_multiple = int(meta.get("size_multiple") or 1)
        self.fixed_size = bool(meta.get("fixed_size", spec.shape[1] is not None))

    def for_direction(self, direction) -> "ExportedTranslator":
        """The same loaded export translating in ``direction`` (nothing is loaded again)."""
        other = copy.copy(self)
        other._set_direction(direction)
        return other

    @property
    def target_shape(self) -> tuple:
        """``(H, W, C)`` for sources of the training size (``output_shape``)."""
        return self.output_shape

    def size_problem(self, shape) -> str | None:
        """What is wrong with one source image of ``shape`` (``(h, w, Cs)``) for this model,
        or None when it fits (sizes divisible by ``size_multiple``, the channel count)."""
        return c.source_size_problem((1, *shape), {
            "source_shape": self.source_shape, "size_multiple": self.size_multiple,
            "fixed_size": self.fixed_size})

    def accepts(self, shape) -> bool:
        """Whether one source image of ``shape`` (``(h, w, Cs)``) fits this model."""
        return len(tuple(shape)) == 3 and self.size_problem(shape) is None

    def check_sources(self, sources) -> np.ndarray:
        """``sources`` as float32 ``[N, h, w, Cs]``; ``ValueError`` naming the shape (or
        range) and what this model takes otherwise."""
        sources = np.asarray(sources)
        if sources.dtype.kind not in "fiu":
            raise ValueError(f"source images must be numbers, got {sources.dtype}")
        problem = (self.size_problem(sources.shape[1:]) if sources.ndim == 4 else
                   c.source_size_problem(sources.shape, {"source_shape": self.source_shape}))
        if problem is None and len(sources) == 0:
            problem = "no source images (N = 0)"
        if problem:
            raise ValueError(problem)
        sources = sources.astype(np.float32)
        lo, hi = float(sources.min()), float(sources.max())
        if not np.isfinite([lo, hi]).all() or lo < -1.001 or hi > 1.001:
            raise ValueError(f"source images must be floats in [-1, 1] (uint8 x: x / 127.5 - 1), "
                             f"got values in [{lo:g}, {hi:g}]")
        return sources

    def _call(self, signature, name, batch):
        import tensorflow as tf

        try:
            return self.signatures[signature](**{name: tf.constant(batch)})
        except tf.errors.InvalidArgumentError as e:
            lines = [ln for ln in str(e).splitlines() if "assertion failed" in ln]
            raise ValueError(f"{signature}: {lines[0] if lines else str(e).strip()[:500]}") from None

    def translate(self, sources) -> np.ndarray:
        """Run ``translate``: float32 ``[N, scale*h, scale*w, C]`` in ``[-1, 1]`` for
        ``sources`` float ``[N, h, w, Cs]`` in ``[-1, 1]`` (``TranslationGAN.translate``'s
        result for the exported generator)."""
        sources = self.check_sources(sources)
        k = self.max_samples
        return np.concatenate([self._call(self.translate_signature, c.SOURCE,
                                          sources[i:i + k])[c.IMAGES].numpy()
                               for i in range(0, len(sources), k)])

    __call__ = translate

    def translate_png(self, png_bytes) -> list:
        """Run ``translate_png``: one translated PNG file (``bytes``) per PNG file in
        ``png_bytes`` (a sequence of ``bytes``, one size a call). ``ValueError`` naming the
        problem for files that are not PNGs, of another channel count or size."""
        items = [bytes(b) for b in np.asarray(png_bytes, dtype=object).reshape(-1)]
        if not items:
            raise ValueError("no PNG files to translate")
        k, out = self.max_samples, []
        for i in range(0, len(items), k):
            batch = np.array(items[i:i + k], dtype=object)
            out += list(self._call(self.png_signature, c.SOURCE_PNG,
                                   batch)[c.IMAGES_PNG].numpy())
        return out

    def __repr__(self):
        way = f"direction={self.direction!r}, " if self.direction else ""
        return (f"ExportedTranslator(path={self.path!r}, {way}source_shape={self.source_shape}"
                f", output_shape={self.output_shape}, size_multiple={self.size_multiple})")


def load_exported(path):
    """Load an export written by :func:`tfgan_app.export.export_generator`.

    Args:
        path: a version directory (holding ``saved_model.pb``) or a base directory
            (its highest version is loaded).

    Returns:
        ExportedGenerator: ``.generate(z, labels)``, ``.sample(n, seed, labels)``,
        ``.interpolate(seed_a, seed_b, steps)``, ``.signatures``, ``.module``; or, for an
        image-to-image export (``kind == "translation"``), :class:`ExportedTranslator`:
        ``.translate(sources)``, ``.translate_png(png_bytes)``.

    Raises:
        FileNotFoundError: the path does not exist.
        ValueError: not a SavedModel, or a SavedModel without the generator signatures.
    """
    path = _resolve_saved_model_dir(path)
    meta = _read_metadata(path)
    if meta.get("kind") == "translation" or set(meta.get("signatures") or ()) & set(
            c.TRANSLATE_PAIRS):
        return ExportedTranslator(path)
    return ExportedGenerator(path)


def load_translator(path, direction=None) -> ExportedTranslator:
    """Load an image-to-image export: :class:`ExportedTranslator` (``translate(sources)``,
    ``translate_png(png_bytes)``, ``accepts(shape)``, ``size_problem(shape)``,
    ``source_shape``, ``target_shape``), what ``tfgan-app sample --saved-model DIR --input
    IMAGE [--direction AtoB|BtoA]`` translates with.

    Args:
        path: a version or base directory.
        direction: a CycleGAN export's direction (``"a_to_b"``/``"AtoB"``, the default, or
            ``"b_to_a"``/``"BtoA"``); a one-way export takes None or ``a_to_b``.

    Raises:
        FileNotFoundError: the path does not exist.
        ValueError: not a SavedModel, an export of a generator that samples (not a
            translation export), or a direction the export does not have, naming what it is.
    """
    exp = load_exported(path)
    if not isinstance(exp, ExportedTranslator):
        raise ValueError(f"{exp.path!r} exports a generator that samples images from noise "
                         f"(kind {exp.kind or 'images/points'!r}), not an image-to-image model: "
                         "--input needs the export of a translation run")
    return exp if direction is None else exp.for_direction(direction)


def sample_grid_from_saved_model(saved_model_dir, out_png, n=16, seed=0, labels=None, *, ncols=None):
    """Write a PNG grid of ``n`` samples from an export's ``sample`` signature.

    Args:
        saved_model_dir: a version directory or a base directory (highest version).
        out_png: output path (parent directories are created; written atomically).
        n: int in ``[1, max_samples]``, number of samples.
        seed: int; the same seed gives the same PNG.
        labels: conditional exports: None (classes ``0..num_classes-1`` cycled in
            row-major order, or labels drawn from the seed when the number of classes is
            not recorded), an int (all samples of that class) or int ``[n]``.
            Unconditional: must be None.
        ncols: grid columns (default ``ceil(sqrt(n))``).

    Returns:
        str: ``out_png``. Image exports give a grid of the uint8 images with a 2-pixel
        black border (grayscale or RGB PNG); exports whose output is ``[N, 2]`` (toy 2-D
        generators) give a 512x512 scatter plot of the samples.
    """
    exp = load_exported(saved_model_dir)
    if not isinstance(exp, ExportedGenerator):
        raise ValueError(f"{exp.path!r} is an image-to-image export: it translates images "
                         "rather than sampling them (ExportedTranslator.translate/translate_png;"
                         " tfgan-app sample --saved-model DIR --input IMAGE)")
    out_png = os.fspath(out_png)
    n = int(n)
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if exp.conditional and labels is None and exp.num_classes:
        labels = (np.arange(n) % exp.num_classes).astype(np.int32)
    out = exp.sample(n, seed, labels)
    if c.IMAGES in out:
        images = out[c.IMAGES]
        if images.shape[-1] == 2:  # gray + alpha: drop alpha
            images = images[..., :1]
        grid = _images.tile(images, cols=ncols or math.ceil(math.sqrt(n)), pad=2, fill=0)
        return _images.save_png(grid, out_png)
    samples = out[c.SAMPLES]
    if samples.ndim == 2 and samples.shape[1] == 2:
        return _images.save_png(_images.scatter_image(samples), out_png)
    raise ValueError(f"cannot draw samples of shape {samples.shape[1:]}: only images [H, W, C] and 2-D points")


def _tflite_interpreter(model_path):
    try:
        from ai_edge_litert.interpreter import Interpreter  # the maintained runtime
    except ImportError:
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter  # deprecated in TF, still shipped with 2.21
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Interpreter(model_path=model_path)


def _tflite_runner(tflite_path):
    tflite_path = os.fspath(tflite_path)
    if os.path.isdir(tflite_path):
        tflite_path = os.path.join(tflite_path, c.TFLITE_FILENAME)
    if not os.path.isfile(tflite_path):
        raise FileNotFoundError(f"TFLite model not found: {tflite_path!r}")
    return _tflite_interpreter(tflite_path).get_signature_runner(c.SERVING_SIGNATURE)


def tflite_translate(tflite_path, sources):
    """Run a TFLite translation export's ``serving_default`` signature.

    Args:
        tflite_path: ``model.tflite`` or the version directory holding it.
        sources: float ``[N, h, w, Cs]`` in ``[-1, 1]`` (the sizes the export takes:
            its ``tfgan_app_export.json``; the TFLite model has no size checks).

    Returns:
        np.ndarray float32 ``[N, H, W, C]``, as ``translate`` of the SavedModel.
    """
    runner = _tflite_runner(tflite_path)
    inputs = runner.get_input_details()
    if c.SOURCE not in inputs:
        raise ValueError(f"{tflite_path!r} takes {sorted(inputs)}, not source: use tflite_generate()")
    channels = int(inputs[c.SOURCE]["shape_signature"][-1])
    sources = np.asarray(sources, np.float32)
    if sources.ndim != 4 or sources.shape[-1] != channels:
        raise ValueError(f"sources must have shape [N, h, w, {channels}], got {list(sources.shape)}")
    (value,) = runner(**{c.SOURCE: sources}).values()
    return np.asarray(value)


def tflite_generate(tflite_path, z, labels=None):
    """Run a TFLite export's ``serving_default`` signature.

    Args:
        tflite_path: ``model.tflite`` or the version directory holding it.
        z: float array ``[N, latent_dim]``.
        labels: int ``[N]`` for conditional exports, else None.

    Returns:
        np.ndarray float32 ``[N, *output_shape]``, as ``serving_default`` of the SavedModel.
    """
    runner = _tflite_runner(tflite_path)
    inputs = runner.get_input_details()
    if "z" not in inputs:
        raise ValueError(f"{tflite_path!r} takes {sorted(inputs)}, not z: use tflite_translate()")
    z = np.asarray(z, np.float32)
    latent_dim = inputs["z"]["shape_signature"][-1]
    if z.ndim != 2 or z.shape[1] != latent_dim:
        raise ValueError(f"z must have shape [N, {latent_dim}], got {list(z.shape)}")
    kw = {"z": z}
    if c.LABELS in inputs:
        if labels is None:
            raise ValueError("this export is conditional: pass labels int [N]")
        labels = np.asarray(labels, np.int32).reshape(-1)
        if labels.shape[0] != z.shape[0]:
            raise ValueError(f"labels must have shape [{z.shape[0]}], got {list(labels.shape)}")
        kw[c.LABELS] = labels
    elif labels is not None:
        raise ValueError("this export is unconditional: labels must be None")
    out = runner(**kw)
    (value,) = out.values()
    return np.asarray(value)
