"""Differentiable augmentation of everything the discriminator sees, with an adaptive probability.

Small data sets let the discriminator memorise the real images; its feedback to the
generator then degrades. Two remedies of 2020 augment *every* image the discriminator sees --
real and generated, inside the training step, differentiably, so the generator's gradient
flows through the augmentation -- which does not leak the augmentations into the generated
distribution as long as each is applied with probability ``p < ~0.8`` (Karras et al. 2020):

* **DiffAugment** (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN
  Training"), ops ``color`` (brightness ``+U(-0.5, 0.5)``, saturation ``x U(0, 2)`` about the
  per-pixel channel mean, contrast ``x U(0.5, 1.5)`` about the image mean), ``translation``
  (integer shift of up to 1/8 of the size, zero padding) and ``cutout`` (a square of half the
  size set to 0). Policy ``"diffaugment"`` = ``"color,translation,cutout"``.
* **ADA** (Karras et al. 2020, "Training Generative Adversarial Networks with Limited Data"),
  its ``bgc`` pipeline: ``xflip``, ``rotate90``, ``xint`` (integer translation up to 1/8),
  ``scale`` (isotropic, ``2^N(0, 0.2)``), ``rotate`` (uniform angle, applied before and after
  ``aniso`` with probability ``1 - sqrt(1 - p)`` each), ``aniso`` (``2^N(0, 0.2)`` on x, its
  inverse on y), ``xfrac`` (translation ``N(0, 0.125)`` of the size) -- composed into one
  affine warp with bilinear sampling and reflection padding -- then ``brightness``
  (``+N(0, 0.2)``), ``contrast`` (``x 2^N(0, 0.5)``), ``hue`` (rotation about the luma axis
  by ``U(-pi, pi)``) and ``saturation`` (chroma ``x 2^N(0, 1)``), composed into one colour
  matrix. Policy ``"ada"`` (alias ``"bgc"``). ``hue`` and ``saturation`` need 3 channels:
  on grayscale (or other non-RGB) images they are skipped (identity); ``brightness`` and
  ``contrast`` still apply.

A policy is a comma-separated list of op and policy names (``"ada,cutout"``); whatever the
order given, ops run in the order above (ADA's warp, ADA's colour, DiffAugment's colour,
``translation``, ``cutout``). Each op is applied to each image independently with probability
``p``. Images are ``[B, H, W, C]`` in ``[-1, 1]``; colour ops clip their output to ``[-1, 1]``
with a straight-through gradient (D sees the data's range; G's gradient is not cut where a
pixel saturates) -- the papers do not clip. All randomness is one ``U[0, 1)`` tensor
``[B, k]`` per batch from a ``uniform(k)`` callable, its columns dealt out to the ops (``k``
the policy's total): in training, the model's saved, per-replica stream
(:meth:`AugmentedTraining.augment_uniform`, from ``next_seed()``).

**Adaptive p** (ADA): ``r_t = E[sign(D(x_real))]`` over the real images of the last
``ada_interval`` discriminator steps (all replicas), then ``p <- clip(p + sign(r_t - target)
x n / (ada_kimg x 1000), 0, 1)`` with ``n`` the images counted: ``p`` can move by 1 over
``ada_kimg`` thousand real images. ``r_t`` near 1 means D is confident on every real image
(overfitting); the target is 0.6 in the paper. ``p`` and the running sums are saved with the
model's own variables (``.keras``, ``save_weights``, the run's backups) and restored on
resume; ``aug_p`` (epoch mean of ``p``) and ``r_t`` (epoch mean of ``sign(D(x_real))``) are
logged as metrics. Options: ``augment``, ``augment_p``, ``ada_target``, ``ada_interval``,
``ada_kimg`` (:mod:`tfgan_app.options`; README, "Augmentation").
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

from tfgan_app import replication

#: Every op, in the order a policy applies them.
GEOMETRIC = ("xflip", "rotate90", "xint", "scale", "rotate", "aniso", "xfrac")
ADA_COLOUR = ("brightness", "contrast", "hue", "saturation")
OPS = GEOMETRIC + ADA_COLOUR + ("color", "translation", "cutout")
#: Named policies (sets of ops).
POLICIES = {"diffaugment": ("color", "translation", "cutout"),
            "ada": GEOMETRIC + ADA_COLOUR, "bgc": GEOMETRIC + ADA_COLOUR}

# The papers' constants (ADA's AugmentPipe defaults; DiffAugment's ratios).
_XINT_MAX, _SCALE_STD, _ANISO_STD, _XFRAC_STD = 0.125, 0.2, 0.2, 0.125
_BRIGHTNESS_STD, _CONTRAST_STD, _SATURATION_STD = 0.2, 0.5, 1.0
_TRANSLATION_RATIO, _CUTOUT_SIZE = 0.125, 0.5
#: Uniform draws per image each op takes (its gate first, then its parameters): one
#: ``[B, sum]`` draw serves a whole policy (:func:`augment`).
_WIDTH = {**dict.fromkeys(("xflip", "rotate90", "xint", "scale", "aniso", "xfrac"), 3),
          "rotate": 4, **dict.fromkeys(ADA_COLOUR, 2), "color": 6, "translation": 3,
          "cutout": 3}


def policy_ops(policy) -> tuple:
    """The ops of ``policy`` (a comma-separated string of op/policy names), in apply order.

    Raises ``ValueError`` naming the unknown names and the valid ones."""
    if not isinstance(policy, str) or not policy.strip():
        raise ValueError(f"expected a policy name or comma-separated ops, got {policy!r}")
    names = [n.strip().lower() for n in policy.split(",") if n.strip()]
    unknown = [n for n in names if n not in OPS and n not in POLICIES]
    if unknown:
        raise ValueError(f"unknown augmentation(s) {unknown}; expected policies "
                         f"{sorted(POLICIES)} or ops {list(OPS)}, comma-separated")
    wanted = {op for n in names for op in POLICIES.get(n, (n,))}
    return tuple(op for op in OPS if op in wanted)


def check_policy(value):
    """The ``augment`` option's check: ``None`` (off) or a valid policy string."""
    if value is None:
        return None
    policy_ops(value)
    return value.strip()


