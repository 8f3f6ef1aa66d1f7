"""What a request carries: the inputs of each signature as numpy arrays with their dtypes
(protocol-independent: :mod:`.rest` and :mod:`.grpc_client` send them)."""

from __future__ import annotations

import numpy as np

from tfgan_app.export import contract


def _int_scalar(value, name, dtype, minimum=None):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return np.asarray(value, dtype=dtype)


def generate_inputs(z, labels=None):
    """Inputs of the ``serving_default`` signature.

    Args:
        z: float ``[N, latent_dim]`` latent vectors (standard normal for GANs trained
            the usual way).
        labels: conditional models only: int ``[N]`` class ids in ``[0, num_classes)``,
            or a scalar repeated N times. None for unconditional models.

    Returns:
        dict: ``z`` float32 ``[N, latent_dim]`` (and ``labels`` int32 ``[N]``).
    """
    z = np.asarray(z, dtype=np.float32)
    if z.ndim != 2 or z.shape[0] < 1:
        raise ValueError(f"z must have shape [N, latent_dim] with N >= 1, got {list(z.shape)}")
    out = {"z": z}
    if labels is not None:
        out["labels"] = contract.labels_array(labels, z.shape[0], "row of z")
        if out["labels"].size != z.shape[0]:
            raise ValueError("labels must have one entry per row of z")
    return out


def sample_inputs(num_samples, seed=0, labels=None):
    """Inputs of the ``sample`` signature.

    Args:
        num_samples: int >= 1 (the export refuses more than its ``max_samples``).
        seed: int (int64); the same seed gives the same images.
        labels: conditional models only: int ``[num_samples]``, a scalar (repeated), or
            ``[]`` for labels drawn from the seed. None for unconditional models (a
            conditional model rejects a request without ``labels``).

    Returns:
        dict: ``num_samples`` int32 scalar, ``seed`` int64 scalar (and ``labels`` int32).
    """
    out = {
        "num_samples": _int_scalar(num_samples, "num_samples", np.int32, minimum=1),
        "seed": _int_scalar(seed, "seed", np.int64),
    }
    if labels is not None:
        out["labels"] = contract.labels_array(labels, int(num_samples), "sample")
    return out


def interpolate_inputs(seed_a, seed_b, steps=8, labels=None):
    """Inputs of the ``interpolate`` signature.

    Args:
        seed_a, seed_b: int (int64) seeds of the two end points (``sample(1, seed)``).
        steps: int >= 1, number of images along the path.
        labels: conditional models only: int ``[steps]``, a scalar, or ``[]`` (one label
            drawn from ``seed_a``). None for unconditional models.

    Returns:
        dict: ``seed_a``, ``seed_b`` int64 scalars, ``steps`` int32 scalar (and ``labels``).
    """
    out = {
        "seed_a": _int_scalar(seed_a, "seed_a", np.int64),
        "seed_b": _int_scalar(seed_b, "seed_b", np.int64),
        "steps": _int_scalar(steps, "steps", np.int32, minimum=1),
    }
    if labels is not None:
        out["labels"] = contract.labels_array(labels, int(steps), "step")
    return out


def translate_inputs(sources):
    """Inputs of a translation export's ``translate`` (and ``serving_default``) signature.

    Args:
        sources: float ``[N, h, w, Cs]`` source images in ``[-1, 1]`` (uint8 ``x`` maps
            to ``x / 127.5 - 1``), N >= 1; the sizes the export takes are in its
            ``tfgan_app_export.json`` (``source_shape``, ``size_multiple``, ``fixed_size``).

    Returns:
        dict: ``source`` float32 ``[N, h, w, Cs]``.
    """
    sources = np.asarray(sources, dtype=np.float32)
    if sources.ndim != 4 or sources.shape[0] < 1:
        raise ValueError(f"sources must have shape [N, h, w, C] with N >= 1, got {list(sources.shape)}")
    return {contract.SOURCE: sources}


def translate_png_inputs(png_bytes):
    """Inputs of a translation export's ``translate_png`` signature.

    Args:
        png_bytes: a sequence of PNG files (``bytes``), one size and the model's channel
            count (grayscale or RGB) a request.

    Returns:
        dict: ``source_png_bytes``, an object array ``[N]`` of ``bytes`` (REST sends each
        as ``{"b64": ...}``, gRPC as a string tensor).
    """
    items = list(png_bytes) if not isinstance(png_bytes, (bytes, bytearray)) else [png_bytes]
    if not items:
        raise ValueError("png_bytes must hold at least one PNG file")
    for i, b in enumerate(items):
        if not isinstance(b, (bytes, bytearray)):
            raise ValueError(f"png_bytes[{i}] must be bytes (a PNG file), got {type(b).__name__}")
        if not bytes(b[:8]) == b"\x89PNG\r\n\x1a\n":
            raise ValueError(f"png_bytes[{i}] is not a PNG file (no PNG signature)")
    out = np.empty(len(items), dtype=object)
    out[:] = [bytes(b) for b in items]
    return {contract.SOURCE_PNG: out}
