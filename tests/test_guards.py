"""Guards for training and run directories (issue #14): non-finite training stops and keeps
the last healthy backups, a finished run is never trained again silently, a running one is
locked, user errors are one line with exit status 2, temporaries of killed writes are removed,
a diverging loss is reported. The fault-injection test (SIGKILL at 10 moments) is in
``tests/test_guards_faults.py``."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import keras
import numpy as np
import pytest

from tfgan_app import callbacks, checkpoint, cli, train
from tfgan_app.rundir import RunDir, RunDirError, RunLockedError
from tfgan_app.utils import NonFiniteError, host_tag, non_finite_logs

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# d2l-gaussian: 125 batches per epoch, a second or so per epoch here
# (backups and history after every epoch: no wall-time limit, see test_bookkeeping)
D2L = ["--preset", "d2l-gaussian", "--quiet", "--set", "steps_per_execution=5",
       "--set", "backup_seconds=0", "--set", "plot_seconds=0"]


def _settings(**config):
    return train.resolve_settings("d2l-gaussian",
                                  config={"epochs": 2, "steps_per_execution": 5,
                                          "backup_seconds": 0, "plot_seconds": 0, **config})


def _error_line(capsys) -> str:
    """The CLI's stderr: exactly one error line and no traceback."""
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("tfgan-app ")]
    assert len(lines) == 1, err
    return lines[0]


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _weights(path):
    import tfgan_app.model  # noqa: F401  (registers GANModel)

    return keras.saving.load_model(str(path)).get_weights()


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A finished 2-epoch d2l-gaussian run (read-only: tests copy it)."""
    out = tmp_path_factory.mktemp("finished") / "run"
    train.train(_settings(), str(out), verbose=0)
    return out


def _copy(run, dst):
    import shutil

    shutil.copytree(run, dst)
    return dst


# ----------------------------------------------------------------- Bad 1: non-finite training

class _PoisonAt(keras.callbacks.Callback):
    """At the end of epoch ``epoch`` (0-based) set one generator weight to NaN: the state the
    backup sees that epoch is non-finite, and the next epoch's losses are NaN."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            w = self.model.generator.weights[0]
            value = np.asarray(w.numpy())
            value.flat[0] = np.nan
            w.assign(value)


def test_nan_stops_training_and_keeps_the_last_two_healthy_backups(tmp_path, capsys):
    out = tmp_path / "run"
    settings = _settings(epochs=6)
    with pytest.raises(NonFiniteError) as info:
        train.train(settings, str(out), verbose=0, extra_callbacks=[_PoisonAt(3)])
    message = str(info.value)
    # stopped at once: epoch 5 (the first with NaN losses) of 6, naming the quantities, the
    # likely causes, the learning rates and the healthy backup that is kept
    assert info.value.epoch == 5
    assert "training stopped in epoch 5/6" in message and "d_loss=nan" in message
    assert "learning rates too high (d_lr=0.05, g_lr=0.005)" in message
    assert "last healthy state (epoch 3)" in message and "Reliability" in message
    # the poisoned state of epoch 4 was not backed up: ckpt-3 and ckpt-2, both finite, remain
    backups = sorted(os.listdir(out / "backup"))
    assert backups == ["ckpt-000002", "ckpt-000003"], backups
    assert "not backing up epoch 4" in capsys.readouterr().err
    assert checkpoint.latest_backup(str(out / "backup"))[1]["epoch"] == 3
    # nothing non-finite was saved as a model, and the history holds healthy epochs only
    assert not any((out / name).exists() for name in
                   (RunDir.GENERATOR, RunDir.GAN, RunDir.REPORT, RunDir.LOCK))
    history = json.loads((out / "history.json").read_text())
    assert history["epoch"] == [0, 1, 2, 3]  # epoch index 3 was recorded before the NaN step
    assert all(np.isfinite(history["d_loss"]))


