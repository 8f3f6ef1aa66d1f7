"""The exported signatures as TensorFlow graphs (see :mod:`tfgan_app.export.contract`).

:func:`build_archive` wraps an :class:`~tfgan_app.export.source.ExportSource` in a
``keras.export.ExportArchive`` whose endpoints are the documented signatures. The graphs hold
only TensorFlow ops and the generator's variables, so the SavedModel loads without
``tfgan_app`` or Keras objects.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tfgan_app.export import contract as c
from tfgan_app.sampling import balanced_codes


def to_uint8(images):
    """float32 ``[..]`` in ``[-1, 1]`` -> uint8 ``[..]`` in ``[0, 255]`` (clipped, rounded): the
    graph twin of :func:`tfgan_app.images.to_uint8`, the same formula."""
    return tf.cast(tf.round(tf.clip_by_value((images + 1.0) * 127.5, 0.0, 255.0)), tf.uint8)


def latents(n, latent_dim, seed):
    """float32 ``[n, latent_dim]`` for an int32 scalar tensor ``n`` and int64 scalar ``seed``:
    ``stateless_normal([n, L], seed=[seed, 0])``, the same sampler as
    :func:`tfgan_app.sampling.latent_vectors` (which takes Python ints)."""
    return tf.random.stateless_normal(tf.stack([n, latent_dim]),
                                      seed=tf.stack([seed, tf.constant(0, tf.int64)]))


def slerp_path(za, zb, steps):
    """float32 ``[steps, L]``: the great circle from ``za`` to ``zb`` (each ``[1, L]``),
    ``steps`` points including both ends; a straight line when they are (anti)parallel."""
    t = tf.reshape(tf.linspace(0.0, 1.0, steps), [-1, 1])
    na = tf.math.l2_normalize(za, axis=-1)
    nb = tf.math.l2_normalize(zb, axis=-1)
    omega = tf.acos(tf.clip_by_value(tf.reduce_sum(na * nb), -1.0, 1.0))
    so = tf.sin(omega)
    safe = tf.maximum(so, 1e-6)
    slerp = tf.sin((1.0 - t) * omega) / safe * za + tf.sin(t * omega) / safe * zb
    lerp = (1.0 - t) * za + t * zb
    return tf.where(so > 1e-6, slerp, lerp)


class _Graphs:
    """The signature functions of one source; ``checks=False`` leaves out the runtime
    assertions (TFLite has no Assert op)."""

    def __init__(self, src, max_samples, checks):
        self.src, self.max_samples, self.checks = src, max_samples, checks

    def spec(self, name, shape):
        return tf.TensorSpec(shape, tf.as_dtype(c.INPUT_DTYPES[name]), name=name)

    def input_signature(self, signature):
        shapes = {"z": [None, self.src.latent_dim], c.LABELS: [None]}
        names = c.SIGNATURE_INPUTS[signature] + ((c.LABELS,) if self.src.conditional else ())
        return [self.spec(name, shapes.get(name, [])) for name in names]

    def check_labels(self, labels, n=None):
        if not self.checks:
            return labels
        num_classes = self.src.num_classes
        ops = [
            tf.debugging.assert_non_negative(labels, message="labels must be >= 0"),
            tf.debugging.assert_less(labels, tf.constant(num_classes, tf.int32),
                                     message=f"labels must be < num_classes ({num_classes})"),
        ]
        if n is not None:
            ops.append(tf.debugging.assert_equal(
                tf.size(labels), n, message="labels must be empty or have one entry per sample"))
        with tf.control_dependencies(ops):
            return tf.identity(labels)

    def check_count(self, n, name):
        if not self.checks:
            return n
        with tf.control_dependencies([
            tf.debugging.assert_greater_equal(n, 1, message=f"{name} must be >= 1"),
            tf.debugging.assert_less_equal(n, self.max_samples,
                                           message=f"{name} must be <= {self.max_samples}"),
        ]):
            return tf.identity(n)

    def seeded_labels(self, n, seed):
        return tf.random.stateless_uniform(
            tf.reshape(n, [1]), seed=tf.stack([seed, tf.constant(1, tf.int64)]), minval=0,
            maxval=self.src.num_classes, dtype=tf.int32)

    def postprocess(self, x):
        """Generator output -> the ``sample``/``interpolate`` outputs of the source's kind."""
        if c.IMAGES not in self.src.kind.export_outputs:
            return {self.src.output_key: x}
        u8 = to_uint8(x)
        out = {c.IMAGES: u8}
        if self.src.has_png:
            out[c.IMAGES_PNG] = tf.map_fn(tf.io.encode_png, u8,
                                          fn_output_signature=tf.TensorSpec([], tf.string))
        return out

    # The signatures; ``labels`` is None (absent) for unconditional sources.

    def serve(self, z, labels=None):
        if labels is not None:
            labels = self.check_labels(labels, tf.shape(z)[0])
        return {self.src.output_key: self.src.call(z, labels)}

    def sample(self, num_samples, seed, labels=None):
        n = self.check_count(num_samples, "num_samples")
        if labels is not None:
            labels = tf.cond(tf.size(labels) > 0, lambda: labels, lambda: self.seeded_labels(n, seed))
            labels = self.check_labels(labels, n)
        z = latents(n, self.src.latent_dim, seed)
        if self.src.code_size:  # InfoGAN's code, balanced as GANModel.generate balances it
            z = balanced_codes(z, self.src.code_size)
        return self.postprocess(self.src.call(z, labels))

    def interpolate(self, seed_a, seed_b, steps, labels=None):
        steps = self.check_count(steps, "steps")
        one = tf.constant(1, tf.int32)
        za = latents(one, self.src.latent_dim, seed_a)  # == sample(1, seed_a)'s latent
        zb = latents(one, self.src.latent_dim, seed_b)
        if labels is not None:
            labels = tf.cond(
                tf.size(labels) > 0,
                lambda: labels,
                lambda: tf.fill(tf.reshape(steps, [1]), self.seeded_labels(one, seed_a)[0]),
            )
            labels = self.check_labels(labels, steps)
        return self.postprocess(self.src.call(slerp_path(za, zb, steps), labels))


