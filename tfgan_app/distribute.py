"""Training on several devices, machines or TPUs, and in mixed precision.

* :func:`get_strategy` -- a ``tf.distribute`` strategy by name: ``default``, ``onedevice``,
  ``mirrored``, ``multiworker`` (``TF_CONFIG``), ``tpu`` (``TPUClusterResolver``) or ``auto``.
* :func:`is_chief`, :func:`is_multi_worker`, :func:`worker_dir` -- who writes files: only the
  chief writes run directories, checkpoints and exports; other workers write to a temporary
  directory (they must still *run* every save, because saving can involve collective ops).
* :func:`resolve_mixed_precision`, :func:`dtype_policy`, :func:`float32_outputs` -- mixed
  precision (``mixed_float16`` on GPUs, ``mixed_bfloat16`` on CPUs and TPUs).
* :class:`KerasFitWorkarounds` -- the one place holding the workarounds that Keras 3 ``fit``
  needs under ``MultiWorkerMirroredStrategy`` (keras-team/keras#20585, tensorflow#72388).

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
import warnings

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


# --------------------------------------------------------------------------- Keras workarounds


def _fully_built(model) -> bool:
    if not all(layer.built for layer in model._flatten_layers()):
        return False
    for attr in ("optimizer", "d_optimizer", "g_optimizer"):
        opt = getattr(model, attr, None)
        if opt is not None and not opt.built:
            return False
    for attr in ("_compile_metrics", "_compile_loss"):
        obj = getattr(model, attr, None)
        if obj is not None and not obj.built:
            return False
    return True


def _local_devices(strategy) -> tuple:
    try:
        return tuple(strategy.extended.worker_devices)
    except (RuntimeError, AttributeError, NotImplementedError):  # the default strategy
        return ()


def _multi_device(strategy) -> bool:
    if isinstance(strategy, tf.distribute.TPUStrategy):
        return False  # TPUStrategy compiles with XLA itself
    return len(_local_devices(strategy)) > 1


def _all_gpu(strategy) -> bool:
    devices = _local_devices(strategy)
    return bool(devices) and all("GPU" in d.upper().rsplit("/", 1)[-1] for d in devices)


def _merge_call_replicas(strategy) -> bool:
    """Several replicas synchronised through merge_call (mirrored strategies; not TPUs)."""
    if isinstance(strategy, tf.distribute.TPUStrategy):
        return False
    return _multi_device(strategy) or is_multi_worker(strategy)


def _xla_supported(strategy) -> bool:
    """Whether Keras ``fit`` can run with ``jit_compile=True`` under ``strategy``."""
    if isinstance(strategy, tf.distribute.TPUStrategy):
        return True
    if _multi_device(strategy) or is_multi_worker(strategy):
        return _all_gpu(strategy)
    return True


class KerasFitWorkarounds:
    """Mixin for a ``keras.Model`` whose ``fit`` must work under every ``tf.distribute``
    strategy: the ONE place for the workarounds; :class:`tfgan_app.GANModel` uses it.

    Keras 3 ``fit`` under ``MultiWorkerMirroredStrategy`` across processes is broken
    (keras-team/keras#20585, open; tensorflow/tensorflow#72388) in two ways:

    1. ``fit`` calls ``_maybe_symbolic_build``, which takes a batch from the iterator and
       ``strategy.reduce``-s it eagerly; for a batch of ``PerReplica`` values across workers
       this fails with "Attempt to convert a value (PerReplica ...)". Fix: return at once when
       the model, its optimizers and compile state are built (``GANModel.compile`` builds both
       optimizers inside the strategy scope), else defer to Keras. (With one CPU device per
       worker, as in this project's tests, the batch is a plain tensor and Keras' version
       passes; the failure needs several devices per worker. The override is unit-tested.)
    2. The logs a ``train_step`` returns are reduced with ``strategy.reduce("MEAN", v,
       axis=0)``, which fails for scalars: "Invalid reduction dimension 0 for input with 0
       dimensions". Fix: :meth:`_distributed_logs` returns them with shape ``[1]`` under a
       multi-worker strategy (epoch logs are read from the metrics, so they stay scalars).
       ``tests/test_distribute.py`` runs two workers without this and checks they still fail
       that way, so the workaround can go when Keras fixes it.

    Found while doing this (``compile``, with a warning):

    * ``steps_per_execution > 1`` fails under ``MirroredStrategy`` (several devices) and
      ``MultiWorkerMirroredStrategy`` ("You must feed a value for placeholder tensor
      '.../while/cond/.../Placeholder'", keras-team/keras#19246, also with a plain
      ``Sequential`` model): set to 1.
    * ``jit_compile=True`` fails with several CPU devices or CPU workers (see
      :meth:`compile`): turned off, as Keras' own ``jit_compile="auto"`` does under
      ``tf.distribute``. Several GPUs per process compile each replica's step instead
      (:meth:`_make_function`).

    Not a bug, also here: under ``TPUStrategy`` Keras keeps only the first replica's step
    logs; :meth:`_distributed_logs` averages them over replicas so progress bars show global
    values there too.
    """

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        if _fully_built(self):
            return None  # keras-team/keras#20585: nothing to build, so nothing to reduce
        return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    def compile(self, *args, **kwargs):
        strategy = self.distribute_strategy
        if int(kwargs.get("steps_per_execution") or 1) > 1 and _merge_call_replicas(strategy):
            # keras-team/keras#19246 (open), measured here with a plain Sequential model too:
            # under MirroredStrategy (2 CPU devices) and MultiWorkerMirroredStrategy (2
            # workers) Keras' steps_per_execution loop -- a tf.cond inside a tf.while_loop
            # around `strategy.run`, whose replicas synchronise through merge_call -- fails
            # with "You must feed a value for placeholder tensor
            # '.../while/cond/then/.../while/cond/Placeholder_3'".
            warnings.warn("steps_per_execution > 1 fails under MirroredStrategy and "
                          "MultiWorkerMirroredStrategy in Keras 3 (keras-team/keras#19246); "
                          "using steps_per_execution=1", stacklevel=3)
            kwargs["steps_per_execution"] = 1
        if kwargs.get("jit_compile") is True and not _xla_supported(strategy):
            # Several CPU devices: Keras compiles the cross-device call as one XLA cluster,
            # which cannot reach the other devices' variables ("Trying to access resource ...
            # located in device ...:1 from device ...:0"); several CPU workers: "Collectives
            # are not yet implemented for CPU devices when compiling with XLA". Keras' own
            # jit_compile="auto" turns XLA off under tf.distribute: do that, with a warning.
            warnings.warn("jit_compile=True is not supported with this strategy on these "
                          "devices (XLA with replicas needs GPUs or TPUs); training without XLA",
                          stacklevel=3)
            kwargs["jit_compile"] = False
        return super().compile(*args, **kwargs)

    def _make_function(self, step_function):
        # Several GPUs per process with jit_compile=True: compiling the whole `strategy.run`
        # call as one XLA cluster fails (variables on several devices), so compile each
        # replica's step instead, as tf.keras did. TensorFlow's mirrored strategies skip
        # merge_call inside XLA when every device is a GPU, so the optimizer's all-reduce works.
        strategy = self.distribute_strategy
        if not (self.jit_compile and _multi_device(strategy)):
            return super()._make_function(step_function)
        compiled = {}

        def xla_step(data):
            # One XLA function per replica: one trace would capture the first replica's copies
            # of the mirrored variables and be reused on the other devices.
            ctx = tf.distribute.get_replica_context()
            key = tf.get_static_value(ctx.replica_id_in_sync_group)
            key = None if key is None else int(key)
            if key not in compiled:
                compiled[key] = tf.function(step_function, jit_compile=True,
                                            reduce_retracing=True)
            return compiled[key](data)

        saved = self._jit_compile
        self._jit_compile = False
        try:
            return super()._make_function(xla_step)
        finally:
            self._jit_compile = saved

    def _distributed_logs(self, logs: dict) -> dict:
        """Step logs (scalars, in replica context) in the form Keras can reduce."""
        strategy = tf.distribute.get_strategy()
        if is_multi_worker(strategy):
            # keras-team/keras#20585 / tensorflow#72388: MEAN over axis 0 needs a rank >= 1.
            return {k: tf.reshape(v, [1]) for k, v in logs.items()}
        if isinstance(strategy, tf.distribute.TPUStrategy) and strategy.num_replicas_in_sync > 1:
            ctx = tf.distribute.get_replica_context()
            if ctx is not None:
                return {k: ctx.all_reduce("MEAN", v) for k, v in logs.items()}
        return logs


# --------------------------------------------------------------------------- fault tolerance

_CKPT_PREFIX = "ckpt-"
_WEIGHTS = "state.weights.h5"
_META = "meta.json"


def _read_json(path):
    import json

    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _int(variable) -> int:
    return int(keras.ops.convert_to_numpy(variable))


def latest_backup(backup_dir: str):
    """The newest complete backup in ``backup_dir`` written by :class:`RunBackup`:
    ``(path, metadata)``, or ``None``. Incomplete (``.tmp-*``) directories are ignored."""
    if not backup_dir or not os.path.isdir(backup_dir):
        return None
    found = []
    for name in os.listdir(backup_dir):
        path = os.path.join(backup_dir, name)
        if not name.startswith(_CKPT_PREFIX) or not os.path.isfile(os.path.join(path, _META)):
            continue
        try:
            meta = _read_json(os.path.join(path, _META))
        except (OSError, ValueError):
            continue
        if os.path.isfile(os.path.join(path, _WEIGHTS)):
            found.append((int(meta["epoch"]), path, meta))
    if not found:
        return None
    _, path, meta = max(found, key=lambda t: t[0])
    return path, meta


class RunBackup(keras.callbacks.BackupAndRestore):
    """``keras.callbacks.BackupAndRestore`` for GAN runs: resume a killed run where it stopped.

    At the end of every epoch the whole training state is written to
    ``write_dir/ckpt-EPOCH/`` (``state.weights.h5`` from ``model.save_weights`` plus
    ``meta.json``), into a temporary directory that is then renamed, so a kill at any moment
    leaves either the previous or the new backup, never a half-written one (Keras' own
    callback writes its weights and its epoch number as two separate files). The weights file
    holds both networks, the EMA copy, **both optimizers** (slots and ``iterations``: the
    ``d_steps`` counter is ``d_optimizer.iterations``) and, through
    ``GANModel.save_own_variables``, the noise ``SeedGenerator`` state -- which
    ``save_weights`` alone does not save for a subclassed model (measured: its ``vars`` group
    is empty). At the start of training the newest backup in ``backup_dir`` is loaded and
    ``fit`` continues at the next epoch.

    Args:
      backup_dir: where backups are read from (``RUN_DIR/backup``).
      write_dir: where they are written (default ``backup_dir``; non-chief workers of a
        multi-worker job write to a temporary directory and read the chief's, which needs the
        run directory on a filesystem that every worker sees).
      metadata: optional callable returning a JSON-ready dict stored in every ``meta.json``
        (``tfgan_app.train`` stores the history so far and the settings).
      delete_checkpoint: remove ``write_dir`` when training ends (``tfgan_app.train`` passes
        ``False`` and removes it once every output file is written).

    Only epoch-level backups (``save_freq="epoch"``), every ``every`` epochs and after the
    last: a resumed run restarts from the beginning of the epoch after the last backup with
    exactly the state it had then.
    """

    def __init__(self, backup_dir, write_dir=None, metadata=None, delete_checkpoint=True,
                 every: int = 1):
        super().__init__(backup_dir, save_freq="epoch", delete_checkpoint=delete_checkpoint)
        self.write_dir = write_dir or backup_dir
        # Back up every `every` epochs (and after the last one): many short epochs (the
        # digits presets) would otherwise spend much of their time writing backups.
        self.every = max(1, int(every))
        self.metadata = metadata
        self.restored = None

    def on_train_begin(self, logs=None):
        found = latest_backup(self.backup_dir)
        if found is None:
            return
        path, meta = found
        self.model.load_weights(os.path.join(path, _WEIGHTS))
        for attr in ("d_optimizer", "g_optimizer"):
            opt, key = getattr(self.model, attr, None), attr[0] + "_iterations"
            if opt is not None and key in meta and _int(opt.iterations) != int(meta[key]):
                raise RuntimeError(f"{path}: {attr}.iterations is {_int(opt.iterations)} after "
                                   f"loading, the backup recorded {meta[key]}")
        self.model._initial_epoch = int(meta["epoch"])
        self._current_epoch = int(meta["epoch"])
        self.restored = {"path": path, **meta}

    def _save_model(self):
        import json

        epoch = int(self._current_epoch)
        if epoch % self.every and epoch < int((self.params or {}).get("epochs") or 0):
            return
        os.makedirs(self.write_dir, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=".tmp-ckpt-", dir=self.write_dir)
        try:
            self.model.save_weights(os.path.join(tmp, _WEIGHTS))
            meta = {"epoch": epoch}
            for attr in ("d_optimizer", "g_optimizer"):
                opt = getattr(self.model, attr, None)
                if opt is not None:
                    meta[attr[0] + "_iterations"] = _int(opt.iterations)
            if self.metadata is not None:
                meta.update(self.metadata())
            with open(os.path.join(tmp, _META), "w", encoding="utf-8") as f:
                json.dump(meta, f, indent=1)
            final = os.path.join(self.write_dir, f"{_CKPT_PREFIX}{epoch:06d}")
            if os.path.exists(final):  # an epoch redone after a restart
                shutil.rmtree(final)
            os.replace(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        for name in os.listdir(self.write_dir):  # older backups and stale temporaries
            path = os.path.join(self.write_dir, name)
            if path != final and (name.startswith(_CKPT_PREFIX) or name.startswith(".tmp-ckpt-")):
                shutil.rmtree(path, ignore_errors=True)

    def on_train_end(self, logs=None):
        if self.delete_checkpoint:
            shutil.rmtree(self.write_dir, ignore_errors=True)