# --------------------------------------------------------------------------- helpers

def _normal(u):
    """N(0, 1) from U(0, 1) by the inverse CDF (so every draw is a uniform)."""
    return tf.math.ndtri(tf.clip_by_value(u, 1e-6, 1.0 - 1e-6))


def _exp2(x):
    return tf.pow(2.0, x)


def _clip_straight_through(x):
    """``clip(x, -1, 1)`` forward, identity gradient (see the module docstring)."""
    return x + tf.stop_gradient(tf.clip_by_value(x, -1.0, 1.0) - x)


def _matrix(rows):
    """``[B, n, n]`` from rows of ``[B]`` tensors."""
    return tf.stack([tf.stack(r, axis=-1) for r in rows], axis=-2)


def _reflect(c, n: int):
    """Coordinates reflected into ``[0, n - 1]`` (reflection padding without edge repeat)."""
    if n == 1:
        return tf.zeros_like(c)
    period = 2.0 * (n - 1)
    c = tf.math.floormod(c, period)
    return (n - 1) - tf.abs(c - (n - 1))


def _gather_pixels(x, rows, cols):
    """``x[b, rows[b, k], cols[b, k], :]`` as ``[B, K, C]`` (int32 indices in range)."""
    _, h, w, ch = x.shape
    flat = tf.reshape(x, [-1, h * w, ch])
    return tf.gather(flat, rows * w + cols, batch_dims=1)


def _warp(x, m):
    """Resample ``x [B, H, W, C]`` at ``m [B, 3, 3] @ (output pixel)`` (coordinates centred on
    the image, in pixels), bilinearly, with reflection padding. Differentiable in ``x``."""
    _, h, w, ch = x.shape
    ys, xs = np.meshgrid(np.arange(h, dtype=np.float32) - (h - 1) / 2,
                         np.arange(w, dtype=np.float32) - (w - 1) / 2, indexing="ij")
    grid = tf.constant(np.stack([xs.ravel(), ys.ravel(), np.ones(h * w, np.float32)]))
    src = tf.einsum("bij,jk->bik", m, grid)                                   # [B, 3, HW]
    sx = _reflect(src[:, 0] + (w - 1) / 2, w)
    sy = _reflect(src[:, 1] + (h - 1) / 2, h)
    x0, y0 = tf.floor(sx), tf.floor(sy)
    wx, wy = (sx - x0)[..., None], (sy - y0)[..., None]
    x0 = tf.clip_by_value(tf.cast(x0, tf.int32), 0, w - 1)
    y0 = tf.clip_by_value(tf.cast(y0, tf.int32), 0, h - 1)
    x1, y1 = tf.minimum(x0 + 1, w - 1), tf.minimum(y0 + 1, h - 1)
    wx, wy = tf.cast(wx, x.dtype), tf.cast(wy, x.dtype)
    out = ((1 - wy) * ((1 - wx) * _gather_pixels(x, y0, x0) + wx * _gather_pixels(x, y0, x1))
           + wy * ((1 - wx) * _gather_pixels(x, y1, x0) + wx * _gather_pixels(x, y1, x1)))
    return tf.reshape(out, [-1, h, w, ch])


