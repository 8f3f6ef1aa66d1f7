"""Resumable training: a killed ``tfgan-app train`` started again continues from its backup.

The backup (``RUN_DIR/backup/ckpt-EPOCH/``, written by :class:`tfgan_app.checkpoint.RunBackup`
after every epoch) holds both networks, both optimizers (``d_optimizer.iterations`` drives
``d_steps``), the noise SeedGenerator's state and the history so far; with the data order
replayed, a resumed run ends bit-identical to an uninterrupted one.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from tfgan_app import checkpoint, train

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class _Interrupt(Exception):
    pass


class _StopMidEpoch(keras.callbacks.Callback):
    """Raise in the middle of epoch ``epoch`` (after ``batch`` batches of it)."""

    def __init__(self, epoch, batch):
        super().__init__()
        self.epoch, self.batch, self.current = epoch, batch, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.current == self.epoch and batch >= self.batch:
            raise _Interrupt(f"stopped in epoch {self.epoch} at batch {batch}")


def _settings(**config):
    # 125 batches per epoch, 5 per compiled call so that batch callbacks fire mid-epoch; a
    # backup and history write after every epoch (no wall-time limit, see test_bookkeeping)
    base = {"epochs": 4, "steps_per_execution": 5, "backup_seconds": 0, "plot_seconds": 0}
    return train.resolve_settings("d2l-gaussian", seed=2, config={**base, **config})


@pytest.mark.parametrize("config", [
    {},
    # k = 3 does not divide 125: the resumed epoch must continue the D/G cadence; EMA restored
    {"d_steps": 3, "ema_decay": 0.9, "loss": "wasserstein", "loss_options": {},
     "gradient_penalty": 1.0},
    # both optimizers wrapped in LossScaleOptimizer: the loss scales are restored too
    {"mixed_precision": "mixed_float16"},
])
def test_interrupted_run_resumes_bit_identical(tmp_path, config):
    settings = _settings(**config)
    straight = train.train(settings, str(tmp_path / "straight"), verbose=0)
    run = tmp_path / "run"
    with pytest.raises(_Interrupt):
        train.train(settings, str(run), verbose=0, extra_callbacks=[_StopMidEpoch(2, 60)])
    found = checkpoint.latest_backup(str(run / "backup"))
    assert found is not None and found[1]["epoch"] == 2
    assert found[1]["history"]["epoch"] == [0, 1]
    k = int(settings["d_steps"])
    if not config.get("mixed_precision"):  # (float16 skips the steps that overflow)
        assert found[1]["d_iterations"] == 250 and found[1]["g_iterations"] == 250 // k
    resumed = train.train(settings, str(run), verbose=0)
    assert resumed["resumed_from_epoch"] == 2
    gan, ref = resumed["gan"], straight["gan"]
    assert int(gan.d_optimizer.iterations) == int(ref.d_optimizer.iterations)
    if not config.get("mixed_precision"):
        assert int(gan.d_optimizer.iterations) == 500
    assert int(gan.g_optimizer.iterations) == int(ref.g_optimizer.iterations)
    # bit-identical to the uninterrupted run: weights, EMA copy, optimizer state, noise state
    assert resumed["fingerprint"] == straight["fingerprint"]
    for a, b in zip(gan.get_weights(), ref.get_weights()):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(gan.d_optimizer.variables + gan.g_optimizer.variables,
                    ref.d_optimizer.variables + ref.g_optimizer.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    np.testing.assert_array_equal(gan.seed_generator.state, ref.seed_generator.state)
    # the history holds every epoch once, the same values as the uninterrupted run's
    history = json.loads((run / "history.json").read_text())
    assert history == json.loads((tmp_path / "straight" / "history.json").read_text())
    assert history["epoch"] == [0, 1, 2, 3]
    assert not (run / "backup").exists()


def test_save_weights_holds_both_optimizers_and_the_noise_state(tmp_path):
    """What BackupAndRestore relies on: ``save_weights`` of a GANModel stores d_optimizer and
    g_optimizer (attributes of the subclassed model) and -- only through GANModel's own
    ``save_own_variables`` -- the noise SeedGenerator state."""
    import h5py

    settings = _settings(epochs=1, d_steps=2)
    ds, info = train.make_dataset(settings)
    gan = train.build_gan(settings, info)
    gan.fit(ds, epochs=1, verbose=0)
    path = str(tmp_path / "state.weights.h5")
    gan.save_weights(path)
    with h5py.File(path) as f:
        assert "d_optimizer" in f and "g_optimizer" in f
        assert "random_state_0" in f["vars"]
    fresh = train.build_gan(settings, info)
    assert int(fresh.d_optimizer.iterations) == 0
    fresh.load_weights(path)
    assert int(fresh.d_optimizer.iterations) == 125 and int(fresh.g_optimizer.iterations) == 62
    np.testing.assert_array_equal(fresh.seed_generator.state, gan.seed_generator.state)
    assert not np.array_equal(np.asarray(fresh.seed_generator.state), [2, 0])


def test_resume_refuses_other_settings_and_no_resume_starts_afresh(tmp_path):
    settings = _settings(epochs=3)
    run = tmp_path / "run"
    with pytest.raises(_Interrupt):
        train.train(settings, str(run), verbose=0, extra_callbacks=[_StopMidEpoch(1, 10)])
    assert (run / "backup").exists()
    other = dict(settings, d_lr=0.01)
    with pytest.raises(ValueError, match=r"different settings \(d_lr\).*--no-resume"):
        train.train(other, str(run), verbose=0)
    fresh = train.train(other, str(run), verbose=0, resume=False)
    assert fresh["resumed_from_epoch"] is None
    assert json.loads((run / "history.json").read_text())["epoch"] == [0, 1, 2]
    assert not (run / "backup").exists()


def test_one_schedule_every_n_epochs_and_after_the_last(tmp_path):
    """``callbacks.due`` is the one "every N epochs and after the last" rule: the plots use it
    (through ``_due``) and so does RunBackup, which keeps its two newest complete backups."""
    from tfgan_app import callbacks

    assert [e for e in range(7) if callbacks.due(e, 3, 7)] == [2, 5, 6]
    assert [e for e in range(6) if callbacks.due(e, 3, 6)] == [2, 5]
    assert all(callbacks.due(e, 1, 4) for e in range(4))
    assert all(callbacks.due(e, 5, None) for e in range(3))  # epochs unknown: maybe the last
    with pytest.raises(ValueError, match="every=0"):
        callbacks.due(0, 0, 3)

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    seen = []

    class Listing(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            found = checkpoint.latest_backup(str(tmp_path / "backup"))
            seen.append(None if found is None else found[1]["epoch"])

    backup = checkpoint.RunBackup(str(tmp_path / "backup"), delete_checkpoint=False, every=3,
                                  metadata=lambda: {"note": np.float32(0.5)})
    x = np.zeros((4, 2), np.float32)
    model.fit(x, x[:, :1], epochs=7, verbose=0, callbacks=[backup, Listing()])
    assert seen == [None, None, 3, 3, 3, 6, 7]
    # the newest two are kept (checkpoint.KEEP): a healthy one survives a bad newest
    assert sorted(os.listdir(tmp_path / "backup")) == ["ckpt-000006", "ckpt-000007"]
    meta = json.loads((tmp_path / "backup" / "ckpt-000007" / "meta.json").read_text())
    assert meta == {"epoch": 7, "note": 0.5}
    # an incomplete backup (no weights, or a temporary directory) and corrupt metadata are
    # ignored; the newest complete one is found
    for name, text in (("ckpt-000009", '{"epoch": 9}'), ("ckpt-000008", "{not json"),
                       (".tmp-ckpt-x", '{"epoch": 10}')):
        (tmp_path / "backup" / name).mkdir()
        (tmp_path / "backup" / name / "meta.json").write_text(text)
    (tmp_path / "backup" / ".tmp-ckpt-x" / "state.weights.h5").write_text("")
    assert checkpoint.latest_backup(str(tmp_path / "backup"))[1]["epoch"] == 7
    assert checkpoint.latest_backup(str(tmp_path / "missing")) is None


def _wait_for(predicate, timeout, proc):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.05)
    return False


def _epochs_in(path):
    try:
        return json.loads(path.read_text())["epoch"]
    except (OSError, ValueError, KeyError):
        return []


@pytest.mark.slow
def test_sigkill_mid_epoch_then_same_command_resumes(tmp_path):
    """``tfgan-app train`` killed with SIGKILL in the middle of an epoch; the same command
    again resumes from the last backup (epoch and optimizer iterations restored) and finishes
    with every epoch once in the history, bit-identical to an uninterrupted run."""
    epochs, steps = 5, 2500  # 20,000 points, batch 8: about 2 s per epoch here
    args = ["--preset", "d2l-gaussian", "--epochs", str(epochs), "--seed", "4", "--quiet",
            "--set", "dataset_options.n=20000", "--set", "steps_per_execution=5",
            "--set", "jit_compile=false", "--set", "backup_seconds=0",
            "--set", "plot_seconds=0"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": REPO}
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "tfgan_app.cli", "train", "--out", str(run), *args]
    history = run / "history.json"

    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert _wait_for(lambda: len(_epochs_in(history)) >= 1, 240, proc), "no epoch finished"
        t1 = time.time()
        assert _wait_for(lambda: len(_epochs_in(history)) >= 2, 120, proc)
        epoch_seconds = time.time() - t1
        time.sleep(epoch_seconds / 2)  # half-way through the third epoch
        done_at_kill = _epochs_in(history)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert not (run / "gan.keras").exists()  # it did not finish
    found = checkpoint.latest_backup(str(run / "backup"))
    assert found is not None
    backup_epoch = found[1]["epoch"]
    # killed after `done_at_kill` epochs and before the next one ended: the backup is that of
    # the last finished epoch (or of the one before, had the kill fallen between the history
    # and the backup writes of an epoch's end)
    assert 2 <= len(done_at_kill) < epochs
    assert backup_epoch in (len(done_at_kill), len(done_at_kill) - 1)
    assert found[1]["d_iterations"] == backup_epoch * steps
    print(f"killed {epoch_seconds / 2:.1f} s into epoch {len(done_at_kill)} "
          f"(epochs take {epoch_seconds:.1f} s); backup of epoch {backup_epoch}")

    again = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True,
                           timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert (f"{backup_epoch} epoch(s) done, d_optimizer.iterations={backup_epoch * steps}"
            in again.stdout), again.stdout
    final = json.loads(history.read_text())
    assert final["epoch"] == list(range(epochs))  # every epoch exactly once
    assert all(len(v) == epochs for v in final.values())
    assert not (run / "backup").exists()
    import tfgan_app.model  # noqa: F401  (registers GANModel for load_model)

    gan = keras.saving.load_model(str(run / "gan.keras"))
    assert int(gan.d_optimizer.iterations) == epochs * steps  # restored, then continued

    straight = tmp_path / "straight"
    ref = subprocess.run([sys.executable, "-m", "tfgan_app.cli", "train", "--out",
                          str(straight), *args], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=600)
    assert ref.returncode == 0, ref.stderr[-3000:]
    assert final == json.loads((straight / "history.json").read_text())
    ref_gan = keras.saving.load_model(str(straight / "gan.keras"))
    for a, b in zip(gan.get_weights(), ref_gan.get_weights()):
        np.testing.assert_array_equal(a, b)
