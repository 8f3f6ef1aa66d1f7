"""Using an export: load a SavedModel (numpy in and out), draw a PNG from it, run TFLite.

TensorFlow is imported when a SavedModel is loaded; a TFLite export runs with the
``ai_edge_litert`` runtime when it is installed (else ``tf.lite``).
"""

from __future__ import annotations

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
    """

    def __init__(self, path):
        import tensorflow as tf

        self.path = _resolve_saved_model_dir(path)
        name = os.path.basename(os.path.normpath(self.path))
        self.version = int(name) if name.isdigit() else None
        try:
            self.module = tf.saved_model.load(self.path)
        except Exception as e:  # noqa: BLE001
            raise ValueError(f"cannot load SavedModel {self.path!r}: {e}") from e
        self.signatures = dict(self.module.signatures)
        missing = {c.SERVING_SIGNATURE, c.SAMPLE_SIGNATURE} - set(self.signatures)
        if missing:
            raise ValueError(
                f"{self.path!r} is a SavedModel but not a tfgan_app generator export: "
                f"missing signatures {sorted(missing)} (has {sorted(self.signatures)})"
            )
        meta_path = os.path.join(self.path, c.METADATA_RELPATH)
        self.metadata = {}
        if os.path.isfile(meta_path):
            with open(meta_path, encoding="utf-8") as f:
                self.metadata = json.load(f)
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


def load_exported(path):
    """Load an export written by :func:`tfgan_app.export.export_generator`.

    Args:
        path: a version directory (holding ``saved_model.pb``) or a base directory
            (its highest version is loaded).

    Returns:
        ExportedGenerator: ``.generate(z, labels)``, ``.sample(n, seed, labels)``,
        ``.interpolate(seed_a, seed_b, steps)``, ``.signatures``, ``.module``.

    Raises:
        FileNotFoundError: the path does not exist.
        ValueError: not a SavedModel, or a SavedModel without the generator signatures.
    """
    return ExportedGenerator(path)


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


def tflite_generate(tflite_path, z, labels=None):
    """Run a TFLite export's ``serving_default`` signature.

    Args:
        tflite_path: ``model.tflite`` or the version directory holding it.
        z: float array ``[N, latent_dim]``.
        labels: int ``[N]`` for conditional exports, else None.

    Returns:
        np.ndarray float32 ``[N, *output_shape]``, as ``serving_default`` of the SavedModel.
    """
    tflite_path = os.fspath(tflite_path)
    if os.path.isdir(tflite_path):
        tflite_path = os.path.join(tflite_path, c.TFLITE_FILENAME)
    if not os.path.isfile(tflite_path):
        raise FileNotFoundError(f"TFLite model not found: {tflite_path!r}")
    runner = _tflite_interpreter(tflite_path).get_signature_runner(c.SERVING_SIGNATURE)
    inputs = runner.get_input_details()
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
