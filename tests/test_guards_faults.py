"""Fault injection (issue #14): ``tfgan-app train`` killed with SIGKILL at 10 seeded random
moments -- mid-epoch, while history.json or a backup is written, during the final save -- and
started again each time with the same command; the run ends bit-identical to an uninterrupted
one, with no temporary file and no lock left.

Each process runs the real command line through a small driver (``_DRIVER``) that pauses at
the chosen moment (after a write's temporary file is complete, before its rename) and tells
the test, which then kills it: the moments are exact, not timings. While the first one is
paused holding the run's lock, a second ``train`` on the same directory is refused.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tfgan_app import checkpoint
from tfgan_app.rundir import RunDir

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EPOCHS = 6
ARGS = ["train", "--preset", "d2l-gaussian", "--epochs", str(EPOCHS), "--seed", "7", "--quiet",
        "--set", "steps_per_execution=5", "--set", "jit_compile=false",
        "--set", "backup_seconds=0", "--set", "plot_seconds=0"]  # write after every epoch
FINAL = ("generator.keras", "gan.keras", "report.json", "after-report")

# FAULT = "batch:E:B" (epoch index E, after batch B), "history:D" / "weights:D" / "meta:D"
# (the history or backup write after D epochs: temporary written, not renamed), "final:I"
# (FINAL[I]; "after-report": report written, backup not yet removed). Pauses by writing
# FAULT_MARKER and sleeping until killed.
_DRIVER = r'''
import contextlib, os, sys, time
import keras
from tfgan_app import images, rundir, train, utils
from tfgan_app.model import GANModel

kind, _, rest = os.environ.get("FAULT", "").partition(":")
arg = [int(a) for a in rest.split(":")] if rest else []
FINAL = ("generator.keras", "gan.keras", "report.json", "after-report")
state = {"epoch": -1, "done": 0}

def pause(what):
    marker = os.environ["FAULT_MARKER"]
    with open(marker + ".part", "w") as f:
        f.write(what)
    os.replace(marker + ".part", marker)
    while True:
        time.sleep(1)

class Track(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        state["epoch"] = epoch
    def on_epoch_end(self, epoch, logs=None):
        state["done"] = epoch + 1
    def on_train_batch_end(self, batch, logs=None):
        if kind == "batch" and state["epoch"] == arg[0] and batch >= arg[1]:
            pause(f"batch {batch} of epoch {arg[0]}")

real_atomic = utils.atomic_path

@contextlib.contextmanager
def atomic(path, suffix=""):
    with real_atomic(path, suffix) as tmp:
        yield tmp
        name = os.path.basename(path)
        if (kind, name) in (("history", "history.json"), ("meta", "meta.json")) \
                and state["done"] == arg[0]:
            pause(f"{name} after {arg[0]} epochs")
        if kind == "final" and name == FINAL[arg[0]]:
            pause(name)

utils.atomic_path = rundir.atomic_path = images.atomic_path = atomic
real_save_weights = GANModel.save_weights

def save_weights(self, path, *a, **k):
    real_save_weights(self, path, *a, **k)
    if kind == "weights" and state["done"] == arg[0]:
        pause(f"backup weights after {arg[0]} epochs")

GANModel.save_weights = save_weights
real_report = rundir.RunDir.write_report

def write_report(self, report):
    real_report(self, report)
    if kind == "final" and FINAL[arg[0]] == "after-report":
        pause("after-report")

rundir.RunDir.write_report = write_report
real_train = train.train

def traced(settings, out, **kw):
    kw["extra_callbacks"] = [*kw.get("extra_callbacks", ()), Track()]
    return real_train(settings, out, **kw)

train.train = traced
from tfgan_app.cli import main
sys.exit(main(sys.argv[1:]))
'''


def moments(seed: int = 14) -> list[tuple]:
    """10 distinct kill moments, seeded, in the order a run reaches them: 3 mid-epoch, 1 in a
    history write, 3 in backup writes (weights or metadata), 3 in the final save."""
    rng = random.Random(seed)
    chosen = [("batch", e, rng.randrange(5, 120)) for e in rng.sample(range(EPOCHS), 3)]
    chosen.append(("history", rng.randrange(1, EPOCHS + 1)))
    chosen += [(rng.choice(("weights", "meta")), d) for d in rng.sample(range(1, EPOCHS + 1), 3)]
    chosen += [("final", i) for i in sorted(rng.sample(range(len(FINAL)), 3))]
    phase = {"batch": 0, "history": 1, "weights": 2, "meta": 3}

    def progress(m):
        if m[0] == "final":
            return (EPOCHS, 4 + m[1], 0)
        if m[0] == "batch":
            return (m[1], 0, m[2])
        return (m[1] - 1, phase[m[0]], 0)

    return sorted(chosen, key=progress)


def _env(**extra):
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": REPO, **extra}


def _temporaries(root):
    return [os.path.join(d, n) for d, dirs, files in os.walk(root) for n in dirs + files
            if n.startswith(".tmp-")]


def _weights(path):
    import keras

    import tfgan_app.model  # noqa: F401  (registers GANModel)

    return keras.saving.load_model(str(path)).get_weights()


@pytest.mark.slow
def test_sigkill_at_ten_moments_then_the_same_command_ends_bit_identical(tmp_path):
    run = tmp_path / "run"
    marker = tmp_path / "paused"
    cmd = [sys.executable, "-c", _DRIVER, *ARGS, "--out", str(run)]
    plan = moments()
    assert len(plan) == 10 and len(set(plan)) == 10
    log = []
    for i, moment in enumerate(plan):
        fault = ":".join(map(str, moment))
        stderr = tmp_path / f"stderr-{i}.txt"
        with open(stderr, "w") as err_file:
            proc = subprocess.Popen(cmd, cwd=REPO, env=_env(FAULT=fault,
                                                           FAULT_MARKER=str(marker)),
                                    stdout=subprocess.DEVNULL, stderr=err_file, text=True)
        try:
            deadline = time.time() + 240
            while not marker.exists() and proc.poll() is None and time.time() < deadline:
                time.sleep(0.05)
            assert marker.exists(), (fault, proc.poll(), stderr.read_text()[-3000:])
            if i == 0:  # paused, holding the lock: a second train on the run is refused
                second = subprocess.run([sys.executable, "-m", "tfgan_app.cli", *ARGS, "--out",
                                         str(run)], cwd=REPO, env=_env(), capture_output=True,
                                        text=True, timeout=300)
                assert second.returncode == 2, second.stderr[-2000:]
                assert f"is locked by pid {proc.pid}" in second.stderr
                assert "Traceback" not in second.stderr
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        err = stderr.read_text()
        assert proc.returncode == -signal.SIGKILL
        if i > 0:  # each restart took over the lock the killed run left
            assert "taking over a stale lock of pid" in err, err[-2000:]
        lock = json.loads((run / RunDir.LOCK).read_text())
        assert lock["pid"] == proc.pid
        found = checkpoint.latest_backup(str(run / "backup"))
        log.append((fault, marker.read_text(), found and found[1]["epoch"]))
        marker.unlink()
        if moment[0] in ("history", "weights", "meta") or (
                moment[0] == "final" and FINAL[moment[1]] != "after-report"):
            assert _temporaries(run), (fault, "the kill left no temporary to clean up")
        assert not RunDir(run).finished()
    print("\n".join(f"killed at {f} ({what}); newest backup: epoch {b}" for f, what, b in log))

    final = subprocess.run(cmd, cwd=REPO, env=_env(), capture_output=True, text=True,
                           timeout=600)
    assert final.returncode == 0, final.stderr[-3000:]
    assert "taking over a stale lock" in final.stderr
    assert _temporaries(run) == []
    assert not (run / RunDir.LOCK).exists() and not (run / "backup").exists()
    assert RunDir(run).finished()

    straight = tmp_path / "straight"
    ref = subprocess.run([*cmd[:-1], str(straight)], cwd=REPO, env=_env(), capture_output=True,
                         text=True, timeout=600)
    assert ref.returncode == 0, ref.stderr[-3000:]
    history = json.loads((run / "history.json").read_text())
    assert history["epoch"] == list(range(EPOCHS))
    assert history == json.loads((straight / "history.json").read_text())
    for name in (RunDir.GAN, RunDir.GENERATOR):
        for a, b in zip(_weights(run / name), _weights(straight / name)):
            np.testing.assert_array_equal(a, b)
    assert json.loads((run / RunDir.REPORT).read_text()) == \
        json.loads((straight / RunDir.REPORT).read_text())
