"""Generator export for TF Serving (SavedModel) and on-device use (TFLite).

Layout written by :func:`export_generator` (the layout TF Serving watches)::

    base_dir/
      1/                          one version = one complete SavedModel
        saved_model.pb
        variables/...
        assets.extra/tfgan_app_export.json   what was exported (latent_dim, shapes, ...)
      2/
      .tmp-<hex>/                 only while an export is being written (or after a
                                  killed process): TF Serving ignores names that are
                                  not all digits, so it never loads a partial version

Signatures (``N`` = batch, ``L`` = latent_dim, output ``[H, W, C]`` for image generators):

``serving_default``
    inputs ``z`` float32 ``[N, L]`` (and ``labels`` int32 ``[N]`` for conditional
    generators, each in ``[0, num_classes)``) -> ``images`` float32 ``[N, H, W, C]`` in
    ``[-1, 1]`` (the generator run with ``training=False``).
``sample``
    inputs ``num_samples`` int32 scalar in ``[1, max_samples]``, ``seed`` int64 scalar
    (and ``labels`` int32 ``[num_samples]``, or ``[0]`` (empty) for labels drawn from the
    seed) -> ``images`` uint8 ``[N, H, W, C]`` and ``images_png_bytes`` string ``[N]``
    (one PNG per image; TF Serving's REST API base64-encodes outputs whose name ends in
    ``_bytes``). ``z = tf.random.stateless_normal([N, L], seed=[seed, 0])``, so the
    result is a pure function of the inputs.
``interpolate``
    inputs ``seed_a``, ``seed_b`` int64 scalars, ``steps`` int32 scalar in
    ``[1, max_samples]`` (and ``labels`` int32 ``[steps]`` or empty: one label drawn
    from ``seed_a`` for the whole path) -> ``images`` uint8 ``[steps, H, W, C]`` and
    ``images_png_bytes`` string ``[steps]``. Spherical interpolation from the latent of
    ``sample(1, seed_a)`` to the latent of ``sample(1, seed_b)``.

Generators whose output is not rank 4 (for example the 2-D toy generators, ``[N, 2]``)
get the same signatures with a single output named ``samples`` (float32, the generator's
output shape) instead of ``images``/``images_png_bytes``.

The SavedModel contains only TensorFlow graphs and variables: it loads with
``tf.saved_model.load`` (and in TF Serving) without ``tfgan_app`` or Keras objects.
"""

from __future__ import annotations

import datetime
import json
import logging
import math
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
import warnings

import numpy as np

from .serving import decode_png_batch

logger = logging.getLogger(__name__)

SERVING_SIGNATURE = "serving_default"
SAMPLE_SIGNATURE = "sample"
INTERPOLATE_SIGNATURE = "interpolate"
METADATA_FILENAME = "tfgan_app_export.json"
METADATA_RELPATH = os.path.join("assets.extra", METADATA_FILENAME)
TFLITE_FILENAME = "model.tflite"
TEMP_PREFIX = ".tmp-"
FORMATS = ("saved_model", "tflite")
DEFAULT_MAX_SAMPLES = 1024
EXPORT_FORMAT_VERSION = 1

__all__ = [
    "SERVING_SIGNATURE",
    "SAMPLE_SIGNATURE",
    "INTERPOLATE_SIGNATURE",
    "ExportedGenerator",
    "ExportVerificationError",
    "export_generator",
    "list_versions",
    "next_version",
    "load_exported",
    "verify_export",
    "sample_grid_from_saved_model",
    "tflite_generate",
]


class ExportVerificationError(AssertionError):
    """Raised by :func:`verify_export` when an export does not behave as documented."""


# --------------------------------------------------------------------------------------
# Versions
# --------------------------------------------------------------------------------------


def list_versions(base_dir):
    """Versions present in ``base_dir``, sorted ascending.

    Args:
        base_dir: str or path-like; a TF Serving model base directory. A missing
            directory has no versions.

    Returns:
        list of int: the names of the all-digit subdirectories (what TF Serving loads);
        temporary ``.tmp-*`` directories and files are ignored.
    """
    base_dir = os.fspath(base_dir)
    if not os.path.isdir(base_dir):
        return []
    return sorted(
        int(name)
        for name in os.listdir(base_dir)
        if name.isdigit() and name.isascii() and os.path.isdir(os.path.join(base_dir, name))
    )


def next_version(base_dir):
    """The version :func:`export_generator` picks when none is given.

    Args:
        base_dir: str or path-like.

    Returns:
        int >= 1: one more than the highest existing version, or 1 if there is none.
    """
    versions = list_versions(base_dir)
    return versions[-1] + 1 if versions else 1


def _check_version(version):
    if isinstance(version, bool) or not isinstance(version, (int, np.integer)):
        if isinstance(version, str) and version.isdigit():
            version = int(version)
        else:
            raise ValueError(f"version must be a positive integer, got {version!r}")
    version = int(version)
    if version < 1:
        raise ValueError(f"version must be a positive integer, got {version}")
    return version


