"""Writing an export: one new version directory, atomically (see :mod:`tfgan_app.export.contract`).

The export is written into ``base_dir/.tmp-<hex>/`` (a name TF Serving never loads), flushed
to disk and renamed to ``base_dir/<version>``; if anything fails the temporary directory is
removed and no version directory appears. Existing versions are never modified.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import shutil
import uuid

import numpy as np

from tfgan_app.export import contract as c
from tfgan_app.export.source import resolve_source

logger = logging.getLogger(__name__)


def _metadata(src, fmt, version, max_samples, interpolate):
    import tensorflow as tf

    from tfgan_app import __version__ as pkg_version

    sigs = [s for s in src.kind.export_signatures
            if (interpolate or s != c.INTERPOLATE_SIGNATURE)
            and (fmt != "tflite" or s == c.SERVING_SIGNATURE)]
    return {
        "format": f"tfgan_app.{fmt}",
        "format_version": c.EXPORT_FORMAT_VERSION,
        "version": version,
        **src.metadata(),
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

    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir,
                                                         signature_keys=[c.SERVING_SIGNATURE])
    return converter.convert()


def _write_version(src, fmt, tmp, meta, max_samples, interpolate):
    """Write the whole export of ``src`` into the (temporary) directory ``tmp``."""
    from tfgan_app.export.graph import build_archive

    if fmt == "saved_model":
        _write_saved_model(build_archive(src, max_samples, interpolate), tmp)
        _write_metadata(os.path.join(tmp, c.METADATA_RELPATH), meta)
        return
    staging = os.path.join(tmp, "saved_model_for_tflite")
    # No runtime assertions: TFLite has no Assert op.
    _write_saved_model(build_archive(src, max_samples, interpolate=False, checks=False), staging)
    flatbuffer = _convert_tflite(staging)
    shutil.rmtree(staging)
    with open(os.path.join(tmp, c.TFLITE_FILENAME), "wb") as f:
        f.write(flatbuffer)
    _write_metadata(os.path.join(tmp, c.METADATA_FILENAME), meta)


def export_generator(
    gan_or_run_dir,
    base_dir,
    version=None,
    format="saved_model",  # noqa: A002 - the CLI flag's name
    *,
    use_ema=True,
    interpolate=True,
    max_samples=c.DEFAULT_MAX_SAMPLES,
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
            - a run directory (str/path) written by ``tfgan-app train``, read with
              :class:`tfgan_app.rundir.RunDir` (its EMA generator when the run kept one
              and ``use_ema``);
            - a bare ``keras.Model`` generator (``latent_dim`` inferred from its input;
              pass ``num_classes`` for a conditional one).
            The generator's output shape decides the outputs
            (:func:`tfgan_app.kinds.kind_of`): images ``[H, W, C]`` or points ``[D]``.
            An image-to-image run (the ``translation`` kind; or a generator that takes one
            image, e.g. ``TranslationGAN``'s) is exported with the signatures
            ``serving_default``/``translate`` (float images) and ``translate_png`` (PNG
            files), its kind's ``export_signatures``; a CycleGAN (or its run) with
            ``translate_a_to_b``/``translate_b_to_a`` and their ``_png`` twins
            (``serving_default`` = ``a_to_b``), its EMA generators when kept and ``use_ema``.
        base_dir: str or path-like; the model's base directory (created if missing).
        version: positive int, or None for :func:`~tfgan_app.export.contract.next_version`.
            An existing version is refused with ``FileExistsError``.
        format: ``"saved_model"`` (TF Serving; signatures ``serving_default``, ``sample``,
            ``interpolate``, or a translation export's, see
            :mod:`tfgan_app.export.contract`) or ``"tflite"``
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
        FileNotFoundError: a run directory or its files are missing
            (:class:`tfgan_app.rundir.RunDirError`).
        ValueError / TypeError: a bad argument or a generator that cannot be called
            on ``z`` (and ``labels``).
    """
    if format not in c.FORMATS:
        raise ValueError(f"format must be one of {c.FORMATS}, got {format!r}")
    if isinstance(max_samples, bool) or not isinstance(max_samples, (int, np.integer)) or max_samples < 1:
        raise ValueError(f"max_samples must be a positive integer, got {max_samples!r}")
    base_dir = os.fspath(base_dir)
    if os.path.exists(base_dir) and not os.path.isdir(base_dir):
        raise NotADirectoryError(f"base_dir exists and is not a directory: {base_dir!r}")
    src = resolve_source(gan_or_run_dir, use_ema=use_ema, latent_dim=latent_dim, num_classes=num_classes)
    os.makedirs(base_dir, exist_ok=True)
    version = c.next_version(base_dir) if version is None else c.check_version(version)
    final = os.path.join(base_dir, str(version))
    if os.path.lexists(final):
        raise FileExistsError(
            f"version {version} already exists in {base_dir!r}; existing versions are never "
            "overwritten (omit version to write the next one)"
        )

    tmp = os.path.join(base_dir, f"{c.TEMP_PREFIX}{uuid.uuid4().hex}")
    os.mkdir(tmp)
    try:
        meta = _metadata(src, format, version, int(max_samples), interpolate)
        _write_version(src, format, tmp, meta, int(max_samples), interpolate)
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