def test_cli_exits_3_with_one_line_on_nan(tmp_path, capsys):
    out = tmp_path / "run"
    status = cli.main(["train", *D2L, "--epochs", "3", "--set", "d_lr=1e38", "--set",
                       "g_lr=1e38", "--out", str(out)])
    assert status == 3
    line = _error_line(capsys)
    assert "training stopped in epoch 1/3: non-finite values (d_fake=nan" in line
    assert "d_lr=1e+38" in line
    assert not (out / RunDir.GENERATOR).exists() and not (out / RunDir.LOCK).exists()


@pytest.mark.slow
def test_issue_reproduction_digits_dcgan_lr_1e9(tmp_path, capsys):
    """Issue #14, Bad 1: `--preset digits-dcgan --epochs 3 --set d_lr=1e9 --set g_lr=1e9` ran
    every epoch on NaN, exited 0 and saved NaN weights in every .keras."""
    out = tmp_path / "R"
    status = cli.main(["train", "--preset", "digits-dcgan", "--epochs", "3", "--quiet",
                       "--set", "d_lr=1e9", "--set", "g_lr=1e9", "--out", str(out)])
    assert status == 3
    assert "training stopped in epoch 1/3" in _error_line(capsys)
    assert not list(out.glob("*.keras"))


def test_sample_export_evaluate_refuse_a_generator_with_nan_weights(finished_run, tmp_path,
                                                                    capsys):
    run = _copy(finished_run, tmp_path / "run")
    import tfgan_app.model  # noqa: F401

    gen = keras.saving.load_model(str(run / RunDir.GENERATOR))
    w = gen.weights[0].numpy()
    w[0, 0] = np.inf
    gen.weights[0].assign(w)
    gen.save(str(run / RunDir.GENERATOR))
    with pytest.raises(RunDirError, match=r"holds NaN or infinite weights \(affine/kernel\)"):
        RunDir(run).sampler()
    for argv in (["sample", str(run), "--out", str(tmp_path / "s.png")],
                 ["export", str(run), "--out", str(tmp_path / "export")],
                 ["evaluate", str(run), "--num-samples", "200"]):
        assert cli.main(argv) == 2, argv
        assert "NaN or infinite weights" in _error_line(capsys)
    assert not (tmp_path / "s.png").exists() and not (tmp_path / "export").exists()


def test_guard_unit_checks_and_divergence_warning(capsys):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    guard = callbacks.TrainingGuard()
    guard.set_model(model)
    guard.set_params({"epochs": 9})
    guard.on_epoch_end(0, {"d_loss": 0.5, "g_loss": 9e5, "val_swd": float("nan")})
    assert guard.warning is None  # val_* metrics are not training; 9e5 is below 1e6
    guard.on_epoch_end(1, {"d_loss": -2e6, "g_loss": 1.0})
    assert guard.warning.startswith("warning: epoch 2/9: d_loss=-2e+06 (|loss| > 1e+06)")
    assert guard.warning in capsys.readouterr().err
    with pytest.raises(NonFiniteError, match=r"epoch 3/9: non-finite values \(g_loss=inf\)"):
        guard.on_epoch_end(2, {"d_loss": 1.0, "g_loss": float("inf")})
    # the one check tuning shares (a trial with NaN is FAILED): all keys, bools ignored
    assert set(non_finite_logs({"a": float("nan"), "b": 1.0, "c": True, "d": "x",
                                "val_e": float("inf")})) == {"a", "val_e"}


def test_diverging_loss_warns_on_the_command_line(tmp_path, capsys):
    """Issue #14: `--set d_lr=1e9` on d2l-gaussian diverged to huge losses without a word.
    With the doctor off the guard warns and training goes on (with it on, the doctor stops:
    tests/test_doctor.py)."""
    assert cli.main(["train", *D2L, "--epochs", "2", "--set", "d_lr=1e9", "--doctor", "off",
                     "--out", str(tmp_path / "run")]) == 0
    err = capsys.readouterr().err
    assert "warning: epoch 1/2: d_loss=" in err and "training is most likely diverging" in err
    assert "d_lr=1e+09" in err