# --------------------------------------------------------------------------- the ops

def _chain(mats):
    """``mats[:, 0] @ mats[:, 1] @ ... @ mats[:, n - 1]`` for ``mats [B, n, k, k]``, as a
    pairwise tree (``ceil(log2 n)`` batched matmuls instead of ``n - 1``)."""
    while mats.shape[1] > 1:
        if mats.shape[1] % 2:
            eye = tf.eye(mats.shape[-1], batch_shape=[tf.shape(mats)[0], 1], dtype=mats.dtype)
            mats = tf.concat([mats, eye], axis=1)
        mats = tf.matmul(mats[:, 0::2], mats[:, 1::2])
    return mats[:, 0]


def _affines(params):
    """``[B, n, 3, 3]`` affine matrices from ``n`` tuples ``(a, b, c, d, tx, ty)`` of ``[B]``
    tensors (``[[a, b, tx], [c, d, ty], [0, 0, 1]]``), stacked once."""
    a, b, c, d, tx, ty = (tf.stack(column, axis=1) for column in zip(*params))
    zero, one = tf.zeros_like(a), tf.ones_like(a)
    return _matrix([[a, b, tx], [c, d, ty], [zero, zero, one]])


def _geometric(x, ops, p, uniform):
    """ADA's blit and geometric ops as one affine warp (identity where not drawn)."""
    _, h, w, _ = x.shape
    return _warp(x, _geometric_matrix(ops, p, uniform, (w, h)))


def _geometric_matrix(ops, p, uniform, size):
    """``[B, 3, 3]``: the product of the drawn ops' matrices, in ADA's order: ``xflip``,
    ``rotate90``, ``xint``, ``scale``, pre-rotation, ``aniso``, post-rotation, ``xfrac``
    (``size``: the images' ``(width, height)``)."""
    size = tf.constant(size, tf.float32)
    params = []

    def rotation(theta):
        cos, sin = tf.cos(theta), tf.sin(theta)
        return cos, -sin, sin, cos, tf.zeros_like(theta), tf.zeros_like(theta)

    p_rot = 1.0 - tf.sqrt(tf.maximum(1.0 - p, 0.0))
    u_rot = uniform(_WIDTH["rotate"]) if "rotate" in ops else None

    def rotate(i):  # ADA's pre- (i = 0) and post-rotation (i = 1), each with p_rot
        gate = tf.cast(u_rot[:, 2 * i] < p_rot, tf.float32)
        params.append(rotation(gate * (u_rot[:, 2 * i + 1] * 2 - 1) * math.pi))

    for op in ops:
        if op == "rotate":
            if "aniso" not in ops:  # both rotations together (nothing between them)
                rotate(0)
                rotate(1)
            continue
        u = uniform(_WIDTH[op])
        gate = tf.cast(u[:, 0] < p, tf.float32)
        one, zero = tf.ones_like(gate), tf.zeros_like(gate)
        if op == "xflip":
            params.append((1 - 2 * gate * tf.floor(u[:, 1] * 2), zero, zero, one, zero, zero))
        elif op == "rotate90":
            params.append(rotation(gate * tf.floor(u[:, 1] * 4) * (math.pi / 2)))
        elif op == "xint":
            t = tf.round((u[:, 1:] * 2 - 1) * _XINT_MAX * size) * gate[:, None]
            params.append((one, zero, zero, one, t[:, 0], t[:, 1]))
        elif op == "scale":
            s = _exp2(_normal(u[:, 1]) * _SCALE_STD * gate)
            params.append((s, zero, zero, s, zero, zero))
        elif op == "aniso":
            if u_rot is not None:
                rotate(0)
            s = _exp2(_normal(u[:, 1]) * _ANISO_STD * gate)
            params.append((s, zero, zero, 1 / s, zero, zero))
            if u_rot is not None:
                rotate(1)
        elif op == "xfrac":
            t = _normal(u[:, 1:]) * _XFRAC_STD * size * gate[:, None]
            params.append((one, zero, zero, one, t[:, 0], t[:, 1]))
    return _chain(_affines(params))


