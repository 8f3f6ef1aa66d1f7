"""The export's contract: what a generator export looks like from outside, without TensorFlow.

Shared by the writer (:mod:`tfgan_app.export.writer`), the loader, the verification and the
TF Serving client (:mod:`tfgan_app.serving`), so the signature names, input and output names,
dtypes, file names and limits are spelled once. Needs only the standard library and NumPy.

Layout of a model base directory (the layout TF Serving watches)::

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
    ``_bytes``). ``z = tf.random.stateless_normal([N, L], seed=[seed, 0])``: the same
    latent vectors as :func:`tfgan_app.sampling.latent_vectors` ``(N, L, seed)`` (for a
    generator with InfoGAN's categorical code, its codes balanced by
    :func:`tfgan_app.sampling.balanced_codes`), so the result is a pure function of the
    inputs and equals ``GANModel.generate(N, seed=seed)``.
``interpolate``
    inputs ``seed_a``, ``seed_b`` int64 scalars, ``steps`` int32 scalar in
    ``[1, max_samples]`` (and ``labels`` int32 ``[steps]`` or empty: one label drawn
    from ``seed_a`` for the whole path) -> ``images`` uint8 ``[steps, H, W, C]`` and
    ``images_png_bytes`` string ``[steps]``. Spherical interpolation from the latent of
    ``sample(1, seed_a)`` to the latent of ``sample(1, seed_b)``.

Which outputs a generator gets is decided by :func:`tfgan_app.kinds.kind_of` from its output
shape (``Kind.export_outputs``): images ``[H, W, C]`` get ``images``/``images_png_bytes``;
2-D points (the toy generators, ``[N, 2]``) get a single output ``samples`` (float32, the
generator's output shape).

Image-to-image translation exports (the ``translation`` kind: a generator that maps a source
image ``[h, w, Cs]`` to an image ``[H, W, C]``, ``H = scale * h``) have other signatures
(``Kind.export_signatures``):

``serving_default`` and ``translate``
    input ``source`` float32 ``[N, h, w, Cs]`` in ``[-1, 1]`` -> ``images`` float32
    ``[N, H, W, C]`` in ``[-1, 1]`` (the generator with ``training=False``).
``translate_png``
    input ``source_png_bytes`` string ``[N]`` (PNG files of one size, ``Cs`` channels) ->
    ``images_png_bytes`` string ``[N]``: each PNG decoded, mapped to ``x / 127.5 - 1``,
    translated, mapped back with ``round((y + 1) * 127.5)`` clipped to ``[0, 255]``, encoded.

CycleGAN exports (the ``cyclegan`` kind: ``G: A -> B`` and ``F: B -> A`` in one SavedModel)
have the same two signatures per direction (:data:`DIRECTION_SIGNATURES`):
``translate_a_to_b`` and ``translate_b_to_a`` (float, as ``translate``),
``translate_a_to_b_png`` and ``translate_b_to_a_png`` (as ``translate_png``), and
``serving_default`` = ``translate_a_to_b``. The metadata describes the ``a_to_b`` generator at
its top level and each direction under ``directions``.

``h`` and ``w`` may be any multiple of the export's ``size_multiple`` (``2**depth`` for a
U-Net, 1 for the SRGAN-style generator) unless the export records ``fixed_size`` (then only
the training size); ``N`` is in ``[1, max_samples]`` and ``h * w`` at most
:data:`MAX_IMAGE_PIXELS`. Anything else is an ``INVALID_ARGUMENT`` error naming the size and
what was expected (:func:`source_size_problem` words the same checks for clients).
"""

from __future__ import annotations

import os

import numpy as np

SERVING_SIGNATURE = "serving_default"
SAMPLE_SIGNATURE = "sample"
INTERPOLATE_SIGNATURE = "interpolate"
SIGNATURES = (SERVING_SIGNATURE, SAMPLE_SIGNATURE, INTERPOLATE_SIGNATURE)
TRANSLATE_SIGNATURE = "translate"
TRANSLATE_PNG_SIGNATURE = "translate_png"
TRANSLATION_SIGNATURES = (SERVING_SIGNATURE, TRANSLATE_SIGNATURE, TRANSLATE_PNG_SIGNATURE)
#: The two directions of a CycleGAN export (``tfgan_app.cyclegan.DIRECTIONS``): G: A -> B, F: B -> A.
DIRECTIONS = ("a_to_b", "b_to_a")
#: Each direction's float and PNG signatures; a CycleGAN export's ``serving_default`` is
#: ``translate_a_to_b``.
DIRECTION_SIGNATURES = {d: (f"translate_{d}", f"translate_{d}_png") for d in DIRECTIONS}
CYCLEGAN_SIGNATURES = (SERVING_SIGNATURE, *(s for d in DIRECTIONS for s in DIRECTION_SIGNATURES[d]))
#: Every float translation signature and its PNG twin (a translation export's, then a CycleGAN
#: export's, per direction).
TRANSLATE_PAIRS = {TRANSLATE_SIGNATURE: TRANSLATE_PNG_SIGNATURE, **dict(DIRECTION_SIGNATURES.values())}
#: Inputs of the translation signatures: float source images, or their PNG files.
SOURCE, SOURCE_PNG = "source", "source_png_bytes"