# ----------------------------------------------------------------- Bad 2: finished runs

def test_finished_run_is_not_trained_again(finished_run, tmp_path, capsys):
    run = _copy(finished_run, tmp_path / "run")
    (run / "notes.txt").write_text("mine")
    before = (run / RunDir.GAN).read_bytes()
    same = ["train", *D2L, "--epochs", "2", "--out", str(run)]
    assert cli.main(same) == 0
    assert "is already trained (2 epochs, the same settings): nothing to do" in \
        capsys.readouterr().out
    assert (run / RunDir.GAN).read_bytes() == before
    # other settings: refused, naming them
    assert cli.main(["train", *D2L, "--epochs", "2", "--seed", "3", "--out", str(run)]) == 2
    assert "holds a finished run with other settings (seed)" in _error_line(capsys)
    assert cli.main(["train", *D2L, "--epochs", "3", "--out", str(run)]) == 2
    assert "--resume-more --epochs 3" in _error_line(capsys)
    assert cli.main(["train", *D2L, "--resume-more", "--epochs", "2", "--out", str(run)]) == 2
    assert "expected --epochs above 2" in _error_line(capsys)
    assert cli.main(["train", *D2L, "--resume-more", "--out", str(run)]) == 2
    assert "--resume-more needs --epochs N" in _error_line(capsys)
    assert (run / RunDir.GAN).read_bytes() == before
    # --overwrite trains afresh, and keeps the user's file
    assert cli.main(["train", *D2L, "--epochs", "1", "--seed", "3", "--overwrite",
                     "--out", str(run)]) == 0
    assert json.loads((run / "history.json").read_text())["epoch"] == [0]
    assert json.loads((run / "config.json").read_text())["seed"] == 3
    assert (run / "notes.txt").read_text() == "mine"


def test_resume_more_continues_bit_identical_to_a_straight_run(finished_run, tmp_path):
    run = _copy(finished_run, tmp_path / "run")
    (run / RunDir.EVAL).write_text("{}")
    more = train.train(_settings(epochs=4), str(run), verbose=0, resume_more=True)
    straight = train.train(_settings(epochs=4), str(tmp_path / "straight"), verbose=0)
    assert more["resumed_from_epoch"] == 2
    assert more["fingerprint"] == straight["fingerprint"]
    for a, b in zip(_weights(run / RunDir.GAN), _weights(tmp_path / "straight" / RunDir.GAN)):
        np.testing.assert_array_equal(a, b)
    assert json.loads((run / "history.json").read_text()) == \
        json.loads((tmp_path / "straight" / "history.json").read_text())
    assert not (run / RunDir.EVAL).exists()  # the 2-epoch evaluation is outdated
    assert RunDir(run).finished()


class _Stop(Exception):
    pass