def _ada_colour(x, ops, p, uniform):
    """ADA's colour ops as one matrix on ``[RGB, 1]``; on non-RGB images only brightness and
    contrast (``c (x + b)``)."""
    rgb = x.shape[-1] == 3
    batch = tf.shape(x)[0]
    eye = tf.eye(4, batch_shape=[batch])
    axis = np.r_[np.ones(3) / math.sqrt(3), 0.0].astype(np.float32)   # the luma axis
    outer = tf.constant(np.outer(axis, axis))
    mats = []
    for op in ops:  # hue and saturation come only with RGB (augment drops them otherwise)
        u = uniform(_WIDTH[op])
        gate = tf.cast(u[:, 0] < p, tf.float32)[:, None, None]
        if op == "brightness":
            b = _normal(u[:, 1])[:, None, None] * _BRIGHTNESS_STD * gate
            t = eye + b * tf.constant(np.c_[np.zeros((4, 3)), [1, 1, 1, 0]], tf.float32)
        elif op == "contrast":
            c = _exp2(_normal(u[:, 1]) * _CONTRAST_STD)[:, None, None]
            t = eye + gate * (c - 1) * tf.constant(np.diag([1, 1, 1, 0]), tf.float32)
        elif op == "hue":  # Rodrigues' rotation about the luma axis
            theta = ((u[:, 1] * 2 - 1) * math.pi)[:, None, None] * gate
            cross = tf.constant([[0, -axis[2], axis[1], 0], [axis[2], 0, -axis[0], 0],
                                 [-axis[1], axis[0], 0, 0], [0, 0, 0, 0]], tf.float32)
            t = eye + tf.sin(theta) * cross + (1 - tf.cos(theta)) * (outer - tf.linalg.diag(
                tf.constant([1.0, 1, 1, 0])))
        else:  # saturation: chroma (orthogonal to the luma axis) scaled
            s = _exp2(_normal(u[:, 1]) * _SATURATION_STD)[:, None, None]
            chroma = tf.linalg.diag(tf.constant([1.0, 1, 1, 0])) - outer
            t = eye + gate * (s - 1) * chroma
        mats.append(t)
    # each op acts on the previous result: m = t_n @ ... @ t_1
    m = tf.cast(_chain(tf.stack(mats[::-1], axis=1)), x.dtype)
    if rgb:
        out = tf.einsum("bij,bhwj->bhwi", m[:, :3, :3], x) + m[:, None, None, :3, 3]
    else:
        out = x * m[:, None, None, None, 0, 0] + m[:, None, None, None, 0, 3]
    return _clip_straight_through(out)


def _diff_color(x, p, uniform):
    """DiffAugment's ``color``: brightness, saturation, contrast, each with probability p."""
    u = uniform(_WIDTH["color"])
    gate = (u[:, :3] < p)[:, None, None, None, :]
    v = tf.cast(u[:, 3:], x.dtype)[:, None, None, None, :]
    y = x + (v[..., 0] - 0.5)
    x = tf.where(gate[..., 0], y, x)
    mean = tf.reduce_mean(x, axis=-1, keepdims=True)
    x = tf.where(gate[..., 1], (x - mean) * (2 * v[..., 1]) + mean, x)
    mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
    x = tf.where(gate[..., 2], (x - mean) * (v[..., 2] + 0.5) + mean, x)
    return _clip_straight_through(x)


def _translation(x, p, uniform):
    """DiffAugment's ``translation``: integer shift in ``[-s, s]``, ``s = round(size / 8)``,
    zero padding."""
    _, h, w, _ = x.shape
    u = uniform(_WIDTH["translation"])
    gate = tf.cast(u[:, 0] < p, tf.int32)[:, None]
    shift = tf.constant([int(w * _TRANSLATION_RATIO + 0.5), int(h * _TRANSLATION_RATIO + 0.5)])
    t = (tf.cast(tf.floor(u[:, 1:] * tf.cast(2 * shift + 1, tf.float32)), tf.int32)
         - shift) * gate                                                          # [B, 2]
    rows = tf.range(h)[None, :, None] - t[:, 1, None, None] + tf.zeros([1, 1, w], tf.int32)
    cols = tf.range(w)[None, None, :] - t[:, 0, None, None] + tf.zeros([1, h, 1], tf.int32)
    inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
    rows = tf.reshape(tf.clip_by_value(rows, 0, h - 1), [-1, h * w])
    cols = tf.reshape(tf.clip_by_value(cols, 0, w - 1), [-1, h * w])
    out = tf.reshape(_gather_pixels(x, rows, cols), tf.shape(x))
    return out * tf.cast(inside, x.dtype)[..., None]