class _TranslationGraphs:
    """The signatures of a :class:`~tfgan_app.export.source.TranslationSource`."""

    def __init__(self, src, max_samples, checks, png_name=c.TRANSLATE_PNG_SIGNATURE):
        self.src, self.max_samples, self.checks = src, max_samples, checks
        self.png_name = png_name  # the PNG signature's name, in its error messages

    def input_signature(self, signature):
        (name,) = c.TRANSLATION_INPUTS[signature]
        if name == c.SOURCE_PNG:
            return [tf.TensorSpec([None], tf.string, name=name)]
        h, w, channels = self.src.source_shape
        if not self.src.fixed_size:
            h = w = None
        return [tf.TensorSpec([None, h, w, channels], tf.float32, name=name)]

    def check_source(self, source):
        """``source`` after the runtime checks of its batch size and image size (the
        contract's :func:`~tfgan_app.export.contract.source_size_problem`, in the graph)."""
        if not self.checks:
            return source
        h0, w0, _ = self.src.source_shape
        m, shape = self.src.size_multiple, tf.shape(source)
        size = tf.strings.format("{}x{}", [shape[1], shape[2]])
        if self.src.fixed_size:
            ok = tf.logical_and(tf.equal(shape[1], h0), tf.equal(shape[2], w0))
            wanted = f"this model translates {h0}x{w0} images only"
        else:
            ok = tf.logical_and(tf.equal(shape[1] % m, 0), tf.equal(shape[2] % m, 0))
            wanted = (f"this model needs a height and width divisible by {m} (e.g. {h0}x{w0}, "
                      "its training size)")
        with tf.control_dependencies([
            tf.debugging.assert_greater_equal(shape[0], 1, message="no source images (N = 0)"),
            tf.debugging.assert_less_equal(shape[0], self.max_samples,
                                           message=f"at most {self.max_samples} images a request"),
            tf.debugging.Assert(tf.logical_and(ok, shape[1] * shape[2] > 0),
                                [tf.strings.join(["source images are ", size, "; ", wanted])]),
            tf.debugging.Assert(shape[1] * shape[2] <= c.MAX_IMAGE_PIXELS, [tf.strings.join(
                ["source images are ", size, f", over {c.MAX_IMAGE_PIXELS} pixels"])]),
        ]):
            return tf.identity(source)

    def translate(self, source):
        return {c.IMAGES: self.src.call(self.check_source(source))}

    def png_checked(self, png):
        """``png`` after checking that it starts with the PNG signature."""
        with tf.control_dependencies([tf.debugging.Assert(
                tf.equal(tf.strings.substr(png, 0, 8), b"\x89PNG\r\n\x1a\n"),
                [f"{self.png_name}: an input is not a PNG file (no PNG signature)"])]):
            return tf.identity(png)

    def decode(self, png, first_shape):
        channels = self.src.source_shape[-1]
        image = tf.io.decode_png(self.png_checked(png), channels=0, dtype=tf.uint8)
        shape = tf.shape(image)
        with tf.control_dependencies([
            tf.debugging.Assert(tf.equal(shape[2], channels), [tf.strings.format(
                f"{self.png_name}: a PNG has {{}} channel(s); this model translates "
                f"{channels}-channel PNGs", shape[2])]),
            tf.debugging.Assert(tf.reduce_all(tf.equal(shape, first_shape)), [tf.strings.format(
                f"{self.png_name}: PNGs of different sizes in one request ({{}} and {{}}); send "
                "one size a request", [shape, first_shape])]),
        ]):
            return tf.ensure_shape(tf.identity(image), [None, None, channels])

    def translate_png(self, source_png_bytes):
        n = tf.size(source_png_bytes)
        with tf.control_dependencies([
            tf.debugging.assert_greater_equal(n, 1, message="no PNG files (N = 0)"),
            tf.debugging.assert_less_equal(n, self.max_samples,
                                           message=f"at most {self.max_samples} images a request"),
        ]):
            pngs = tf.identity(source_png_bytes)
        first_shape = tf.shape(tf.io.decode_png(self.png_checked(pngs[0]), channels=0,
                                                dtype=tf.uint8))
        u8 = tf.map_fn(lambda p: self.decode(p, first_shape), pngs,
                       fn_output_signature=tf.TensorSpec([None, None, self.src.source_shape[-1]],
                                                         tf.uint8))
        out = self.translate(tf.cast(u8, tf.float32) / 127.5 - 1.0)[c.IMAGES]
        return {c.IMAGES_PNG: tf.map_fn(tf.io.encode_png, to_uint8(out),
                                        fn_output_signature=tf.TensorSpec([], tf.string))}

    def endpoints(self, float_name, png_name):
        """``{name: (function, input_signature)}`` of the float and the PNG signature."""
        return {float_name: (self.translate, self.input_signature(float_name)),
                png_name: (self.translate_png, self.input_signature(png_name))}