# --------------------------------------------------------------------------------------
# What to export
# --------------------------------------------------------------------------------------


class _Source:
    """A generator with what the export needs to know about it."""

    def __init__(self, generator, latent_dim, num_classes, origin):
        self.generator = generator
        self.latent_dim = int(latent_dim)
        self.num_classes = None if num_classes in (None, 0) else int(num_classes)
        self.origin = origin
        if self.latent_dim < 1:
            raise ValueError(f"latent_dim must be >= 1, got {latent_dim}")
        if self.num_classes is not None and self.num_classes < 1:
            raise ValueError(f"num_classes must be None or >= 1, got {num_classes}")
        self.output_shape, self.output_dtype = self._probe()

    @property
    def conditional(self):
        return self.num_classes is not None

    def call(self, z, labels=None):
        """Run the generator in inference mode; returns float32."""
        import tensorflow as tf

        inputs = [z, labels] if self.conditional else z
        out = self.generator(inputs, training=False)
        if isinstance(out, (list, tuple)):
            if len(out) != 1:
                raise ValueError(f"the generator returns {len(out)} outputs; expected one")
            out = out[0]
        if isinstance(out, dict):
            raise ValueError("the generator returns a dict; expected one tensor")
        return tf.cast(out, tf.float32)

    def _probe(self):
        import tensorflow as tf

        z = tf.zeros([2, self.latent_dim], tf.float32)
        labels = tf.zeros([2], tf.int32) if self.conditional else None
        try:
            out = self.generator([z, labels] if self.conditional else z, training=False)
        except Exception as e:  # noqa: BLE001 - re-raised with context
            kind = "[z, labels] (float32 [2, %d], int32 [2])" % self.latent_dim
            if not self.conditional:
                kind = "z (float32 [2, %d])" % self.latent_dim
            raise ValueError(
                f"the generator from {self.origin} cannot be called on {kind}: {e}. "
                "Check latent_dim and num_classes (conditional generators take [z, labels])."
            ) from e
        if isinstance(out, (list, tuple)) and len(out) == 1:
            out = out[0]
        if not hasattr(out, "shape") or not hasattr(out, "dtype"):
            raise ValueError(f"the generator from {self.origin} returned {type(out).__name__}, not a tensor")
        dtype = tf.as_dtype(out.dtype)
        if not dtype.is_floating:
            raise ValueError(f"the generator output must be floating point, got {dtype.name}")
        shape = tuple(int(d) for d in out.shape[1:])
        if out.shape[0] != 2:
            raise ValueError(f"the generator output has batch size {out.shape[0]} for a batch of 2")
        if not shape:
            raise ValueError("the generator output must have at least rank 2 ([batch, ...])")
        return shape, dtype.name

    @property
    def is_image(self):
        return len(self.output_shape) == 3

    @property
    def has_png(self):
        return self.is_image and self.output_shape[-1] in (1, 2, 3, 4)


def _infer_latent_dim(model):
    inputs = getattr(model, "inputs", None)
    if not inputs:
        raise ValueError(
            "cannot infer latent_dim from a keras.Model without symbolic inputs; "
            "pass an object with .generator/.latent_dim/.num_classes instead"
        )
    dim = inputs[0].shape[-1]
    if dim is None:
        raise ValueError("cannot infer latent_dim: the generator's first input has an unknown last dimension")
    return int(dim)


def _load_run_dir(run_dir, use_ema):
    import keras

    run_dir = os.fspath(run_dir)
    if not os.path.isdir(run_dir):
        raise FileNotFoundError(f"run directory not found: {run_dir!r}")
    config_path = os.path.join(run_dir, "config.json")
    if not os.path.isfile(config_path):
        raise FileNotFoundError(
            f"{run_dir!r} is not a training run directory: {config_path!r} is missing "
            "(expected config.json and generator.keras written by `tfgan-app train`)"
        )
    with open(config_path, encoding="utf-8") as f:
        config = json.load(f)
    if "latent_dim" not in config:
        raise ValueError(f"{config_path!r} has no 'latent_dim'")
    candidates = (["ema_generator.keras"] if use_ema else []) + ["generator.keras"]
    for name in candidates:
        path = os.path.join(run_dir, name)
        if os.path.isfile(path):
            break
    else:
        raise FileNotFoundError(f"no generator.keras in run directory {run_dir!r}")
    try:  # registers the package's custom layers (keras.saving.register_keras_serializable)
        import tfgan_app.builders  # noqa: F401
    except ImportError:
        pass
    generator = keras.saving.load_model(path, compile=False)
    return _Source(generator, config["latent_dim"], config.get("num_classes"), origin=path)