def _cutout(x, p, uniform):
    """Cutout (DeVries & Taylor 2017, as in both papers): a square of half the image's size at a
    uniform centre set to 0."""
    _, h, w, _ = x.shape
    u = uniform(_WIDTH["cutout"])
    gate = u[:, 0] < p
    cx, cy = u[:, 1, None, None], u[:, 2, None, None]
    ys = (tf.range(h, dtype=tf.float32)[None, :, None] + 0.5) / h
    xs = (tf.range(w, dtype=tf.float32)[None, None, :] + 0.5) / w
    keep = ((tf.abs(xs - cx) >= _CUTOUT_SIZE / 2) | (tf.abs(ys - cy) >= _CUTOUT_SIZE / 2)
            | ~gate[:, None, None])
    return x * tf.cast(keep, x.dtype)[..., None]


def augment(x, p, policy, uniform):
    """Apply ``policy`` to a batch of images, each op to each image with probability ``p``.

    Args:
      x: images ``[B, H, W, C]`` (static ``H, W, C``), floating point, in ``[-1, 1]``.
      p: probability of each op, a float scalar (tensor or number) in ``[0, 1]``.
      policy: a policy string (:func:`policy_ops`) or a tuple of op names.
      uniform: ``k -> float32 [B, k]`` in ``[0, 1)``: the random draws, called once per
        batch with ``k`` the policy's total (its columns are dealt out to the ops in order).

    Returns:
      ``x``'s shape and dtype, in ``[-1, 1]``; differentiable in ``x``. ``p = 0`` returns
      ``x`` unchanged.
    """
    if x.shape.rank != 4 or None in x.shape[1:]:
        raise ValueError(f"augmentation needs images [B, H, W, C] of known size, got {x.shape}")
    ops = policy_ops(policy) if isinstance(policy, str) else tuple(policy)
    if x.shape[-1] != 3:  # hue and saturation need RGB: skipped (module docstring)
        ops = tuple(op for op in ops if op not in ("hue", "saturation"))
    p = tf.cast(p, tf.float32)
    uniform = _dealer(uniform, sum(_WIDTH[op] for op in ops))
    geometric = [op for op in ops if op in GEOMETRIC]
    if geometric:
        x = _geometric(x, geometric, p, uniform)
    colour = [op for op in ops if op in ADA_COLOUR]
    if colour:
        x = _ada_colour(x, colour, p, uniform)
    if "color" in ops:
        x = _diff_color(x, p, uniform)
    if "translation" in ops:
        x = _translation(x, p, uniform)
    if "cutout" in ops:
        x = _cutout(x, p, uniform)
    return x


def _dealer(uniform, total):
    """One ``uniform(total)`` draw dealt out as ``take(k)`` slices, in call order (one random
    op per batch instead of one per augmentation op)."""
    u, used = uniform(total), [0]

    def take(k):
        used[0] += k
        if used[0] > total:
            raise AssertionError(f"augmentation draws exceed the {total} allotted")
        return u[:, used[0] - k:used[0]]
    return take


def seeded_uniform(batch, seed):
    """A ``uniform(k)`` for :func:`augment` from a stateless seed (tests, benchmarks)."""
    counter = [0]

    def uniform(k):
        counter[0] += 1
        return tf.random.stateless_uniform([batch, k], seed=[int(seed), counter[0]])
    return uniform


# --------------------------------------------------------------------------- the model's side