#: Name of the conditional generators' extra input, in every signature.
LABELS = "labels"
#: Inputs of each signature, besides ``labels`` (conditional exports only).
SIGNATURE_INPUTS = {
    SERVING_SIGNATURE: ("z",),
    SAMPLE_SIGNATURE: ("num_samples", "seed"),
    INTERPOLATE_SIGNATURE: ("seed_a", "seed_b", "steps"),
}
#: dtype of every input, by name.
INPUT_DTYPES = {
    "z": np.float32,
    LABELS: np.int32,
    "num_samples": np.int32,
    "seed": np.int64,
    "seed_a": np.int64,
    "seed_b": np.int64,
    "steps": np.int32,
    SOURCE: np.float32,
    SOURCE_PNG: np.object_,
}
#: Inputs of each signature of a translation export.
TRANSLATION_INPUTS = {
    SERVING_SIGNATURE: (SOURCE,),
    **{name: (SOURCE,) for name in TRANSLATE_PAIRS},
    **{name: (SOURCE_PNG,) for name in TRANSLATE_PAIRS.values()},
}
#: Output names: images (with PNGs) or points, as ``tfgan_app.kinds.Kind.export_outputs``.
IMAGES, IMAGES_PNG, SAMPLES = "images", "images_png_bytes", "samples"
#: Output dtypes of each signature (``images_png_bytes`` is a string tensor).
OUTPUT_DTYPES = {
    SERVING_SIGNATURE: {IMAGES: np.float32, SAMPLES: np.float32},
    SAMPLE_SIGNATURE: {IMAGES: np.uint8, SAMPLES: np.float32},
    INTERPOLATE_SIGNATURE: {IMAGES: np.uint8, SAMPLES: np.float32},
    **{name: {IMAGES: np.float32} for name in TRANSLATE_PAIRS},
    **{name: {} for name in TRANSLATE_PAIRS.values()},
}
#: The name of a signature's only output, for responses that drop it (TF Serving's REST API
#: answers ``{"outputs": value}`` when a signature has one output).
SINGLE_OUTPUT = {**{name: IMAGES for name in TRANSLATE_PAIRS},
                 **{name: IMAGES_PNG for name in TRANSLATE_PAIRS.values()}}

METADATA_FILENAME = "tfgan_app_export.json"
METADATA_RELPATH = os.path.join("assets.extra", METADATA_FILENAME)
SAVED_MODEL_FILENAME = "saved_model.pb"
TFLITE_FILENAME = "model.tflite"
TEMP_PREFIX = ".tmp-"
FORMATS = ("saved_model", "tflite")
#: Largest ``num_samples``/``steps`` a signature accepts unless the export says otherwise.
DEFAULT_MAX_SAMPLES = 1024
#: The input that fixes how many items a signature's outputs hold (their first dimension):
#: the rows of ``z``, ``num_samples`` or ``steps``.
BATCH_INPUT = {SERVING_SIGNATURE: "z", SAMPLE_SIGNATURE: "num_samples", INTERPOLATE_SIGNATURE: "steps",
               **{name: SOURCE for name in TRANSLATE_PAIRS},
               **{name: SOURCE_PNG for name in TRANSLATE_PAIRS.values()}}
#: Inputs that are batches (their first dimension is the item count), with their rank.
BATCHED_INPUTS = {"z": 2, SOURCE: 4, SOURCE_PNG: 1}
#: Largest response a client reads, in bytes: a REST body or a gRPC message (the gRPC
#: channel's receive limit). 1,024 RGB images of 64x64 (JSON numbers and their PNGs) fit;
#: the clients take ``max_response_bytes`` for larger answers.
MAX_RESPONSE_BYTES = 256 << 20
#: Largest image a client decodes, in pixels (``H * W``) per image: a PNG's header is read
#: before its pixels, so a small file that claims a huge image is refused undecoded.
MAX_IMAGE_PIXELS = 4096 * 4096
#: Largest batch of decoded PNGs, in bytes (``N * H * W * C``), checked before decoding.
MAX_DECODED_BYTES = 1 << 30
EXPORT_FORMAT_VERSION = 1


def signature_inputs(signature: str, conditional: bool, translation: bool = False) -> dict:
    """The documented inputs of ``signature``: ``{name: dtype name}`` (``labels`` added for
    conditional exports; a translation export's when ``translation``), e.g.
    ``{"num_samples": "int32", "seed": "int64"}``; strings are ``"string"`` (TensorFlow's)."""
    if translation:
        names = TRANSLATION_INPUTS[signature]
    else:
        names = SIGNATURE_INPUTS[signature] + ((LABELS,) if conditional else ())
    return {name: "string" if INPUT_DTYPES[name] is np.object_ else np.dtype(INPUT_DTYPES[name]).name
            for name in names}