def _resolve_source(gan_or_run_dir, use_ema=True, latent_dim=None, num_classes=None):
    """Turn a GAN object, a run directory or a bare generator into a :class:`_Source`."""
    import keras

    obj = gan_or_run_dir
    if isinstance(obj, _Source):
        return obj
    if isinstance(obj, (str, os.PathLike)):
        return _load_run_dir(obj, use_ema)
    if getattr(obj, "generator", None) is not None:
        generator = obj.generator
        origin = "gan.generator"
        ema = getattr(obj, "ema_generator", None) if use_ema else None
        if ema is not None:
            generator, origin = ema, "gan.ema_generator"
        ld = latent_dim if latent_dim is not None else getattr(obj, "latent_dim", None)
        if ld is None:
            ld = _infer_latent_dim(generator)
        nc = num_classes if num_classes is not None else getattr(obj, "num_classes", None)
        return _Source(generator, ld, nc, origin=origin)
    if isinstance(obj, keras.Model):
        ld = latent_dim if latent_dim is not None else _infer_latent_dim(obj)
        if num_classes is None and len(obj.inputs or []) > 1:
            raise ValueError("this generator takes several inputs: pass num_classes for a conditional generator")
        return _Source(obj, ld, num_classes, origin="keras.Model")
    raise TypeError(
        "expected a GAN (an object with .generator, .latent_dim, .num_classes), a run "
        f"directory path or a keras.Model generator; got {type(obj).__name__}"
    )


# --------------------------------------------------------------------------------------
# Graph building
# --------------------------------------------------------------------------------------


def _to_uint8(images):
    import tensorflow as tf

    return tf.cast(tf.round(tf.clip_by_value((images + 1.0) * 127.5, 0.0, 255.0)), tf.uint8)


def _build_archive(src, max_samples=DEFAULT_MAX_SAMPLES, interpolate=True, checks=True):
    """An ``keras.export.ExportArchive`` holding the documented signatures."""
    import keras
    import tensorflow as tf

    L = src.latent_dim
    conditional = src.conditional
    num_classes = src.num_classes
    out_key = "images" if src.is_image else "samples"

    def check_labels(labels, n=None):
        if not checks:
            return labels
        ops = [
            tf.debugging.assert_non_negative(labels, message="labels must be >= 0"),
            tf.debugging.assert_less(
                labels, tf.constant(num_classes, tf.int32), message=f"labels must be < num_classes ({num_classes})"
            ),
        ]
        if n is not None:
            ops.append(
                tf.debugging.assert_equal(
                    tf.size(labels), n, message="labels must be empty or have one entry per sample"
                )
            )
        with tf.control_dependencies(ops):
            return tf.identity(labels)

    def check_count(n, name):
        if not checks:
            return n
        with tf.control_dependencies(
            [
                tf.debugging.assert_greater_equal(n, 1, message=f"{name} must be >= 1"),
                tf.debugging.assert_less_equal(n, max_samples, message=f"{name} must be <= {max_samples}"),
            ]
        ):
            return tf.identity(n)

    def latents(n, seed):
        return tf.random.stateless_normal(tf.stack([n, L]), seed=tf.stack([seed, tf.constant(0, tf.int64)]))

    def seeded_labels(n, seed):
        return tf.random.stateless_uniform(
            tf.reshape(n, [1]), seed=tf.stack([seed, tf.constant(1, tf.int64)]), minval=0,
            maxval=num_classes, dtype=tf.int32,
        )

    def postprocess(x):
        if not src.is_image:
            return {"samples": x}
        u8 = _to_uint8(x)
        out = {"images": u8}
        if src.has_png:
            out["images_png_bytes"] = tf.map_fn(tf.io.encode_png, u8, fn_output_signature=tf.TensorSpec([], tf.string))
        return out

    z_spec = tf.TensorSpec([None, L], tf.float32, name="z")
    labels_spec = tf.TensorSpec([None], tf.int32, name="labels")
    n_spec = tf.TensorSpec([], tf.int32, name="num_samples")
    seed_spec = tf.TensorSpec([], tf.int64, name="seed")

    archive = keras.export.ExportArchive()
    archive.track(src.generator)

    if conditional:

        def serve(z, labels):
            if checks:
                labels = check_labels(labels, tf.shape(z)[0])
            return {out_key: src.call(z, labels)}

        def sample(num_samples, seed, labels):
            n = check_count(num_samples, "num_samples")
            labels = tf.cond(tf.size(labels) > 0, lambda: labels, lambda: seeded_labels(n, seed))
            labels = check_labels(labels, n)
            return postprocess(src.call(latents(n, seed), labels))

        archive.add_endpoint(SERVING_SIGNATURE, serve, input_signature=[z_spec, labels_spec])
        archive.add_endpoint(SAMPLE_SIGNATURE, sample, input_signature=[n_spec, seed_spec, labels_spec])
    else:

        def serve(z):
            return {out_key: src.call(z)}

        def sample(num_samples, seed):
            n = check_count(num_samples, "num_samples")
            return postprocess(src.call(latents(n, seed)))

        archive.add_endpoint(SERVING_SIGNATURE, serve, input_signature=[z_spec])
        archive.add_endpoint(SAMPLE_SIGNATURE, sample, input_signature=[n_spec, seed_spec])

    if interpolate:

        def path(seed_a, seed_b, steps):
            steps = check_count(steps, "steps")
            za = latents(tf.constant(1, tf.int32), seed_a)  # == sample(1, seed_a)'s latent
            zb = latents(tf.constant(1, tf.int32), seed_b)
            t = tf.reshape(tf.linspace(0.0, 1.0, steps), [-1, 1])
            na = tf.math.l2_normalize(za, axis=-1)
            nb = tf.math.l2_normalize(zb, axis=-1)
            omega = tf.acos(tf.clip_by_value(tf.reduce_sum(na * nb), -1.0, 1.0))
            so = tf.sin(omega)
            safe = tf.maximum(so, 1e-6)
            slerp = tf.sin((1.0 - t) * omega) / safe * za + tf.sin(t * omega) / safe * zb
            lerp = (1.0 - t) * za + t * zb
            return tf.where(so > 1e-6, slerp, lerp), steps

        a_spec = tf.TensorSpec([], tf.int64, name="seed_a")
        b_spec = tf.TensorSpec([], tf.int64, name="seed_b")
        s_spec = tf.TensorSpec([], tf.int32, name="steps")
        if conditional:

            def interp(seed_a, seed_b, steps, labels):
                z, steps = path(seed_a, seed_b, steps)
                labels = tf.cond(
                    tf.size(labels) > 0,
                    lambda: labels,
                    lambda: tf.fill(tf.reshape(steps, [1]), seeded_labels(tf.constant(1, tf.int32), seed_a)[0]),
                )
                labels = check_labels(labels, steps)
                return postprocess(src.call(z, labels))

            archive.add_endpoint(
                INTERPOLATE_SIGNATURE, interp, input_signature=[a_spec, b_spec, s_spec, labels_spec]
            )
        else:

            def interp(seed_a, seed_b, steps):
                z, _ = path(seed_a, seed_b, steps)
                return postprocess(src.call(z))

            archive.add_endpoint(INTERPOLATE_SIGNATURE, interp, input_signature=[a_spec, b_spec, s_spec])
    return archive


