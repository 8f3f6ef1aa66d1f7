"""Bookkeeping costs a bounded share of a run (issue #15): pictures, history, TensorBoard and
backups are scheduled by epochs AND wall time (``tfgan_app.callbacks.Schedule``), their files
are drawn and written off the training thread, atomically; commands that do not train start
without TensorFlow or matplotlib."""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
import threading

import keras
import numpy as np
import pytest

from tfgan_app import callbacks as cb
from tfgan_app import checkpoint, train

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class FakeClock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


class Tick(keras.callbacks.Callback):
    """Advance a fake clock by ``seconds`` at each epoch's end (before the bookkeeping)."""

    def __init__(self, clock, seconds):
        super().__init__()
        self.clock, self.seconds = clock, seconds

    def on_epoch_end(self, epoch, logs=None):
        self.clock.t += self.seconds


def _runs(schedule, clock, epochs, epoch_seconds):
    schedule.start()
    out = []
    for e in range(epochs):
        clock.t += epoch_seconds
        if schedule(e, epochs):
            out.append(e)
    return out


def test_schedule_at_most_every_n_seconds_and_always_at_the_end():
    clock = FakeClock()
    # 3 s epochs, at most every 10 s: after 12 s, 24 s, and the last epoch (30 s)
    assert _runs(cb.Schedule(1, 10, clock), clock, 10, 3) == [3, 7, 9]
    # the epoch period still applies: every 2nd epoch, and >= 10 s apart
    assert _runs(cb.Schedule(2, 10, clock), clock, 10, 3) == [3, 7, 9]
    assert _runs(cb.Schedule(4, 10, clock), clock, 10, 3) == [3, 7, 9]
    assert _runs(cb.Schedule(3, 10, clock), clock, 10, 3) == [5, 9]
    # epochs longer than the limit: every epoch; seconds=0: every due epoch (the old rule)
    assert _runs(cb.Schedule(1, 30, clock), clock, 5, 40) == [0, 1, 2, 3, 4]
    assert _runs(cb.Schedule(1, 0, clock), clock, 5, 0.001) == [0, 1, 2, 3, 4]
    assert _runs(cb.Schedule(2, 0, clock), clock, 5, 1) == [1, 3, 4]
    # the last epoch even when it comes 1 s after the previous run
    assert _runs(cb.Schedule(1, 10, clock), clock, 11, 1) == [9, 10]
    with pytest.raises(ValueError, match="seconds=-1"):
        cb.Schedule(1, -1)


@pytest.mark.parametrize("epoch_seconds, expected", [
    (4, [None, None, None, 3, 3, 3, 6]),  # short epochs: at most every 10 s, and at the end
    (40, [None, 1, 2, 3, 4, 5, 6]),     # long epochs: a backup after every epoch
])
def test_backups_by_wall_time_and_every_long_epoch(tmp_path, epoch_seconds, expected):
    clock = FakeClock()
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    seen = []

    class Listing(keras.callbacks.Callback):  # runs before the backup of the same epoch
        def on_epoch_end(self, epoch, logs=None):
            found = checkpoint.latest_backup(str(tmp_path / "backup"))
            seen.append(None if found is None else found[1]["epoch"])

    backup = checkpoint.RunBackup(str(tmp_path / "backup"), delete_checkpoint=False,
                                  seconds=10, clock=clock)
    x = np.zeros((4, 2), np.float32)
    model.fit(x, x[:, :1], epochs=7, verbose=0,
              callbacks=[Tick(clock, epoch_seconds), Listing(), backup])
    assert seen == expected
    assert checkpoint.latest_backup(str(tmp_path / "backup"))[1]["epoch"] == 7