def direction_name(direction) -> str:
    """``direction`` as one of :data:`DIRECTIONS`: ``"a_to_b"``/``"b_to_a"``, or the command
    line's ``AtoB``/``BtoA`` (any case, with or without underscores).

    Raises:
      ValueError: anything else, naming the valid spellings.
    """
    key = str(direction).lower().replace("_", "").replace("-", "")
    named = {d.replace("_", ""): d for d in DIRECTIONS}
    if key not in named:
        raise ValueError(f"direction must be a_to_b (AtoB) or b_to_a (BtoA), got {direction!r}")
    return named[key]


def batch_input(signature: str, inputs) -> str | None:
    """The input of a request that fixes how many items the answer holds: the signature's
    (:data:`BATCH_INPUT`) when the request has it, else a batched input it has (``source``
    for a translation export's ``serving_default``), else None."""
    key = BATCH_INPUT.get(signature)
    if inputs and key in inputs:
        return key
    return next((k for k in BATCHED_INPUTS if inputs and k in inputs), None)


def source_size_problem(shape, meta: dict) -> str | None:
    """What is wrong with source images of ``shape`` (``[N, h, w, Cs]``) for a translation
    export described by ``meta`` (its ``tfgan_app_export.json``), or None when they fit.

    The export's graph makes the same checks (an ``INVALID_ARGUMENT`` error); this words them
    before a request is sent.
    """
    shape = tuple(int(d) for d in shape)
    h0, w0, channels = (int(d) for d in meta["source_shape"])
    m, fixed = int(meta.get("size_multiple") or 1), bool(meta.get("fixed_size"))
    if len(shape) != 4:
        return f"source images must be [N, h, w, {channels}] (a batch), got shape {list(shape)}"
    n, h, w, c = shape
    if c != channels:
        what = {1: "grayscale", 3: "RGB"}.get(channels, f"{channels}-channel")
        return (f"source images have {c} channel(s); this model translates {what} images "
                f"({channels} channel(s), trained on {h0}x{w0}x{channels})")
    if fixed and (h, w) != (h0, w0):
        return f"source images are {h}x{w}; this model translates {h0}x{w0} images only"
    if h < 1 or w < 1 or h % m or w % m:
        return (f"source images are {h}x{w}; this model needs a height and width divisible "
                f"by {m} (e.g. {h0}x{w0}, its training size)")
    if h * w > MAX_IMAGE_PIXELS:
        return f"source images are {h}x{w}, over MAX_IMAGE_PIXELS={MAX_IMAGE_PIXELS}"
    if n < 1:
        return "no source images (N = 0)"
    return None


def labels_array(labels, n: int, what: str = "sample") -> np.ndarray:
    """Class labels of a request for ``n`` items: ``int32 [n]``, or ``int32 [0]`` (empty).

    Args:
      labels: int array-like ``[n]``, a scalar (repeated ``n`` times) or empty (``[]``: the
        ``sample``/``interpolate`` signatures then draw the labels from the seed).
      n: number of items (samples, rows of ``z`` or interpolation steps).
      what: what one item is, for the error message.

    Raises:
      ValueError: labels that are not 1-D, not integers, or neither ``n`` entries nor empty.
    """
    labels = np.asarray(labels)
    if labels.ndim == 0:
        labels = np.full([n], labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be 1-D (int [{n}]), got shape {labels.shape}")
    if labels.size and not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integers, got {labels.dtype}")
    if labels.size not in (0, n):
        raise ValueError(f"labels must have {n} entries (one per {what}) or be empty, "
                         f"got {labels.size}")
    return labels.astype(np.int32)


# --------------------------------------------------------------------------------------
# Versions
# --------------------------------------------------------------------------------------


def list_versions(base_dir) -> list:
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


def next_version(base_dir) -> int:
    """The version :func:`tfgan_app.export.export_generator` picks when none is given.

    Args:
        base_dir: str or path-like.

    Returns:
        int >= 1: one more than the highest existing version, or 1 if there is none.
    """
    versions = list_versions(base_dir)
    return versions[-1] + 1 if versions else 1


def check_version(version) -> int:
    """``version`` as a positive int (an all-digit string is accepted).

    Raises:
      ValueError: anything else (``0``, negatives, floats, booleans, other strings).
    """
    if isinstance(version, bool) or not isinstance(version, (int, np.integer)):
        if isinstance(version, str) and version.isdigit():
            version = int(version)
        else:
            raise ValueError(f"version must be a positive integer, got {version!r}")
    version = int(version)
    if version < 1:
        raise ValueError(f"version must be a positive integer, got {version}")
    return version