def _metadata(src, fmt, version, max_samples, interpolate):
    import tensorflow as tf

    try:
        from tfgan_app import __version__ as pkg_version
    except Exception:  # noqa: BLE001
        pkg_version = None
    sigs = [SERVING_SIGNATURE] if fmt == "tflite" else [SERVING_SIGNATURE, SAMPLE_SIGNATURE]
    if interpolate and fmt != "tflite":
        sigs.append(INTERPOLATE_SIGNATURE)
    return {
        "format": f"tfgan_app.{fmt}",
        "format_version": EXPORT_FORMAT_VERSION,
        "version": version,
        "latent_dim": src.latent_dim,
        "num_classes": src.num_classes,
        "output_shape": list(src.output_shape),
        "output_key": "images" if src.is_image else "samples",
        "png": bool(src.has_png),
        "signatures": sigs,
        "max_samples": max_samples,
        "source": src.origin,
        "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "tfgan_app_version": pkg_version,
        "tensorflow_version": tf.__version__,
    }


def _write_saved_model(archive, path):
    """Write the archive's SavedModel to ``path`` (a temporary directory)."""
    archive.write_out(path, verbose=False)


def _write_metadata(path, metadata):
    """Write the export's JSON description (a step in the middle of every export)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(metadata, f, indent=2, sort_keys=True)
        f.write("\n")


def _fsync_tree(root):
    """Flush the files and directories under ``root`` to disk before the rename."""
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(dirpath)


def _fsync_dir(path):
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _convert_tflite(saved_model_dir):
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir, signature_keys=[SERVING_SIGNATURE])
    return converter.convert()


def export_generator(
    gan_or_run_dir,
    base_dir,
    version=None,
    format="saved_model",  # noqa: A002 - the CLI flag's name
    *,
    use_ema=True,
    interpolate=True,
    max_samples=DEFAULT_MAX_SAMPLES,
    latent_dim=None,
    num_classes=None,
):
    """Export a generator to ``base_dir/<version>/``, atomically.

    Args:
        gan_or_run_dir: one of
            - a GAN object with ``.generator`` (keras.Model: z float32 ``[B, latent_dim]``
              -> float32 ``[B, ...]`` in ``[-1, 1]``; conditional: ``[z, labels int32 [B]]``),
              ``.latent_dim`` (int), ``.num_classes`` (None or int) and optionally
              ``.ema_generator`` (exported instead of ``.generator`` when not None and
              ``use_ema``);
            - a run directory (str/path) written by ``tfgan-app train``: ``config.json``
              (``latent_dim``, ``num_classes``) and ``generator.keras``
              (``ema_generator.keras`` is preferred when present and ``use_ema``);
            - a bare ``keras.Model`` generator (``latent_dim`` inferred from its input;
              pass ``num_classes`` for a conditional one).
        base_dir: str or path-like; the model's base directory (created if missing).
        version: positive int, or None for :func:`next_version`. An existing version is
            refused with ``FileExistsError``; existing versions are never modified.
        format: ``"saved_model"`` (TF Serving; signatures ``serving_default``, ``sample``,
            ``interpolate``, see the module docstring) or ``"tflite"``
            (``base_dir/<version>/model.tflite`` with the ``serving_default`` signature
            only, the layout TF Serving's ``--prefer_tflite_model`` reads; keep TFLite
            exports in their own base directory).
        use_ema: export ``ema_generator`` when there is one.
        interpolate: add the ``interpolate`` signature.
        max_samples: int >= 1; ``sample``/``interpolate`` refuse larger batches, to
            bound a request's memory on the server.
        latent_dim, num_classes: override what the GAN object says (rarely needed).

    Returns:
        str: the version directory written, ``base_dir/<version>``.

    Raises:
        FileExistsError: the version exists.
        FileNotFoundError: a run directory or its files are missing.
        ValueError / TypeError: a bad argument or a generator that cannot be called
            on ``z`` (and ``labels``).

    The export is written into ``base_dir/.tmp-<hex>/`` (a name TF Serving never
    loads), flushed to disk and renamed to ``base_dir/<version>``; if anything fails the
    temporary directory is removed and no version directory appears.
    """
    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {format!r}")
    if isinstance(max_samples, bool) or not isinstance(max_samples, (int, np.integer)) or max_samples < 1:
        raise ValueError(f"max_samples must be a positive integer, got {max_samples!r}")
    base_dir = os.fspath(base_dir)
    if os.path.exists(base_dir) and not os.path.isdir(base_dir):
        raise NotADirectoryError(f"base_dir exists and is not a directory: {base_dir!r}")
    src = _resolve_source(gan_or_run_dir, use_ema=use_ema, latent_dim=latent_dim, num_classes=num_classes)
    os.makedirs(base_dir, exist_ok=True)
    version = next_version(base_dir) if version is None else _check_version(version)
    final = os.path.join(base_dir, str(version))
    if os.path.lexists(final):
        raise FileExistsError(
            f"version {version} already exists in {base_dir!r}; existing versions are never "
            "overwritten (omit version to write the next one)"
        )

    tmp = os.path.join(base_dir, f"{TEMP_PREFIX}{uuid.uuid4().hex}")
    os.mkdir(tmp)
    try:
        meta = _metadata(src, format, version, int(max_samples), interpolate)
        if format == "saved_model":
            archive = _build_archive(src, int(max_samples), interpolate)
            _write_saved_model(archive, tmp)
            _write_metadata(os.path.join(tmp, METADATA_RELPATH), meta)
        else:
            staging = os.path.join(tmp, "saved_model_for_tflite")
            # No runtime assertions: TFLite has no Assert op.
            _write_saved_model(_build_archive(src, int(max_samples), interpolate=False, checks=False), staging)
            flatbuffer = _convert_tflite(staging)
            shutil.rmtree(staging)
            with open(os.path.join(tmp, TFLITE_FILENAME), "wb") as f:
                f.write(flatbuffer)
            _write_metadata(os.path.join(tmp, METADATA_FILENAME), meta)
        _fsync_tree(tmp)
        if os.path.lexists(final):  # another exporter won the race for this number
            raise FileExistsError(f"version {version} appeared in {base_dir!r} while exporting")
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _fsync_dir(base_dir)
    logger.info("exported %s (%s) to %s", src.origin, format, final)
    return final


# --------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------


def _resolve_saved_model_dir(path):
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"export directory not found: {path!r}")
    if not os.path.isdir(path):
        raise NotADirectoryError(f"not a directory: {path!r}")
    if os.path.isfile(os.path.join(path, "saved_model.pb")):
        return path
    if os.path.isfile(os.path.join(path, TFLITE_FILENAME)):
        raise ValueError(f"{path!r} holds a TFLite export ({TFLITE_FILENAME}); use tflite_generate()")
    versions = [v for v in list_versions(path) if os.path.isfile(os.path.join(path, str(v), "saved_model.pb"))]
    if versions:
        return os.path.join(path, str(versions[-1]))
    raise ValueError(
        f"{path!r} is not a SavedModel: no saved_model.pb in it and no numbered version directory holding one"
    )


class ExportedGenerator:
    """A loaded export, with numpy in and out.

    Attributes:
        path: the version directory loaded.
        version: int version (the directory name) or None.
        module: what ``tf.saved_model.load`` returned.
        signatures: dict name -> concrete function.
        latent_dim: int.
        num_classes: None or int.
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
        missing = {SERVING_SIGNATURE, SAMPLE_SIGNATURE} - set(self.signatures)
        if missing:
            raise ValueError(
                f"{self.path!r} is a SavedModel but not a tfgan_app generator export: "
                f"missing signatures {sorted(missing)} (has {sorted(self.signatures)})"
            )
        meta_path = os.path.join(self.path, METADATA_RELPATH)
        self.metadata = {}
        if os.path.isfile(meta_path):
            with open(meta_path, encoding="utf-8") as f:
                self.metadata = json.load(f)
        serve = self.signatures[SERVING_SIGNATURE]
        specs = serve.structured_input_signature[1]
        out_spec = serve.structured_outputs
        if "z" not in specs or not ({"images", "samples"} & set(out_spec)):
            raise ValueError(
                f"{self.path!r}: serving_default takes {sorted(specs)} and returns {sorted(out_spec)}; "
                "expected z (and labels) -> images or samples"
            )
        self.latent_dim = int(specs["z"].shape[-1])
        self.num_classes = self.metadata.get("num_classes")
        self.conditional = "labels" in specs
        self.output_key = "images" if "images" in out_spec else "samples"
        self.output_shape = tuple(int(d) for d in out_spec[self.output_key].shape[1:])

    def _labels(self, labels, n):
        if not self.conditional:
            if labels is not None:
                raise ValueError("this export is unconditional: labels must be None")
            return {}
        if labels is None:
            raise ValueError("this export is conditional: pass labels (int [N])")
        labels = np.asarray(labels)
        if labels.ndim == 0:
            labels = np.full([n], labels)
        if labels.ndim != 1 or (n is not None and labels.size not in (0, n)):
            raise ValueError(f"labels must have shape [{n}] (or be empty), got {labels.shape}")
        if labels.size and not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"labels must be integers, got {labels.dtype}")
        return {"labels": labels.astype(np.int32)}

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
        kw = self._labels(labels, z.shape[0])
        if self.conditional and kw["labels"].size != z.shape[0]:
            raise ValueError("labels must have one entry per row of z")
        out = self.signatures[SERVING_SIGNATURE](z=z, **kw)
        return out[self.output_key].numpy()

    def sample(self, num_samples, seed=0, labels=None):
        """Run ``sample``.

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
        n = int(num_samples)
        if n < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}")
        if self.conditional and labels is None:
            labels = np.zeros([0], np.int32)
        kw = self._labels(labels, n)
        out = self.signatures[SAMPLE_SIGNATURE](
            num_samples=np.int32(n), seed=np.int64(seed), **kw
        )
        return {k: v.numpy() for k, v in out.items()}

    def interpolate(self, seed_a, seed_b, steps=8, labels=None):
        """Run ``interpolate``: ``steps`` outputs from ``sample(1, seed_a)`` to ``sample(1, seed_b)``.

        Returns:
            dict as for :meth:`sample`, with ``steps`` entries.
        """
        if INTERPOLATE_SIGNATURE not in self.signatures:
            raise ValueError(f"{self.path!r} was exported without the interpolate signature")
        steps = int(steps)
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        if self.conditional and labels is None:
            labels = np.zeros([0], np.int32)
        kw = self._labels(labels, steps)
        out = self.signatures[INTERPOLATE_SIGNATURE](
            seed_a=np.int64(seed_a), seed_b=np.int64(seed_b), steps=np.int32(steps), **kw
        )
        return {k: v.numpy() for k, v in out.items()}

    def __repr__(self):
        return (
            f"ExportedGenerator(path={self.path!r}, latent_dim={self.latent_dim}, "
            f"num_classes={self.num_classes}, output_shape={self.output_shape}, "
            f"signatures={sorted(self.signatures)})"
        )


def load_exported(path):
    """Load an export written by :func:`export_generator`.

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