def test_train_schedules_pictures_history_tensorboard_and_backups(tmp_path, monkeypatch):
    """A 7-epoch d2l-gaussian run whose epochs take 4 s on a fake clock, plots and backups at
    most every 10 s: drawn and backed up after epochs 3, 6 and 7 only; history.json and
    TensorBoard still hold every epoch."""
    import tensorflow as tf

    clock = FakeClock()
    monkeypatch.setattr(cb, "clock", clock)
    drawn, backed_up, threads = [], [], set()
    real_plot, real_scatter, real_backup = cb.plot_history, cb.plot_scatter, \
        checkpoint.write_backup

    def plot_history(history, path, title="GAN training"):
        threads.add(threading.current_thread().name)
        drawn.append(len(history["epoch"]))
        real_plot(history, path, title)

    def plot_scatter(real, generated, path, title="", modes=None):
        drawn.append(title)
        real_scatter(real, generated, path, title, modes)

    def write_backup(model, write_dir, epoch, metadata=None, keep=2):
        backed_up.append(epoch)
        return real_backup(model, write_dir, epoch, metadata, keep)

    monkeypatch.setattr(cb, "plot_history", plot_history)
    monkeypatch.setattr(cb, "plot_scatter", plot_scatter)
    monkeypatch.setattr(checkpoint, "write_backup", write_backup)
    settings = train.resolve_settings("d2l-gaussian", epochs=7, overrides=[
        "plot_seconds=10", "backup_seconds=10", "dataset_options.n=200",
        "steps_per_execution=25", "jit_compile=false"])
    out = tmp_path / "run"
    train.train(settings, str(out), verbose=0, extra_callbacks=[Tick(clock, 4)])
    assert backed_up == [3, 6, 7]
    assert drawn == [3, "epoch 3", 6, "epoch 6", 7, "epoch 7"]
    assert threads == {"tfgan-writer_0"}  # drawn on the background writer
    history = json.loads((out / "history.json").read_text())
    assert history["epoch"] == list(range(7)) and len(history["d_loss"]) == 7
    assert (out / "plots" / "losses.png").stat().st_size > 0
    steps = []
    for path in glob.glob(str(out / "logs" / "train" / "events.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            steps += [event.step for v in event.summary.value if v.tag == "epoch_d_loss"]
    assert sorted(steps) == list(range(7))  # every epoch logged, in three writes


def test_background_writes_run_off_thread_in_order_and_join(tmp_path):
    order = []
    gate = threading.Event()

    def slow(i):
        gate.wait(5)
        order.append((i, threading.current_thread().name))

    with cb.background_writes():
        for i in range(3):
            cb.submit(slow, i)
        assert order == []  # the caller did not wait
        gate.set()
        cb.join()
        assert [i for i, _ in order] == [0, 1, 2]
        assert {name for _, name in order} == {"tfgan-writer_0"}
    cb.submit(order.append, "inline")  # outside: at once, on this thread
    assert order[-1] == "inline"


def test_background_write_errors_surface_and_training_errors_win(tmp_path):
    def fail():
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        with cb.background_writes():
            cb.submit(fail)
    done = []
    with pytest.raises(KeyError):  # the training error is the one reported
        with cb.background_writes():
            cb.submit(fail)
            cb.submit(done.append, 1)
            raise KeyError("training")
    assert done == [1]  # pending writes were finished first


def test_background_json_writes_are_atomic(tmp_path):
    """A reader polling history.json while the writer rewrites it never sees a partial
    file; a failing write leaves the previous file and no temporary."""
    from tfgan_app.utils import write_json

    path = str(tmp_path / "history.json")
    write_json(path, {"epoch": [0]})
    big = {"epoch": list(range(20_000)), "d_loss": [0.5] * 20_000}
    reads = 0
    with cb.background_writes():
        for _ in range(20):
            cb.submit(write_json, path, big)
        while reads < 200:
            with open(path, encoding="utf-8") as f:
                assert json.load(f)["epoch"][0] == 0  # whole JSON every time
            reads += 1
    assert json.load(open(path, encoding="utf-8")) == big

    class Bad:
        pass

    with pytest.raises(TypeError):
        with cb.background_writes():
            cb.submit(write_json, path, {"epoch": [Bad()]})
    assert json.load(open(path, encoding="utf-8")) == big
    assert os.listdir(tmp_path) == ["history.json"]


@pytest.mark.parametrize("argv", [["--help"], ["presets"], ["train", "--help"]])
def test_commands_that_do_not_train_import_neither_tensorflow_nor_matplotlib(argv):
    code = ("import sys\nfrom tfgan_app.cli import main\ntry:\n    main(sys.argv[1:])\n"
            "except SystemExit:\n    pass\n"
            "heavy = sorted({m.split('.')[0] for m in sys.modules} & "
            "{'tensorflow', 'keras', 'matplotlib', 'keras_tuner'})\n"
            "print('HEAVY', heavy, file=sys.stderr)\n")
    proc = subprocess.run([sys.executable, "-c", code, *argv], cwd=REPO, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PYTHONPATH": REPO})
    assert "HEAVY []" in proc.stderr, proc.stderr[-2000:]
    assert proc.stdout  # the help or the preset list was printed


def test_tune_parser_is_still_complete():
    from tfgan_app.cli import build_parser

    args = build_parser(["tune", "--preset", "d2l-gaussian"]).parse_args(
        ["tune", "--preset", "d2l-gaussian", "--max-trials", "2"])
    assert args.command == "tune" and args.max_trials == 2
    full = build_parser()  # without argv: every subcommand in full
    assert full.parse_args(["tune", "--preset", "x"]).max_trials == 10