def _translation_endpoints(src, max_samples, checks):
    """The endpoints of a translation source: ``serving_default``, ``translate`` and
    ``translate_png``; for a :class:`~tfgan_app.export.source.CycleGANSource` a pair per
    direction (:data:`~tfgan_app.export.contract.DIRECTION_SIGNATURES`) and
    ``serving_default`` = ``a_to_b``. ``checks=False`` (TFLite): ``serving_default`` only."""
    directions = getattr(src, "directions", None)
    if directions is None:
        pairs = {None: (src, c.TRANSLATE_SIGNATURE, c.TRANSLATE_PNG_SIGNATURE)}
    else:
        pairs = {d: (directions[d], *c.DIRECTION_SIGNATURES[d]) for d in c.DIRECTIONS}
    endpoints = {}
    for d, (one, float_name, png_name) in pairs.items():
        graphs = _TranslationGraphs(one, max_samples, checks, png_name)
        if d in (None, c.DIRECTIONS[0]):
            endpoints[c.SERVING_SIGNATURE] = (graphs.translate,
                                              graphs.input_signature(c.SERVING_SIGNATURE))
        endpoints.update(graphs.endpoints(float_name, png_name))
    if not checks:  # TFLite: the float signature only (no PNG or Assert ops there)
        endpoints = {c.SERVING_SIGNATURE: endpoints[c.SERVING_SIGNATURE]}
    return endpoints


def build_archive(src, max_samples=c.DEFAULT_MAX_SAMPLES, interpolate=True, checks=True):
    """A ``keras.export.ExportArchive`` holding the documented signatures of ``src``.

    Args:
      src: :class:`~tfgan_app.export.source.ExportSource` (signatures ``serving_default``,
        ``sample``, ``interpolate``), :class:`~tfgan_app.export.source.TranslationSource`
        (``serving_default``, ``translate``, ``translate_png``) or
        :class:`~tfgan_app.export.source.CycleGANSource` (``translate_a_to_b``,
        ``translate_b_to_a``, their ``_png`` twins, ``serving_default`` = ``a_to_b``): its
        kind's ``export_signatures``.
      max_samples: int >= 1, the largest ``num_samples``/``steps`` (or translated batch) accepted.
      interpolate: add the ``interpolate`` signature.
      checks: add the runtime assertions on labels, counts and sizes (off for TFLite, which
        then gets ``serving_default`` only).
    """
    if set(c.TRANSLATE_PAIRS) & set(src.kind.export_signatures):
        generators = src.generators if hasattr(src, "generators") else [src.generator]
        return _archive(generators,
                        _translation_endpoints(src, int(max_samples), checks))
    graphs = _Graphs(src, int(max_samples), checks)
    if src.conditional:
        functions = {c.SERVING_SIGNATURE: graphs.serve, c.SAMPLE_SIGNATURE: graphs.sample,
                     c.INTERPOLATE_SIGNATURE: graphs.interpolate}
    else:  # the same graphs without the labels input

        def serve(z):
            return graphs.serve(z)

        def sample(num_samples, seed):
            return graphs.sample(num_samples, seed)

        def path(seed_a, seed_b, steps):
            return graphs.interpolate(seed_a, seed_b, steps)

        functions = {c.SERVING_SIGNATURE: serve, c.SAMPLE_SIGNATURE: sample,
                     c.INTERPOLATE_SIGNATURE: path}
    if not interpolate:
        del functions[c.INTERPOLATE_SIGNATURE]
    return _archive([src.generator], {name: (fn, graphs.input_signature(name))
                                      for name, fn in functions.items()})


def _archive(generators, endpoints):
    """An archive tracking ``generators`` with ``endpoints`` ``{name: (fn, input_signature)}``."""
    archive = keras.export.ExportArchive()
    for generator in generators:
        archive.track(generator)
    for name, (fn, signature) in endpoints.items():
        archive.add_endpoint(name, fn, input_signature=signature)
    return archive
