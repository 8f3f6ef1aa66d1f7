"""Training on several devices, machines or TPUs, and in mixed precision.

* :func:`get_strategy` -- a ``tf.distribute`` strategy by name: ``default``, ``onedevice``,
  ``mirrored``, ``multiworker`` (``TF_CONFIG``), ``tpu`` (``TPUClusterResolver``) or ``auto``.
* :func:`is_chief`, :func:`is_multi_worker`, :func:`worker_dir` -- who writes files: only the
  chief writes run directories, checkpoints and exports; other workers write to a temporary
  directory (they must still *run* every save, because saving can involve collective ops).
* :func:`resolve_mixed_precision`, :func:`dtype_policy`, :func:`float32_outputs` -- mixed
  precision (``mixed_float16`` on GPUs, ``mixed_bfloat16`` on CPUs and TPUs).

Elsewhere: :mod:`tfgan_app.keras_workarounds` holds what Keras 3 ``fit`` needs under these
strategies (``KerasFitWorkarounds``, inherited by ``GANModel``), and :mod:`tfgan_app.checkpoint`
the resumable backup of a run (``RunBackup``, ``latest_backup``).

The maths of replication lives in :mod:`tfgan_app.model`: the batch size is global, each
replica's loss is a mean over its share of the batch and is divided by
``num_replicas_in_sync`` before differentiating (Keras *sums* gradients over replicas), the
logged losses are the unscaled global means, and every replica draws its own noise.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile

import keras
import tensorflow as tf

STRATEGIES = ("default", "onedevice", "mirrored", "multiworker", "tpu", "auto")
MIXED_PRECISION_POLICIES = ("mixed_float16", "mixed_bfloat16")

_MP_ALIASES = {
    "mixed_float16": "mixed_float16", "float16": "mixed_float16", "fp16": "mixed_float16",
    "mixed_bfloat16": "mixed_bfloat16", "bfloat16": "mixed_bfloat16", "bf16": "mixed_bfloat16",
}
_MP_OFF = {"", "none", "null", "off", "false", "float32", "fp32"}


# --------------------------------------------------------------------------- strategies


def _gpus():
    return tf.config.list_logical_devices("GPU")


def _tpu_target(tpu=None):
    """The ``tpu`` argument for ``TPUClusterResolver``, or ``None`` when no TPU is visible.

    Order: the explicit ``tpu`` (a name, ``grpc://host:port`` or ``"local"``); ``TPU_NAME`` or
    GKE's ``KUBE_GOOGLE_CLOUD_TPU_ENDPOINTS`` (read by the resolver itself); Colab's
    ``COLAB_TPU_ADDR``; a TPU attached to this host (TPU VM: ``"local"``). Never contacts a
    metadata server unless a TPU name was given, so it cannot hang on a machine without TPUs.
    """
    if tpu:
        return tpu
    if os.environ.get("TPU_NAME") or os.environ.get("KUBE_GOOGLE_CLOUD_TPU_ENDPOINTS"):
        return ""  # the resolver reads the environment
    if os.environ.get("COLAB_TPU_ADDR"):
        return "grpc://" + os.environ["COLAB_TPU_ADDR"]
    try:
        local = tf.config.list_physical_devices("TPU")
    except Exception:  # pragma: no cover - platform specific
        local = []
    if local or os.path.exists("/dev/accel0"):
        return "local"
    return None


def _tpu_strategy(tpu=None):
    target = _tpu_target(tpu)
    if target is None:
        raise ValueError("strategy 'tpu': no TPU found (set TPU_NAME, pass tpu='NAME' or "
                         "'grpc://HOST:PORT', or run on a TPU VM)")
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=target or None)
    if target != "local":
        tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)


def get_strategy(name="default", *, devices=None, tpu=None) -> tf.distribute.Strategy:
    """A ``tf.distribute.Strategy`` by name.

    Args:
      name: one of :data:`STRATEGIES` (case-insensitive), or a ``tf.distribute.Strategy``
        (returned as is):

        * ``default`` -- TensorFlow's default strategy: no replication, one device (the first
          GPU if there is one). Training is exactly what it is without any strategy.
        * ``onedevice`` -- ``OneDeviceStrategy`` on ``/gpu:0``, or ``/cpu:0`` without GPUs.
        * ``mirrored`` -- ``MirroredStrategy``: synchronous data parallelism over all local GPUs
          (or ``devices``); on a machine without GPUs, over its logical CPU devices (one unless
          ``tf.config.set_logical_device_configuration`` split the CPU).
        * ``multiworker`` -- ``MultiWorkerMirroredStrategy`` over the cluster in the
          ``TF_CONFIG`` environment variable (each worker runs the same command); without
          ``TF_CONFIG``, a single local worker. Create it before any other TensorFlow work in
          the process (collective ops are configured at start-up).
        * ``tpu`` -- ``TPUStrategy`` via ``TPUClusterResolver`` (``tpu`` argument, ``TPU_NAME``,
          ``COLAB_TPU_ADDR``, or the TPU VM itself).
        * ``auto`` -- ``tpu`` when a TPU is visible, else ``mirrored`` over all GPUs when there
          are several, ``onedevice`` on the only GPU, else ``default`` (CPU).
      devices: device names for ``mirrored`` (e.g. ``["/cpu:0", "/cpu:1"]``).
      tpu: TPU name or address for ``tpu``/``auto``.

    Raises:
      ValueError: an unknown name, or ``tpu`` without a TPU.
    """
    if isinstance(name, tf.distribute.Strategy):
        return name
    key = "default" if name is None else str(name).strip().lower()
    if key not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; valid strategies: {', '.join(STRATEGIES)}")
    if key == "auto":
        if _tpu_target(tpu) is not None:
            key = "tpu"
        else:
            n_gpu = len(_gpus())
            key = "mirrored" if n_gpu > 1 else "onedevice" if n_gpu == 1 else "default"
    if key == "default":
        return tf.distribute.get_strategy()
    if key == "onedevice":
        return tf.distribute.OneDeviceStrategy("/gpu:0" if _gpus() else "/cpu:0")
    if key == "mirrored":
        if devices is None and not _gpus():
            cpus = tf.config.list_logical_devices("CPU")
            devices = [d.name for d in cpus] if len(cpus) > 1 else None
        return tf.distribute.MirroredStrategy(devices=devices)
    if key == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    return _tpu_strategy(tpu)


def is_multi_worker(strategy=None) -> bool:
    """Whether ``strategy`` spans several worker processes (``MultiWorkerMirroredStrategy``
    with more than one worker in ``TF_CONFIG``)."""
    strategy = strategy or tf.distribute.get_strategy()
    mode = getattr(strategy.extended, "_in_multi_worker_mode", None)
    return bool(mode()) if callable(mode) else False


def is_chief(strategy=None) -> bool:
    """Whether this process writes files: always, except on non-chief workers of a
    multi-worker strategy (``strategy.extended.should_checkpoint``)."""
    strategy = strategy or tf.distribute.get_strategy()
    return bool(getattr(strategy.extended, "should_checkpoint", True))


def task_name(strategy=None) -> str:
    """``"worker-1"``-style name of this process in its cluster (``"chief"`` when alone)."""
    strategy = strategy or tf.distribute.get_strategy()
    resolver = getattr(strategy, "cluster_resolver", None)
    task_type = getattr(resolver, "task_type", None)
    task_id = getattr(resolver, "task_id", None)
    if not task_type:
        return "chief"
    return f"{task_type}-{task_id}" if task_id is not None else str(task_type)


def worker_dir(path: str, strategy=None) -> tuple[str, bool]:
    """Where this process writes what belongs in ``path``: ``(path, False)`` on the chief,
    ``(a new temporary directory, True)`` elsewhere (the caller removes it when done)."""
    if is_chief(strategy):
        return path, False
    tmp = tempfile.mkdtemp(prefix=f"tfgan-app-{task_name(strategy)}-")
    return tmp, True


def remove_worker_dir(path: str, is_temporary: bool) -> None:
    """Remove a temporary directory made by :func:`worker_dir` (no-op on the chief)."""
    if is_temporary:
        shutil.rmtree(path, ignore_errors=True)


# --------------------------------------------------------------------------- mixed precision


def resolve_mixed_precision(value, strategy=None) -> str | None:
    """A Keras dtype policy name from a ``mixed_precision`` setting.

    ``None``/``"none"``/``"float32"``/``False``: ``None`` (plain float32 training).
    ``"mixed_float16"`` (``"float16"``, ``"fp16"``), ``"mixed_bfloat16"`` (``"bfloat16"``,
    ``"bf16"``), or ``"auto"``/``True``: ``mixed_float16`` when the strategy's devices are GPUs,
    ``mixed_bfloat16`` otherwise (CPUs, TPUs). float16 needs loss scaling
    (:class:`keras.optimizers.LossScaleOptimizer`, added by ``GANModel.compile``); bfloat16 has
    float32's range and does not.
    """
    if value is None or value is False:
        return None
    key = "auto" if value is True else str(value).strip().lower()
    if key in _MP_OFF:
        return None
    if key == "auto":
        strategy = strategy or tf.distribute.get_strategy()
        on_gpu = bool(_gpus()) and not isinstance(strategy, tf.distribute.TPUStrategy)
        return "mixed_float16" if on_gpu else "mixed_bfloat16"
    if key not in _MP_ALIASES:
        raise ValueError(f"unknown mixed precision {value!r}; use one of "
                         f"{', '.join(MIXED_PRECISION_POLICIES)}, 'auto' or none")
    return _MP_ALIASES[key]


@contextlib.contextmanager
def dtype_policy(policy: str | None):
    """Set Keras' global dtype policy to ``policy`` inside the block (layers *created* there
    use it) and restore the previous one afterwards. ``None`` leaves the policy alone."""
    previous = keras.config.dtype_policy()
    if policy:
        keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def _output_layers(model):
    layers = []
    for t in model.outputs or []:
        history = getattr(t, "_keras_history", None)
        if history is not None and history[0] not in layers:
            layers.append(history[0])
    return layers


def float32_outputs(model: keras.Model) -> keras.Model:
    """``model`` with its output layers computing in float32 (same weights).

    Under a mixed policy every layer computes in float16/bfloat16; a discriminator's last layer
    should compute its logits in float32 (the losses' sigmoids and logs are float32). Models
    whose outputs are already float32 (the image builders) are returned unchanged; functional
    models are cloned with ``dtype="float32"`` on the output layers and their weights copied.
    """
    outs = model.outputs or []
    if outs and all(keras.backend.standardize_dtype(t.dtype) == "float32" for t in outs):
        return model
    targets = {id(layer) for layer in _output_layers(model)}
    if not targets:
        raise ValueError(f"cannot make {model.name!r}'s outputs float32: not a functional model;"
                         " give its last layer dtype='float32'")

    def clone(layer):
        config = layer.get_config()
        if id(layer) in targets:
            config["dtype"] = "float32"
        return layer.__class__.from_config(config)

    new = keras.models.clone_model(model, clone_function=clone)
    new.set_weights(model.get_weights())
    return new