# --------------------------------------------------------------------------------------
# Verification
# --------------------------------------------------------------------------------------

_ISOLATED_SCRIPT = r"""
import importlib.abc, json, os, sys
attempts = []
class _Block(importlib.abc.MetaPathFinder):  # hides tfgan_app even when it is pip-installed
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "tfgan_app":
            attempts.append(name)
            raise ImportError("tfgan_app is blocked in this process")
        return None
sys.meta_path.insert(0, _Block())
import numpy as np
import tensorflow as tf
m = tf.saved_model.load(sys.argv[1])
report = {"signatures": {}}
serve = m.signatures["serving_default"]
specs = serve.structured_input_signature[1]
L = int(specs["z"].shape[-1])
kw = {"labels": tf.constant([0, 0], tf.int32)} if "labels" in specs else {}
out = serve(z=tf.zeros([2, L]), **kw)
report["signatures"]["serving_default"] = {k: [v.dtype.name, list(v.shape)] for k, v in out.items()}
kw = {"labels": tf.zeros([0], tf.int32)} if "labels" in specs else {}
outs = [m.signatures["sample"](num_samples=tf.constant(2), seed=tf.constant(7, tf.int64), **kw) for _ in range(2)]
report["signatures"]["sample"] = {k: [v.dtype.name, list(v.shape)] for k, v in outs[0].items()}
report["sample_deterministic"] = all(np.array_equal(outs[0][k].numpy(), outs[1][k].numpy()) for k in outs[0])
report["tfgan_app_imports_attempted"] = list(attempts)
try:
    import tfgan_app  # noqa
    report["tfgan_app_importable"] = True
except ImportError:
    report["tfgan_app_importable"] = False
print("REPORT " + json.dumps(report))
"""


