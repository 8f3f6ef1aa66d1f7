"""The resumable backup of a training run: a killed run started again continues where it stopped.

* :class:`RunBackup` -- a ``keras.callbacks.BackupAndRestore`` that writes the whole training
  state every N epochs (and after the last) and restores the newest one when ``fit`` starts.
* :func:`write_backup` -- one backup, atomically, never of a non-finite state.
* :func:`latest_backup` -- the newest complete backup in a directory, with its metadata.

Layout of a backup directory (``RUN_DIR/backup``, see :class:`tfgan_app.rundir.RunDir`)::

    ckpt-000003/              the backup before the newest (KEEP = 2 are kept)
    ckpt-000004/              the newest: a backup is only written when its state is finite
      state.weights.h5        model.save_weights: networks, EMA copy, both optimizers, noise
      meta.json               {"epoch": epochs done, "d_iterations", "g_iterations", ...}
    .tmp-<pid>-<host>-ckpt-XXXX/  a backup being written (ignored; renamed to ckpt-EPOCH when
                              done; removed by the next backup once its writer is gone)

Who may write where under ``tf.distribute`` (the chief, or a temporary directory) is decided
by :func:`tfgan_app.distribute.worker_dir`; the schedule is a
:class:`tfgan_app.callbacks.Schedule` (every N epochs, at most every S seconds, after the last).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile

import keras

from tfgan_app.callbacks import Schedule, join, state_variables
from tfgan_app.utils import (non_finite_variables, read_json, remove_stale_temporaries,
                             temp_prefix, write_json)

_CKPT_PREFIX = "ckpt-"
_WEIGHTS = "state.weights.h5"
_META = "meta.json"
#: How many backups are kept: the newest and the one before it.
KEEP = 2
_OPTIMIZERS = ("d_optimizer", "g_optimizer")  # meta.json keys: "d_iterations", "g_iterations"


def _int(variable) -> int:
    return int(keras.ops.convert_to_numpy(variable))


def _iterations(model) -> dict:
    """``{"d_iterations": int, "g_iterations": int}`` for the optimizers ``model`` has."""
    out = {}
    for attr in _OPTIMIZERS:
        opt = getattr(model, attr, None)
        if opt is not None:
            out[attr[0] + "_iterations"] = _int(opt.iterations)
    return out


def latest_backup(backup_dir: str):
    """The newest complete backup in ``backup_dir`` written by :class:`RunBackup`.

    Args:
      backup_dir: a directory path (``RUN_DIR/backup``); missing or empty gives ``None``.

    Returns:
      ``(path, metadata)`` -- the ``ckpt-EPOCH`` directory with the largest ``metadata["epoch"]``
      (epochs done, an int ``>= 1``) and its ``meta.json`` as a dict -- or ``None``.
      Incomplete (``.tmp-*``) directories, and backups whose metadata or weights file is
      missing or unreadable, are ignored.
    """
    if not backup_dir or not os.path.isdir(backup_dir):
        return None
    found = []
    for name in os.listdir(backup_dir):
        path = os.path.join(backup_dir, name)
        if not name.startswith(_CKPT_PREFIX) or not os.path.isfile(os.path.join(path, _META)):
            continue
        try:
            meta = read_json(os.path.join(path, _META))
        except (OSError, ValueError):
            continue
        if os.path.isfile(os.path.join(path, _WEIGHTS)):
            found.append((int(meta["epoch"]), path, meta))
    if not found:
        return None
    _, path, meta = max(found, key=lambda t: t[0])
    return path, meta


def write_backup(model, write_dir: str, epoch: int, metadata: dict | None = None,
                 keep: int = 2) -> str | None:
    """Write ``model``'s whole training state as ``write_dir/ckpt-EPOCH/``, atomically.

    The state (``model.save_weights``) and ``meta.json`` (``{"epoch": epoch, "d_iterations",
    "g_iterations", **metadata}``) are written into a temporary directory that is then renamed,
    so a kill at any moment leaves the earlier backups intact. The newest ``keep`` backups are
    kept (the older ones and temporaries left by killed writers are removed).

    A state holding NaN or infinity (:func:`tfgan_app.callbacks.state_variables`) is **not**
    written -- it would replace a healthy backup -- and ``None`` is returned, with a warning
    on stderr. Returns the new backup's path otherwise.
    """
    epoch = int(epoch)
    bad = non_finite_variables(state_variables(model))
    if bad:
        print(f"warning: not backing up epoch {epoch} to {write_dir}: non-finite values in "
              f"{', '.join(bad[:3])}; the earlier backups are kept", file=sys.stderr,
              flush=True)
        return None
    os.makedirs(write_dir, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=temp_prefix(_CKPT_PREFIX), dir=write_dir)
    try:
        model.save_weights(os.path.join(tmp, _WEIGHTS))
        meta = {"epoch": epoch, **_iterations(model), **(metadata or {})}
        write_json(os.path.join(tmp, _META), meta)
        final = os.path.join(write_dir, f"{_CKPT_PREFIX}{epoch:06d}")
        if os.path.exists(final):  # an epoch redone after a restart: move the old one aside
            os.replace(final, tempfile.mkdtemp(prefix=temp_prefix("old-"), dir=write_dir))
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    backups = sorted((n for n in os.listdir(write_dir) if n.startswith(_CKPT_PREFIX)),
                     key=_epoch_of)
    for name in backups[:-max(1, int(keep))]:
        shutil.rmtree(os.path.join(write_dir, name), ignore_errors=True)
    remove_stale_temporaries(write_dir, legacy=True)  # left by killed writers
    for name in os.listdir(write_dir):  # ours, from the move above
        if name.startswith(temp_prefix("old-")):
            shutil.rmtree(os.path.join(write_dir, name), ignore_errors=True)
    return final


def _epoch_of(name: str) -> int:
    try:
        return int(name[len(_CKPT_PREFIX):])
    except ValueError:
        return -1


class RunBackup(keras.callbacks.BackupAndRestore):
    """``keras.callbacks.BackupAndRestore`` for GAN runs: resume a killed run where it stopped.

    At the end of every ``every``-th epoch (and of the last) the whole training state is
    written to ``write_dir/ckpt-EPOCH/`` by :func:`write_backup` (``state.weights.h5`` from
    ``model.save_weights`` plus ``meta.json``), into a temporary directory that is then
    renamed, so a kill at any moment leaves either the previous or the new backup, never a
    half-written one (Keras' own callback writes its weights and its epoch number as two
    separate files); the newest :data:`KEEP` backups are kept, and a non-finite state is
    never written over a healthy one. The weights file
    holds both networks, the EMA copy, **both optimizers** (slots and ``iterations``: the
    ``d_steps`` counter is ``d_optimizer.iterations``) and, through
    ``GANModel.save_own_variables``, the noise ``SeedGenerator`` state -- which
    ``save_weights`` alone does not save for a subclassed model (its ``vars`` group is
    empty). At the start of training the newest backup in ``backup_dir`` is loaded and
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
      every: back up every ``every`` epochs and after the last (an int; below 1 means 1).
      seconds: but not sooner than ``seconds`` of wall time after the previous backup (or the
        start of training); epochs longer than that are each backed up. A killed run loses
        at most the work since the last backup: ``seconds`` plus one epoch (with ``every=1``).
      clock: the clock of that limit (default ``time.monotonic``; tests pass a fake one).

    Only epoch-level backups (``save_freq="epoch"``): a resumed run restarts from the
    beginning of the epoch after the last backup with exactly the state it had then.
    ``restored`` is ``None``, or after a restore ``{"path": ..., **metadata}``.
    """

    def __init__(self, backup_dir, write_dir=None, metadata=None, delete_checkpoint=True,
                 every: int = 1, seconds: float = 0.0, clock=None):
        super().__init__(backup_dir, save_freq="epoch", delete_checkpoint=delete_checkpoint)
        self.write_dir = write_dir or backup_dir
        # Back up every `every` epochs (and after the last one): many short epochs (the
        # digits presets) would otherwise spend much of their time writing backups.
        self.every = max(1, int(every))
        self.schedule = Schedule(self.every, seconds, clock)
        self.metadata = metadata
        self.keep = KEEP
        self.restored = None

    def on_train_begin(self, logs=None):
        self.schedule.start()
        found = latest_backup(self.backup_dir)
        if found is None:
            return
        path, meta = found
        self.model.load_weights(os.path.join(path, _WEIGHTS))
        for key, value in _iterations(self.model).items():
            if key in meta and value != int(meta[key]):
                attr = key[0] + "_optimizer"
                raise RuntimeError(f"{path}: {attr}.iterations is {value} after loading, the "
                                   f"backup recorded {meta[key]}")
        self.model._initial_epoch = int(meta["epoch"])
        self._current_epoch = int(meta["epoch"])
        self.restored = {"path": path, **meta}

    def _save_model(self):
        epoch = int(self._current_epoch)  # epochs done (Keras' on_epoch_end sets epoch + 1)
        if not self.schedule(epoch - 1, (self.params or {}).get("epochs")):
            return
        join()  # the files of earlier epochs (history, pictures) are complete before it
        metadata = self.metadata() if self.metadata is not None else {}
        write_backup(self.model, self.write_dir, epoch, metadata, keep=self.keep)

    def on_train_end(self, logs=None):
        if self.delete_checkpoint:
            shutil.rmtree(self.write_dir, ignore_errors=True)