class AugmentedTraining:
    """Mixin for :class:`~tfgan_app.GANModel`: the augmentation probability ``p`` (adaptive or
    fixed), the hook on D's inputs, the ADA update, its metrics and its saved state.

    ``self._augment_state`` is ``[p, sum of sign(D(x_real)), images counted]`` since the last
    adjustment, a ``tf.Variable`` (one copy under ``tf.distribute``: every replica computes
    the same values from all-reduced sums) saved by :meth:`save_own_variables`.
    """

    def _init_augmentation(self):
        self.aug_p_tracker = keras.metrics.Mean(name="aug_p")
        self.r_t_tracker = keras.metrics.Mean(name="r_t")
        self._augment_ops = ()
        self._augment_state = tf.Variable(
            [0.0, 0.0, 0.0], trainable=False, name="augment_state",
            aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)

    def _compile_augmentation(self, opts):
        """Check the augmentation options against the model; set ``p`` to its initial value."""
        if opts.augment is None:
            if opts.ada_target is not None:
                raise ValueError("ada_target adapts the augmentation probability: set augment "
                                 "(e.g. augment='ada') too")
            self._augment_ops = ()
            return
        shape = tuple(self.generator.outputs[0].shape[1:]) if self.generator.outputs else ()
        if len(shape) != 3:
            raise ValueError(f"augment={opts.augment!r} needs images [H, W, C]; the generator "
                             f"produces samples of shape {shape}")
        d_inputs = list(self.discriminator.inputs or [])
        if len(d_inputs) == 2 and len(d_inputs[1].shape) == 4:
            # (image, source) pairs need one geometric draw for both images: not built yet
            raise ValueError(f"augment={opts.augment!r}: augmenting (image, source) pairs of a "
                             "translation model is not supported yet; use augment=None")
        self._augment_ops = policy_ops(opts.augment)
        p = opts.augment_p
        if p is None:
            p = 0.0 if opts.ada_target is not None else 1.0
        self._augment_state.assign([p, 0.0, 0.0])

    @property
    def augment_probability(self) -> float:
        """The current ``p`` (a Python float)."""
        return float(self._augment_state.numpy()[0])

    def augment_metrics(self) -> list:
        return [self.aug_p_tracker, self.r_t_tracker] if self._augment_ops else []

    def augment_uniform(self, batch, k):
        """``U[0, 1) float32 [batch, k]``: one augmentation draw on this replica, from
        ``next_seed()`` (saved with the model, different per replica). Override to fix the
        draws (the distribution tests do)."""
        return tf.random.stateless_uniform([batch, k], seed=self.next_seed())

    def augment_images(self, x):
        """``x`` augmented with the compiled policy at the current ``p`` (identity when off)."""
        if not self._augment_ops:
            return x
        batch = tf.shape(x)[0]
        return augment(x, self._augment_state[0], self._augment_ops,
                       lambda k: self.augment_uniform(batch, k))

    def update_augment_p(self, real_logits):
        """After a discriminator step: count ``sign(D(x_real))`` over all replicas, log ``r_t``
        and ``aug_p``, and, with ``ada_target``, move ``p`` every ``ada_interval`` steps."""
        if not self._augment_ops:
            return
        opts = self.options
        logits = tf.cast(tf.reshape(real_logits, [-1]), tf.float32)
        counts = tf.stack([tf.reduce_sum(tf.sign(logits)), tf.cast(tf.size(logits), tf.float32)])
        ctx = tf.distribute.get_replica_context()
        if ctx is not None and replication.num_replicas() > 1:
            counts = ctx.all_reduce("SUM", counts)
        self.r_t_tracker.update_state(counts[0] / counts[1])
        state = tf.convert_to_tensor(self._augment_state)
        p, total, n = state[0], state[1] + counts[0], state[2] + counts[1]
        if opts.ada_target is not None:
            due = tf.equal(self.d_optimizer.iterations % opts.ada_interval, 0)
            adjust = tf.sign(total / n - opts.ada_target) * n / (opts.ada_kimg * 1000.0)
            p = tf.where(due, tf.clip_by_value(p + adjust, 0.0, 1.0), p)
            total, n = tf.where(due, 0.0, total), tf.where(due, 0.0, n)
        self._augment_state.assign(tf.stack([p, total, n]))
        self.aug_p_tracker.update_state(p)

    # p and the running sums are saved with the model's own variables (like the random
    # stream, randomness.py), so a resumed run continues with the same p.
    def save_own_variables(self, store):
        super().save_own_variables(store)
        store["augment_state"] = self._augment_state.numpy()

    def load_own_variables(self, store):
        keys = list(store.keys())
        if "augment_state" in keys:  # files saved before augmentation existed lack it
            self._augment_state.assign(np.asarray(store["augment_state"]))
        super().load_own_variables({k: store[k] for k in keys if k != "augment_state"})