def _run_isolated(path, timeout=300):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with tempfile.TemporaryDirectory() as cwd:
        proc = subprocess.run(
            [sys.executable, "-I", "-c", _ISOLATED_SCRIPT, os.path.abspath(path)],
            cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
        )
    if proc.returncode != 0:
        raise ExportVerificationError(
            f"the export does not load/run in a fresh process without tfgan_app:\n{proc.stderr[-3000:]}"
        )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("REPORT ")]
    if not lines:
        raise ExportVerificationError(f"no report from the isolated process:\n{proc.stdout[-2000:]}")
    return json.loads(lines[-1][len("REPORT "):])


def verify_export(path, gan=None, *, atol=1e-5, isolated=False, num_samples=4, seed=0):
    """Check that an export behaves as documented; raise if it does not.

    Checks: both signatures exist with the documented input names/dtypes; ``sample`` is
    deterministic for a seed and differs between seeds; ``images_png_bytes`` decode to
    ``images``; pixel range; and, when ``gan`` is given (GAN object, run directory or
    keras.Model, as for :func:`export_generator`), ``serving_default`` equals the
    generator run with ``training=False`` (its EMA generator when it has one) within
    ``atol``. With ``isolated=True`` the export is also loaded and run in a fresh Python
    process (``python -I``) in which ``tfgan_app`` cannot be imported.

    Args:
        path: version or base directory.
        gan: optional source to compare against.
        atol: float, max abs difference allowed against ``gan``.
        isolated: bool, also run the fresh-process check (~10 s: imports TensorFlow).
        num_samples: int >= 2, batch used for the checks.
        seed: int, seed used for the checks.

    Returns:
        dict: ``path``, ``signatures`` (name -> {"inputs": {name: [dtype, shape]},
        "outputs": {...}}), ``max_abs_diff`` (None without ``gan``), ``isolated``
        (the fresh process's report or None).

    Raises:
        ExportVerificationError: a check failed. FileNotFoundError/ValueError: see
        :func:`load_exported`.
    """
    exp = load_exported(path)

    def fail(msg):
        raise ExportVerificationError(f"{exp.path}: {msg}")

    n = max(2, int(num_samples))
    sigs = {}
    for name, fn in exp.signatures.items():
        ins = {k: [v.dtype.name, v.shape.as_list() if v.shape.rank is not None else None]
               for k, v in fn.structured_input_signature[1].items()}
        outs = {k: [v.dtype.name, v.shape.as_list() if v.shape.rank is not None else None]
                for k, v in fn.structured_outputs.items()}
        sigs[name] = {"inputs": ins, "outputs": outs}
    expected_in = {"z": "float32", **({"labels": "int32"} if exp.conditional else {})}
    if {k: v[0] for k, v in sigs[SERVING_SIGNATURE]["inputs"].items()} != expected_in:
        fail(f"serving_default inputs are {sigs[SERVING_SIGNATURE]['inputs']}, expected {expected_in}")
    expected_in = {"num_samples": "int32", "seed": "int64", **({"labels": "int32"} if exp.conditional else {})}
    if {k: v[0] for k, v in sigs[SAMPLE_SIGNATURE]["inputs"].items()} != expected_in:
        fail(f"sample inputs are {sigs[SAMPLE_SIGNATURE]['inputs']}, expected {expected_in}")

    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, exp.latent_dim)).astype(np.float32)
    labels = None
    if exp.conditional:
        k = exp.num_classes or 1
        labels = (np.arange(n) % k).astype(np.int32)
    images = exp.generate(z, labels)
    if images.dtype != np.float32 or images.shape != (n, *exp.output_shape):
        fail(f"serving_default returned {images.dtype} {images.shape}")
    if not np.all(np.isfinite(images)):
        fail("serving_default returned non-finite values")
    max_diff = None
    if gan is not None:
        src = _resolve_source(gan)
        if src.latent_dim != exp.latent_dim or src.conditional != exp.conditional:
            fail(f"export (latent_dim={exp.latent_dim}) does not match the given GAN (latent_dim={src.latent_dim})")
        ref = np.asarray(src.call(z, labels))
        max_diff = float(np.max(np.abs(ref - images)))
        if max_diff > atol:
            fail(f"serving_default differs from the generator by {max_diff:.3g} > atol={atol}")

    a = exp.sample(n, seed, labels)
    b = exp.sample(n, seed, labels)
    c = exp.sample(n, seed + 1, labels)
    for key in a:
        if not np.array_equal(a[key], b[key]):
            fail(f"sample output {key!r} differs between two calls with seed {seed}")
    key = exp.output_key
    if np.array_equal(a[key], c[key]):
        fail(f"sample gives the same {key!r} for seeds {seed} and {seed + 1}")
    if key == "images":
        if a["images"].dtype != np.uint8:
            fail(f"sample images are {a['images'].dtype}, expected uint8")
        if "images_png_bytes" in a:
            decoded = decode_png_batch(a["images_png_bytes"])
            if not np.array_equal(decoded, a["images"]):
                fail("images_png_bytes do not decode to images")
    iso = _run_isolated(exp.path) if isolated else None
    if iso is not None:
        if iso["tfgan_app_importable"] or iso["tfgan_app_imports_attempted"]:
            fail(f"the export needed tfgan_app in the isolated process: {iso['tfgan_app_imports_attempted']}")
        if not iso["sample_deterministic"]:
            fail("sample is not deterministic in the isolated process")
    return {"path": exp.path, "signatures": sigs, "max_abs_diff": max_diff, "isolated": iso}


