"""What to export: a generator with its latent size, classes, output shape and kind, a
translation generator with its source shape (:class:`TranslationSource`), or both generators
of a CycleGAN, one per direction (:class:`CycleGANSource`).

:func:`resolve_source` turns what :func:`tfgan_app.export.export_generator` accepts (a GAN
object, a run directory or a bare ``keras.Model``) into an :class:`ExportSource`. A run
directory is read through :class:`tfgan_app.rundir.RunDir` (which picks the EMA generator);
whether the generator makes images or points, or translates images, is
:func:`tfgan_app.kinds.kind_of`'s decision (``Kind.export_signatures``).
"""

from __future__ import annotations

import os

from tfgan_app import kinds
from tfgan_app.builders.infogan import code_size
from tfgan_app.export import contract


class ExportSource:
    """A generator and what the export needs to know about it.

    Args:
      generator: ``keras.Model``: ``z float32 [B, latent_dim]`` (``[z, labels int32 [B]]``
        when ``num_classes`` is set) -> float ``[B, *output_shape]``.
      latent_dim: int >= 1.
      num_classes: ``None`` (or 0) for an unconditional generator, else int >= 1.
      origin: str naming where the generator came from (recorded in the metadata).

    Attributes:
      output_shape: tuple, one sample's shape (probed by calling the generator on a batch
        of 2); output_dtype: its dtype name; kind: :class:`tfgan_app.kinds.Kind`.

    Raises:
      ValueError: bad sizes, a generator that cannot be called on ``z`` (and ``labels``),
        a non-float output, or an output shape no kind of output matches.
    """

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
        self.code_size = code_size(generator)  # InfoGAN's categorical code (0: none)
        try:
            self.kind = kinds.kind_of(shape=self.output_shape, num_classes=self.num_classes)
        except ValueError as e:
            raise ValueError(f"cannot export the generator from {self.origin}: {e}") from None

    @property
    def conditional(self) -> bool:
        return self.num_classes is not None

    def metadata(self) -> dict:
        """What the export's ``tfgan_app_export.json`` records about this generator."""
        return {"kind": self.kind.name, "latent_dim": self.latent_dim,
                "num_classes": self.num_classes, "output_shape": list(self.output_shape),
                "output_key": self.output_key, "png": bool(self.has_png)}

    @property
    def output_key(self) -> str:
        """The one output of ``serving_default``: ``"images"`` or ``"samples"``."""
        return self.kind.export_outputs[0]

    @property
    def has_png(self) -> bool:
        """Whether ``sample``/``interpolate`` also return PNG files (images with 1-4 channels)."""
        return contract.IMAGES_PNG in self.kind.export_outputs and self.output_shape[-1] in (1, 2, 3, 4)

    def call(self, z, labels=None):
        """Run the generator in inference mode (``training=False``); returns float32
        ``[B, *output_shape]``."""
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
            takes = f"[z, labels] (float32 [2, {self.latent_dim}], int32 [2])"
            if not self.conditional:
                takes = f"z (float32 [2, {self.latent_dim}])"
            raise ValueError(
                f"the generator from {self.origin} cannot be called on {takes}: {e}. "
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


def _single_output(out, origin):
    if isinstance(out, (list, tuple)):
        if len(out) != 1:
            raise ValueError(f"the generator from {origin} returns {len(out)} outputs; expected one")
        out = out[0]
    if isinstance(out, dict) or not hasattr(out, "dtype"):
        raise ValueError(f"the generator from {origin} returns {type(out).__name__}; expected one tensor")
    return out


def _strides(generator) -> int:
    """The product of the spatial strides of the generator's convolutions and poolings: the
    factor its input sizes must be divisible by (``2**depth`` for a U-Net)."""
    import keras

    m = 1
    for layer in getattr(generator, "layers", []):
        if isinstance(layer, keras.Model):
            m *= _strides(layer)
            continue
        strides = getattr(layer, "strides", None)
        if isinstance(layer, keras.layers.Conv2DTranspose) or not strides:
            continue
        m *= int(strides[0]) if isinstance(strides, (tuple, list)) else int(strides)
    return m


class TranslationSource:
    """A translation generator (``source [B, h, w, Cs]`` -> ``[B, H, W, C]``) and what the
    export needs to know about it (:mod:`tfgan_app.export.contract`, translation exports).

    Attributes:
      source_shape: ``(h, w, Cs)``, the training size; output_shape: ``(H, W, C)``;
      scale: ``H // h`` (1 for a U-Net, the factor for super-resolution); size_multiple: what
      other sizes must be divisible by; fixed_size: whether only the training size works
      (found by running the generator at another size); kind: the translation kind.

    Raises:
      ValueError: a generator that does not take one image, cannot be run on one at its
        training size, or returns something other than one float image batch.
    """

    def __init__(self, generator, origin, kind):
        import tensorflow as tf

        self.generator, self.origin, self.kind = generator, origin, kind
        inputs = getattr(generator, "inputs", None) or []
        if len(inputs) != 1 or len(inputs[0].shape) != 4 or inputs[0].shape[-1] is None:
            raise ValueError(f"the translation generator from {origin} must take one image "
                             f"input [B, h, w, C]; it takes {[tuple(i.shape) for i in inputs]}")
        h, w, cs = inputs[0].shape[1:]
        self.size_multiple = _strides(generator)
        h, w = h or 2 * self.size_multiple, w or 2 * self.size_multiple
        self.source_shape = (int(h), int(w), int(cs))
        try:
            out = self.call(tf.zeros([2, *self.source_shape]))
        except Exception as e:  # noqa: BLE001 - re-raised with context
            raise ValueError(f"the generator from {origin} cannot translate a batch of "
                             f"{self.source_shape} images: {e}") from e
        if not tf.as_dtype(out.dtype).is_floating or len(out.shape) != 4:
            raise ValueError(f"the generator from {origin} must return float images "
                             f"[B, H, W, C], got {out.dtype.name} {list(out.shape)}")
        self.output_shape = tuple(int(d) for d in out.shape[1:])
        self.scale = self.output_shape[0] // h
        self.fixed_size = not self._accepts(h + self.size_multiple, w + self.size_multiple)

    @property
    def conditional(self) -> bool:
        return False

    @property
    def has_png(self) -> bool:
        return self.source_shape[-1] in (1, 3, 4) and self.output_shape[-1] in (1, 3, 4)

    def call(self, source):
        """Run the generator in inference mode; float32 ``[B, H, W, C]``."""
        import tensorflow as tf

        return tf.cast(_single_output(self.generator(source, training=False), self.origin),
                       tf.float32)

    def _accepts(self, h, w) -> bool:
        """Whether a graph of the generator with unknown sizes runs on ``h x w`` sources and
        returns ``scale`` times their size."""
        import tensorflow as tf

        spec = tf.TensorSpec([None, None, None, self.source_shape[-1]], tf.float32)

        def call(source):  # a new function each time: no retracing warning
            return self.call(source)

        try:
            out = tf.function(call, input_signature=[spec])(tf.zeros([1, h, w, self.source_shape[-1]]))
        except Exception:  # noqa: BLE001 - any failure means: not at this size
            return False
        return tuple(out.shape[1:3]) == (h * self.scale, w * self.scale)

    def metadata(self) -> dict:
        """What the export's ``tfgan_app_export.json`` records about this generator."""
        return {"kind": self.kind.name, "source_shape": list(self.source_shape),
                "output_shape": list(self.output_shape), "output_key": contract.IMAGES,
                "scale": self.scale, "size_multiple": self.size_multiple,
                "fixed_size": self.fixed_size, "png": bool(self.has_png),
                "latent_dim": None, "num_classes": None}


class CycleGANSource:
    """Both generators of a :class:`tfgan_app.cyclegan.CycleGAN` (``G: A -> B``, ``F: B -> A``)
    for one export with a float and a PNG signature per direction
    (:data:`tfgan_app.export.contract.DIRECTION_SIGNATURES`).

    Args:
      generators: ``{"a_to_b": (keras.Model, origin), "b_to_a": (keras.Model, origin)}``:
        each direction's generator and where it came from (:func:`cyclegan_generators`, or
        a run directory's :meth:`tfgan_app.rundir.RunDir.load_generator`).
      kind: the ``cyclegan`` kind.

    Attributes:
      directions: ``{"a_to_b": TranslationSource, "b_to_a": TranslationSource}``;
      generators: the two networks exported; origin: both origins.
    """

    conditional = False

    def __init__(self, generators, kind):
        self.kind = kind
        self.directions = {d: TranslationSource(*generators[d], kind) for d in contract.DIRECTIONS}
        self.origin = ", ".join(s.origin for s in self.directions.values())
        self.generators = [s.generator for s in self.directions.values()]

    @property
    def has_png(self) -> bool:
        return all(s.has_png for s in self.directions.values())

    def metadata(self) -> dict:
        """The ``a_to_b`` generator's description (what ``serving_default`` translates) with
        ``directions``: each direction's ``source_shape``, ``output_shape``, ``scale``,
        ``size_multiple``, ``fixed_size`` and ``png``."""
        per = {d: {k: v for k, v in s.metadata().items()
                   if k not in ("kind", "output_key", "latent_dim", "num_classes")}
               for d, s in self.directions.items()}
        return {**self.directions["a_to_b"].metadata(), "kind": self.kind.name,
                "directions": per, "serving_direction": "a_to_b"}


def cyclegan_generators(gan, use_ema=True) -> dict:
    """``{direction: (generator, origin)}`` of a CycleGAN object: ``sampling_generator``
    (the EMA copies when kept and ``use_ema``), else ``generator_ab``/``generator_ba``."""
    out = {}
    for d, name in zip(contract.DIRECTIONS, ("generator_ab", "generator_ba")):
        raw = getattr(gan, name)
        gen = gan.sampling_generator(d) if use_ema else raw
        out[d] = (gen, f"gan.{'ema_' if gen is not raw else ''}{name}")
    return out


def _two_way(kind) -> bool:
    """Whether ``kind`` exports a signature per direction (the ``cyclegan`` kind)."""
    return contract.DIRECTION_SIGNATURES["a_to_b"][0] in kind.export_signatures


def _cyclegan_kind(data):
    """The kind of unpaired data (``data`` None: described as ``tfgan_app.data.unpaired``
    describes it) when it exports a signature per direction, else None."""
    try:
        kind = kinds.kind_of({"unpaired": True} if data is None else data)
    except ValueError:
        return None
    return kind if _two_way(kind) else None


def _takes_an_image(generator) -> bool:
    inputs = getattr(generator, "inputs", None) or []
    return len(inputs) == 1 and len(inputs[0].shape) == 4


def _translation_kind(data, generator):
    """The kind of a generator with a data description (``None``: a generator that takes one
    image is described as paired data), when that kind exports translation signatures."""
    if data is None and _takes_an_image(generator):
        data = {"paired": True}  # what tfgan_app.data.paired describes; kind_of decides
    try:
        kind = kinds.kind_of(data) if data is not None else None
    except ValueError:  # a description no kind matches: the output shape decides (ExportSource)
        return None
    return kind if kind is not None and contract.TRANSLATE_SIGNATURE in kind.export_signatures else None


def _infer_latent_dim(model) -> int:
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


def resolve_source(gan_or_run_dir, use_ema=True, latent_dim=None, num_classes=None):
    """Turn a GAN object, a run directory or a bare generator into an :class:`ExportSource`.

    Args:
      gan_or_run_dir: an :class:`ExportSource` (returned as is); a run directory (str or
        path-like, read with :class:`tfgan_app.rundir.RunDir`; a CycleGAN run's two
        sampling generators); a :class:`tfgan_app.cyclegan.CycleGAN` (a
        :class:`CycleGANSource`); an object with ``.generator`` (and ``.latent_dim``,
        ``.num_classes``, ``.ema_generator``); or a ``keras.Model`` generator.
      use_ema: take the EMA generator when there is one.
      latent_dim, num_classes: override what the object says.

    Raises:
      tfgan_app.rundir.RunDirError: a missing run directory or file (a FileNotFoundError).
      TypeError: anything else.
    """
    import keras

    obj = gan_or_run_dir
    if isinstance(obj, (ExportSource, TranslationSource, CycleGANSource)):
        return obj
    if isinstance(obj, (str, os.PathLike)):
        from tfgan_app.rundir import RunDir

        run = RunDir(obj)
        kind = _cyclegan_kind(run.config.get("data") or {})
        if kind is not None:  # G and F, each the EMA copy when kept (RunDir decides)
            return CycleGANSource({d: (run.load_generator(use_ema, d),
                                       run.sampling_generator_path(use_ema, d))
                                   for d in contract.DIRECTIONS}, kind)
        generator = run.load_generator(use_ema)
        origin = run.sampling_generator_path(use_ema)
        kind = _translation_kind(run.config.get("data"), generator)  # what RunDir.kind says
        if kind is not None:  # (runs written without a data description still export)
            return TranslationSource(generator, origin, kind)
        return ExportSource(generator, run.latent_dim, run.num_classes, origin=origin)
    if getattr(obj, "generator_ab", None) is not None:  # a CycleGAN: both directions
        kind = _cyclegan_kind((getattr(obj, "run_config", None) or {}).get("data"))
        if kind is None:
            raise ValueError("a model with generator_ab/generator_ba must be of a kind that "
                             "exports both directions (unpaired data, the 'cyclegan' kind)")
        return CycleGANSource(cyclegan_generators(obj, use_ema), kind)
    if getattr(obj, "generator", None) is not None:
        generator = obj.generator
        origin = "gan.generator"
        ema = getattr(obj, "ema_generator", None) if use_ema else None
        if ema is not None:
            generator, origin = ema, "gan.ema_generator"
        kind = _translation_kind((getattr(obj, "run_config", None) or {}).get("data"), generator)
        if kind is not None:
            return TranslationSource(generator, origin, kind)
        ld = latent_dim if latent_dim is not None else getattr(obj, "latent_dim", None)
        if ld is None:
            ld = _infer_latent_dim(generator)
        nc = num_classes if num_classes is not None else getattr(obj, "num_classes", None)
        return ExportSource(generator, ld, nc, origin=origin)
    if isinstance(obj, keras.Model):
        kind = _translation_kind(None, obj)
        if kind is not None:
            return TranslationSource(obj, "keras.Model", kind)
        ld = latent_dim if latent_dim is not None else _infer_latent_dim(obj)
        if num_classes is None and len(obj.inputs or []) > 1:
            raise ValueError("this generator takes several inputs: pass num_classes for a conditional generator")
        return ExportSource(obj, ld, num_classes, origin="keras.Model")
    raise TypeError(
        "expected a GAN (an object with .generator, .latent_dim, .num_classes), a run "
        f"directory path or a keras.Model generator; got {type(obj).__name__}"
    )