class _StopAtEpoch(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise _Stop(epoch)


def test_killed_overwrite_leaves_no_old_models_beside_a_new_history(finished_run, tmp_path):
    """Issue #14: a retrain killed mid-way left a short history.json beside the old models."""
    run = _copy(finished_run, tmp_path / "run")
    with pytest.raises(_Stop):
        train.train(_settings(epochs=3, seed=5), str(run), verbose=0, overwrite=True,
                    extra_callbacks=[_StopAtEpoch(1)])
    assert not any((run / n).exists() for n in (RunDir.GENERATOR, RunDir.GAN, RunDir.REPORT))
    assert json.loads((run / "history.json").read_text())["epoch"] == [0]
    assert not RunDir(run).finished()
    # a backup of more epochs than asked for is refused, not silently "finished"
    with pytest.raises(_Stop):
        train.train(_settings(epochs=3, seed=5), str(run), verbose=0,
                    extra_callbacks=[_StopAtEpoch(2)])
    with pytest.raises(ValueError, match=r"holds a backup of 2 epochs, more than epochs=1"):
        train.train(_settings(epochs=1, seed=5), str(run), verbose=0)


# ----------------------------------------------------------------- Bad 3: the lock

def test_a_locked_run_directory_refuses_a_second_train(tmp_path, capsys):
    out = tmp_path / "run"
    with RunDir(out).lock():
        owner = json.loads((out / RunDir.LOCK).read_text())
        assert owner["pid"] == os.getpid() and owner["host"] == socket.gethostname()
        assert cli.main(["train", *D2L, "--epochs", "1", "--out", str(out)]) == 2
        line = _error_line(capsys)
        assert f"is locked by pid {os.getpid()} on {socket.gethostname()}" in line
        assert "wait for it to finish or train into another --out" in line
        with pytest.raises(RunLockedError):
            with RunDir(out).lock():
                pass
        assert not (out / RunDir.CONFIG).exists()
    assert not (out / RunDir.LOCK).exists()


def test_stale_lock_is_taken_over_and_a_foreign_host_lock_refused(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    dead = _dead_pid()
    (out / RunDir.LOCK).write_text(json.dumps({"pid": dead, "host": socket.gethostname()}))
    result = train.train(_settings(epochs=1), str(out), verbose=0)
    assert result["history"]["epoch"] == [0]
    assert f"taking over a stale lock of pid {dead}" in capsys.readouterr().err
    assert not (out / RunDir.LOCK).exists()

    other = tmp_path / "other"
    other.mkdir()
    (other / RunDir.LOCK).write_text(json.dumps({"pid": 1, "host": "elsewhere.example"}))
    assert cli.main(["train", *D2L, "--epochs", "1", "--out", str(other)]) == 2
    line = _error_line(capsys)
    assert "locked by pid 1 on elsewhere.example" in line and "another host" in line


def test_only_the_chief_locks(tmp_path, monkeypatch):
    """A non-chief worker of a multi-worker run neither takes nor checks the lock (the chief
    holds it) and writes nothing into the run directory."""
    from tfgan_app import distribute

    out = tmp_path / "run"
    monkeypatch.setattr(distribute, "is_chief", lambda strategy=None: False)
    with RunDir(out).lock():
        result = train.train(_settings(epochs=1), str(out), verbose=0)
        assert result["is_chief"] is False
        assert sorted(os.listdir(out)) == [RunDir.LOCK]


# ----------------------------------------------------------------- CLI user errors

@pytest.mark.parametrize("argv, expected", [
    (["--epochs", "-1"], "epochs: expected an integer >= 1, got -1"),
    (["--epochs", "0"], "epochs: expected an integer >= 1, got 0"),
    (["--d-steps", "0"], "d_steps: expected an integer >= 1, got 0"),
    (["--set", "d_lr=fast"], "d_lr: expected a number, got 'fast'"),
    (["--set", "batch_size=abc"], "batch_size: expected an integer, got 'abc'"),
    (["--set", "generator=5"], 'generator: expected {"builder": NAME, ...}, got 5'),
    (["--config", "missing.json"], "--config: missing.json does not exist"),
])
def test_train_user_errors_are_one_line_with_status_2(argv, expected, tmp_path, capsys):
    assert cli.main(["train", *D2L, *argv, "--out", str(tmp_path / "run")]) == 2
    assert expected in _error_line(capsys)
    assert not (tmp_path / "run").exists()


def test_out_paths_of_the_wrong_kind(finished_run, tmp_path, capsys):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    assert cli.main(["train", *D2L, "--out", str(a_file)]) == 2
    assert f"'{a_file}' is a file, not a run directory" in _error_line(capsys)
    assert cli.main(["export", str(finished_run), "--out", str(a_file)]) == 2
    assert f"--out '{a_file}' is a file; expected a directory" in _error_line(capsys)
    assert cli.main(["sample", str(finished_run), "--out", str(tmp_path)]) == 2
    assert f"--out '{tmp_path}' is a directory; expected a PNG file path" in _error_line(capsys)
    assert a_file.read_text() == "x"
    foreign = tmp_path / "docs"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("mine")
    assert cli.main(["train", *D2L, "--out", str(foreign)]) == 2
    assert "is not empty and is not a run directory" in _error_line(capsys)
    assert os.listdir(foreign) == ["thesis.tex"]
    # --debug shows the traceback
    assert cli.main(["train", *D2L, "--out", str(a_file), "--debug"]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_corrupt_run_files_are_named(finished_run, tmp_path, capsys):
    run = _copy(finished_run, tmp_path / "run")
    (run / RunDir.CONFIG).write_text("{bad")
    assert cli.main(["export", str(run), "--out", str(tmp_path / "e")]) == 2
    assert f"{run / RunDir.CONFIG} is not valid JSON" in _error_line(capsys)
    run = _copy(finished_run, tmp_path / "run2")
    data = (run / RunDir.GENERATOR).read_bytes()
    (run / RunDir.GENERATOR).write_bytes(data[:len(data) // 2])
    for argv in (["export", str(run), "--out", str(tmp_path / "e")], ["sample", str(run)],
                 ["evaluate", str(run)]):
        assert cli.main(argv) == 2
        line = _error_line(capsys)
        assert f"'{run / RunDir.GENERATOR}' could not be loaded: it is not a .keras (zip) " \
               "archive" in line and "File not found" not in line


@pytest.mark.slow
def test_user_error_in_a_real_process_has_status_2_and_no_traceback(finished_run, tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    proc = subprocess.run([sys.executable, "-m", "tfgan_app.cli", "export", str(finished_run),
                           "--out", str(a_file)], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": REPO}, timeout=300)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert f"tfgan-app export: error: --out '{a_file}' is a file" in proc.stderr


# ----------------------------------------------------------------- temporaries of killed writes

def _leftovers(run, dead):
    tag = host_tag()
    stale = [".tmp-k2j3h4.keras", ".tmp-zero", os.path.join("plots", ".tmp-q1.png"),
             f".tmp-{dead}-{tag}-x.keras", os.path.join("backup", f".tmp-{dead}-{tag}-ckpt-a")]
    live = [f".tmp-{os.getppid()}-{tag}-live.json",  # its writer (our parent) still runs
            f".tmp-{dead}-00000000-elsewhere.json"]  # another host's: cannot be checked
    users = ["notes.tmp", ".tmpfile", "my.tmp-x", os.path.join("plots", "mine.png")]
    for name in stale + live + users:
        path = run / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if name.endswith("ckpt-a"):
            path.mkdir()
            (path / "state.weights.h5").write_bytes(b"half")
        else:
            path.write_bytes(b"" if "zero" in name else b"data")
    return stale, live + users


@pytest.mark.parametrize("command", ["export", "train"])
def test_temporaries_of_killed_writes_are_removed(command, finished_run, tmp_path, capsys):
    run = _copy(finished_run, tmp_path / "run")
    stale, kept = _leftovers(run, _dead_pid())
    if command == "export":
        argv = ["export", str(run), "--out", str(tmp_path / "export")]
    else:  # the same command again: the run is finished, its directory is tidied
        argv = ["train", *D2L, "--epochs", "2", "--out", str(run)]
    assert cli.main(argv) == 0
    assert f"removed {len(stale)} temporary file(s) left by killed writes" in \
        capsys.readouterr().out
    for name in stale:
        assert not os.path.lexists(run / name), name
    for name in kept:
        assert os.path.exists(run / name), name


def test_export_keeps_untagged_temporaries_while_a_train_holds_the_lock(finished_run, tmp_path):
    run = _copy(finished_run, tmp_path / "run")
    (run / ".tmp-old.keras").write_bytes(b"x")
    with RunDir(run).lock():
        assert RunDir(run).remove_stale_temporaries() == []
    assert RunDir(run).remove_stale_temporaries() == [str(run / ".tmp-old.keras")]