# --------------------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------------------


def _grid(images, ncols=None, pad=2):
    """uint8 [N, H, W, C] -> uint8 [rows*(H+pad)+pad, cols*(W+pad)+pad, C]."""
    n, h, w, c = images.shape
    ncols = ncols or int(math.ceil(math.sqrt(n)))
    nrows = int(math.ceil(n / ncols))
    grid = np.zeros((nrows * (h + pad) + pad, ncols * (w + pad) + pad, c), np.uint8)
    for i in range(n):
        r, col = divmod(i, ncols)
        y, x = pad + r * (h + pad), pad + col * (w + pad)
        grid[y : y + h, x : x + w] = images[i]
    return grid


def _scatter(points, size=512, radius=2):
    """float [N, 2] -> uint8 RGB [size, size, 3] scatter plot with axes through 0."""
    from PIL import Image, ImageDraw

    pts = np.asarray(points, np.float64)
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    span = float(max(hi[0] - lo[0], hi[1] - lo[1], 1e-6))
    center = (lo + hi) / 2
    margin = 0.06 * size

    def to_px(p):
        q = (p - center) / span * (size - 2 * margin) + size / 2
        return float(q[0]), float(size - q[1])

    img = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(img)
    ox, oy = to_px(np.zeros(2))
    draw.line([(0, oy), (size, oy)], fill=(200, 200, 200))
    draw.line([(ox, 0), (ox, size)], fill=(200, 200, 200))
    for p in pts:
        x, y = to_px(p)
        draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=(31, 119, 180))
    return np.asarray(img)


def _write_png(array, out_png):
    from PIL import Image

    out_png = os.fspath(out_png)
    parent = os.path.dirname(os.path.abspath(out_png))
    os.makedirs(parent, exist_ok=True)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    tmp = os.path.join(parent, f".{os.path.basename(out_png)}.{uuid.uuid4().hex}.tmp")
    try:
        Image.fromarray(array).save(tmp, format="PNG")
        os.replace(tmp, out_png)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return out_png


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
    n = int(n)
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if exp.conditional and labels is None and exp.num_classes:
        labels = (np.arange(n) % exp.num_classes).astype(np.int32)
    out = exp.sample(n, seed, labels)
    if "images" in out:
        images = out["images"]
        if images.shape[-1] == 2:  # gray + alpha: drop alpha
            images = images[..., :1]
        return _write_png(_grid(images, ncols), out_png)
    samples = out["samples"]
    if samples.ndim == 2 and samples.shape[1] == 2:
        return _write_png(_scatter(samples), out_png)
    raise ValueError(f"cannot draw samples of shape {samples.shape[1:]}: only images [H, W, C] and 2-D points")


# --------------------------------------------------------------------------------------
# TFLite
# --------------------------------------------------------------------------------------


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
        tflite_path = os.path.join(tflite_path, TFLITE_FILENAME)
    if not os.path.isfile(tflite_path):
        raise FileNotFoundError(f"TFLite model not found: {tflite_path!r}")
    runner = _tflite_interpreter(tflite_path).get_signature_runner(SERVING_SIGNATURE)
    inputs = runner.get_input_details()
    z = np.asarray(z, np.float32)
    latent_dim = inputs["z"]["shape_signature"][-1]
    if z.ndim != 2 or z.shape[1] != latent_dim:
        raise ValueError(f"z must have shape [N, {latent_dim}], got {list(z.shape)}")
    kw = {"z": z}
    if "labels" in inputs:
        if labels is None:
            raise ValueError("this export is conditional: pass labels int [N]")
        labels = np.asarray(labels, np.int32).reshape(-1)
        if labels.shape[0] != z.shape[0]:
            raise ValueError(f"labels must have shape [{z.shape[0]}], got {list(labels.shape)}")
        kw["labels"] = labels
    elif labels is not None:
        raise ValueError("this export is unconditional: labels must be None")
    out = runner(**kw)
    (value,) = out.values()
    return np.asarray(value)
