"""The run directory: what ``tfgan-app train`` writes and everything else reads back.

This module is the only one that knows the run directory's file names and which generator
samples (the EMA copy when the run kept one, else the raw generator). ``train`` writes
through :class:`RunDir`; ``sample``, ``evaluate``, ``export``, ``tune`` and the command line
read through it, and a missing or corrupt file raises one error, :class:`RunDirError`.

Layout::

    RUN/
      config.json          resolved settings + "data" (the data description) + "versions";
                           written first, so a run in progress can be inspected
      history.json         per-epoch logs: {"epoch": [...], "d_loss": [...], ...}
      generator.keras      the trained generator alone (keras.saving.load_model)
      ema_generator.keras  when ema_decay is set: the weight-averaged generator, which
                           sampling, evaluation and export use
      generator_ba.keras   CycleGAN runs: F (B -> A) beside G (A -> B, generator.keras),
      ema_generator_ba.keras  and its EMA copy when ema_decay is set
      gan.keras            the whole GANModel with both optimizers' state
      report.json          what the job measured at the end (e.g. the Gaussian fit)
      eval.json            written by `tfgan-app evaluate`
      doctor.json          the training doctor's diagnoses so far (tfgan_app.doctor)
      plots/losses.png     D and G losses and D's outputs per epoch
      plots/scatter.png    2-D points: real against generated
      samples/             images: a grid every plot_every epochs, interpolation.png;
                           translation: a triptych per epoch, translated/ (sample --input)
      logs/                TensorBoard events
      backup/              only while training: the last two resumable states (see
                           tfgan_app.checkpoint); removed when the run finishes
      train.lock           only while training: {"pid", "host", "started", "command"} of the
                           process that trains here (:meth:`RunDir.lock`)

Every file is written atomically (a ``.tmp-<pid>-<host>-*`` temporary file, then rename);
temporaries left by killed writers are removed by the next ``train`` or ``export`` of the
run (:meth:`RunDir.remove_stale_temporaries`). A run is *finished* when ``generator.keras``,
``gan.keras`` and ``report.json`` are written and no backup is left (:meth:`RunDir.finished`).
A generator holding NaN or infinity is refused when loaded.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import json
import os
import shutil
import socket
import sys
import zipfile

from tfgan_app.utils import (atomic_path, non_finite_variables, pid_alive, read_json,
                             remove_stale_temporaries, write_json)


class RunDirError(FileNotFoundError, ValueError):
    """A run directory, or one of its files, is missing or unreadable.

    A ``FileNotFoundError`` (a missing file) and a ``ValueError`` (bad input), so callers that
    catch either keep working; the message names the file and what was expected.
    """


class RunLockedError(RuntimeError):
    """Another process is training in this run directory (its ``train.lock`` names it)."""


class RunDir:
    """A run directory written by :func:`tfgan_app.train.train`.

    Args:
      path: the directory. Nothing is read until asked for.
    """

    CONFIG = "config.json"
    HISTORY = "history.json"
    REPORT = "report.json"
    EVAL = "eval.json"
    DOCTOR = "doctor.json"
    GENERATOR = "generator.keras"
    EMA_GENERATOR = "ema_generator.keras"
    GENERATOR_BA = "generator_ba.keras"
    EMA_GENERATOR_BA = "ema_generator_ba.keras"
    GAN = "gan.keras"
    BACKUP = "backup"
    LOCK = "train.lock"
    LOGS = "logs"
    SAMPLES = "samples"
    LOSSES_PNG = os.path.join("plots", "losses.png")
    SCATTER_PNG = os.path.join("plots", "scatter.png")
    INTERPOLATION_PNG = os.path.join("samples", "interpolation.png")
    SAMPLE_PNG = os.path.join("samples", "sample.png")
    #: ``tfgan-app sample --input`` of a translation run: translated images (default output)
    TRANSLATED = os.path.join("samples", "translated")
    #: What ``train`` writes here (removed by ``--overwrite``); folders are removed whole.
    OUTPUTS = (HISTORY, GENERATOR, EMA_GENERATOR, GENERATOR_BA, EMA_GENERATOR_BA, GAN, REPORT,
               EVAL, BACKUP, LOGS, SAMPLES, LOSSES_PNG, SCATTER_PNG, DOCTOR)
    #: The folders where files are written atomically (and temporaries may be left).
    _WRITTEN_DIRS = ("", "plots", SAMPLES, TRANSLATED, BACKUP)

    def __init__(self, path):
        self.root = os.path.abspath(os.fspath(path))
        self._config = None

    def __repr__(self):
        return f"RunDir({self.root!r})"

    def path(self, name: str) -> str:
        """The absolute path of ``name`` (one of the class's file names) in this run."""
        return os.path.join(self.root, name)

    # ------------------------------------------------------------------ reading

    def _require(self, name: str, what: str) -> str:
        if not os.path.isdir(self.root):
            raise RunDirError(f"run directory not found: {self.root!r} (expected a directory "
                              "written by `tfgan-app train`)")
        path = self.path(name)
        if not os.path.isfile(path):
            raise RunDirError(f"{path!r} not found: {what}")
        return path

    @property
    def config(self) -> dict:
        """``config.json``: the resolved settings, ``"data"`` and ``"versions"`` (cached)."""
        if self._config is None:
            path = self._require(self.CONFIG, f"{self.root!r} is not a training run directory "
                                 "(expected config.json and generator.keras written by "
                                 "`tfgan-app train`)")
            try:
                config = read_json(path)
            except ValueError as e:
                raise RunDirError(str(e)) from None
            if not isinstance(config, dict) or "latent_dim" not in config:
                raise RunDirError(f"{path!r} is not a run configuration (no 'latent_dim')")
            self._config = config
        return self._config

    @property
    def data(self) -> dict:
        """The data description the run trained on (``config["data"]``)."""
        data = self.config.get("data")
        if isinstance(data, str):
            data = {"name": data}
        if not isinstance(data, dict) or not data:
            raise RunDirError(f"{self.path(self.CONFIG)!r} has no usable 'data' entry "
                              f"(expected a dict with 'name'); got {data!r}")
        return data

    @property
    def latent_dim(self) -> int:
        return int(self.config["latent_dim"])

    @property
    def num_classes(self) -> int | None:
        return self.config.get("num_classes") or None

    @property
    def kind(self):
        """What the run produces (:func:`tfgan_app.kinds.kind_of` of its data and classes)."""
        from tfgan_app import kinds

        return kinds.kind_of(self.data, num_classes=self.num_classes)

    def history(self) -> dict:
        """``history.json`` (``{}`` before the first epoch has finished)."""
        path = self.path(self.HISTORY)
        return read_json(path) if os.path.isfile(path) else {}

    def report(self) -> dict:
        """``report.json``: what the job measured at the end."""
        return read_json(self._require(self.REPORT, "has the run finished training?"))

    def sampling_generator_path(self, use_ema: bool = True, direction: str = "a_to_b") -> str:
        """The generator that samples: ``ema_generator.keras`` when the run kept an EMA copy
        and ``use_ema`` (what ``GANModel.generate`` and the export use), else
        ``generator.keras``; ``direction="b_to_a"``: a CycleGAN run's F
        (``[ema_]generator_ba.keras``)."""
        names = {"a_to_b": (self.EMA_GENERATOR, self.GENERATOR),
                 "b_to_a": (self.EMA_GENERATOR_BA, self.GENERATOR_BA)}
        if direction not in names:
            raise ValueError(f"direction must be one of {', '.join(names)}, got {direction!r}")
        ema, plain = names[direction]
        if use_ema and os.path.isfile(self.path(ema)):
            return self.path(ema)
        return self._require(plain, "has the run finished training? (expected "
                             f"config.json and {plain} written by `tfgan-app train`"
                             + (" for a CycleGAN run)" if direction == "b_to_a" else ")"))

    @staticmethod
    def _load_keras(path: str, compile: bool = False):
        import keras

        import tfgan_app.builders  # noqa: F401  (registers the package's custom layers)
        import tfgan_app.cyclegan  # noqa: F401  (registers CycleGAN)
        import tfgan_app.model  # noqa: F401  (registers GANModel)

        if not zipfile.is_zipfile(path):  # Keras would say "File not found" (issue #14)
            raise RunDirError(f"{path!r} could not be loaded: it is not a .keras (zip) archive "
                              f"({os.path.getsize(path)} bytes; truncated or corrupt?). "
                              "Expected a file written by `tfgan-app train`")
        try:
            model = keras.saving.load_model(path, compile=compile)
        except Exception as e:  # noqa: BLE001 -- re-raised as one clear error
            raise RunDirError(f"{path!r} could not be loaded (truncated or corrupt? it was "
                              f"written by `tfgan-app train`): {type(e).__name__}: "
                              f"{str(e).splitlines()[0] if str(e) else ''}") from e
        bad = non_finite_variables(model.weights)
        if bad:
            raise RunDirError(
                f"{path!r} holds NaN or infinite weights ({', '.join(bad[:3])}"
                f"{', ...' if len(bad) > 3 else ''}): the run diverged and its samples would "
                "be garbage; train it again with lower learning rates (--overwrite; see the "
                "README's Reliability section)")
        return model

    def load_generator(self, use_ema: bool = True, direction: str = "a_to_b"):
        """The sampling generator (see :meth:`sampling_generator_path`) as a ``keras.Model``."""
        self.config  # noqa: B018 -- a clear error for a directory that is not a run
        return self._load_keras(self.sampling_generator_path(use_ema, direction))

    def sampler(self, use_ema: bool = True):
        """A :class:`tfgan_app.sampling.Sampler` over the sampling generator: draws exactly
        what ``GANModel.generate`` would for the same seed."""
        from tfgan_app.sampling import Sampler

        return Sampler(self.load_generator(use_ema), self.latent_dim, self.num_classes)

    def translator(self, use_ema: bool = True, direction: str = "a_to_b"):
        """A :class:`tfgan_app.translation.Translator` over the sampling generator of an
        image-to-image run (``tfgan-app sample --input``, ``evaluate``); a CycleGAN run's
        ``direction`` (``"a_to_b"``: G, ``"b_to_a"``: F)."""
        from tfgan_app.translation import Translator

        return Translator(self.load_generator(use_ema, direction))

    def translated_dir(self, direction: str | None = None) -> str:
        """Where ``tfgan-app sample --input`` writes by default: ``samples/translated/``, a
        CycleGAN run's ``samples/translated/AtoB/`` (or ``BtoA/``)."""
        if direction is None:
            return self.path(self.TRANSLATED)
        return os.path.join(self.path(self.TRANSLATED),
                            {"a_to_b": "AtoB", "b_to_a": "BtoA"}[direction])

    def load_gan(self, compile: bool = True):
        """``gan.keras``: the whole :class:`~tfgan_app.GANModel` (optimizers included), with
        ``run_config`` set to the run's ``config.json``."""
        config = self.config
        gan = self._load_keras(self._require(self.GAN, "has the run finished training?"),
                               compile=compile)
        gan.run_config = config
        return gan

    # ------------------------------------------------------------------ writing

    def write_config(self, settings: dict, data: dict, versions: dict) -> None:
        """``config.json``: ``settings`` plus ``"data"`` and ``"versions"``."""
        os.makedirs(self.root, exist_ok=True)
        write_json(self.path(self.CONFIG), {**settings, "data": data, "versions": versions})
        self._config = None

    def write_models(self, gan) -> None:
        """``generator.keras``, ``ema_generator.keras`` (when EMA is on) and ``gan.keras``;
        for a CycleGAN also ``generator_ba.keras`` (and ``ema_generator_ba.keras``)."""
        if hasattr(gan, "generator_ab"):  # CycleGAN: G is generator.keras, F beside it
            models = [(self.GENERATOR, gan.generator_ab), (self.GENERATOR_BA, gan.generator_ba),
                      (self.EMA_GENERATOR, gan.ema_generator_ab),
                      (self.EMA_GENERATOR_BA, gan.ema_generator_ba), (self.GAN, gan)]
        else:
            models = [(self.GENERATOR, gan.generator),
                      (self.EMA_GENERATOR, getattr(gan, "ema_generator", None)), (self.GAN, gan)]
        models = [(name, m) for name, m in models if m is not None]
        for name, model in models:
            with atomic_path(self.path(name), suffix=".keras") as tmp:
                model.save(tmp)

    def write_report(self, report: dict) -> None:
        write_json(self.path(self.REPORT), report)

    def write_eval(self, result: dict) -> None:
        write_json(self.path(self.EVAL), result, allow_nan=False)

    def remove(self, *names: str) -> None:
        """Remove ``names`` (files, or folders whole) from the run; missing ones are fine."""
        for name in names:
            path = self.path(name)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            elif os.path.lexists(path):
                os.remove(path)

    # ------------------------------------------------------------------ state

    def finished(self) -> bool:
        """Whether training finished here: ``generator.keras``, ``gan.keras`` and
        ``report.json`` written and no backup left (a run killed after its last file keeps its
        backup and resumes to rewrite them)."""
        backup = self.path(self.BACKUP)
        left = os.path.isdir(backup) and any(not n.startswith(".tmp-")
                                             for n in os.listdir(backup))
        return not left and all(os.path.isfile(self.path(n))
                                for n in (self.GENERATOR, self.GAN, self.REPORT))

    def check_trainable(self) -> None:
        """Raise :class:`RunDirError` unless ``train`` may write here: a new or empty
        directory, or a run directory (one with ``config.json``, or only the package's files)."""
        if os.path.exists(self.root) and not os.path.isdir(self.root):
            raise RunDirError(f"{self.root!r} is a file, not a run directory (expected a new "
                              "directory or one written by `tfgan-app train`)")
        if not os.path.isdir(self.root) or os.path.isfile(self.path(self.CONFIG)):
            return
        ours = {n.split(os.sep)[0] for n in (*self.OUTPUTS, self.CONFIG, self.LOCK)}
        foreign = sorted(n for n in os.listdir(self.root)
                         if n not in ours and not n.startswith(".tmp-"))
        if foreign:
            raise RunDirError(
                f"{self.root!r} is not empty and is not a run directory (no config.json; holds "
                f"{', '.join(map(repr, foreign[:3]))}{', ...' if len(foreign) > 3 else ''}): "
                "expected a new or empty directory, or one written by `tfgan-app train`")

    def clear_outputs(self) -> None:
        """Remove everything ``train`` wrote (:data:`OUTPUTS`; ``config.json`` is rewritten);
        other files in the directory are kept."""
        self.remove(*self.OUTPUTS)

    def remove_stale_temporaries(self, locked: bool = False) -> list[str]:
        """Remove temporaries left here by killed writers; returns their paths.

        Tagged ones (``.tmp-<pid>-<host>-*``) go when their process has ended; untagged ones
        (from earlier versions of the package) only when nobody else can be writing: the
        caller holds the lock (``locked``), or no live process holds it.
        """
        legacy = locked or self.lock_owner_alive() is False
        removed = []
        for sub in self._WRITTEN_DIRS:
            removed += remove_stale_temporaries(self.path(sub) if sub else self.root, legacy)
        return removed

    # ------------------------------------------------------------------ the lock

    def lock_owner(self) -> dict | None:
        """The contents of ``train.lock`` (``None`` when absent or unreadable)."""
        try:
            with open(self.path(self.LOCK), encoding="utf-8") as f:
                owner = json.load(f)
        except (OSError, ValueError):
            return None
        return owner if isinstance(owner, dict) else None

    def lock_owner_alive(self) -> bool | None:
        """``False`` when nobody holds the lock (no lock file, or its process ended on this
        host), ``True`` when its process runs here, ``None`` when it cannot be told (another
        host, an unreadable lock file)."""
        if not os.path.exists(self.path(self.LOCK)):
            return False
        owner = self.lock_owner()
        if owner is None or owner.get("host") != socket.gethostname():
            return None
        return pid_alive(int(owner.get("pid", -1)))

    @contextlib.contextmanager
    def lock(self):
        """Hold the run directory's lock, ``train.lock``, for the duration of the block.

        The lock file records this process (pid, host, start time, command) and is held with
        ``flock`` (released by the kernel if the process dies). A lock held by a live process
        raises :class:`RunLockedError` naming it; a lock file left by a process that ended on
        this host (killed) is taken over with a message on stderr; one from another host
        whose process cannot be checked is refused (delete it if that process is gone).
        Creates the directory.
        """
        self.check_trainable()
        os.makedirs(self.root, exist_ok=True)
        fd = self._acquire()
        try:
            yield self
        finally:
            with contextlib.suppress(OSError):
                os.remove(self.path(self.LOCK))
            os.close(fd)

    def _locked_error(self, owner, reason):
        who = (f"pid {owner.get('pid')} on {owner.get('host')} since {owner.get('started')}"
               if owner else "another process")
        return RunLockedError(f"{self.root!r} is locked by {who} ({self.path(self.LOCK)}): "
                              f"{reason}")

    def _acquire(self) -> int:
        import fcntl

        path = self.path(self.LOCK)
        for _ in range(10):
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                held = False
            except BlockingIOError:
                held = True
            except OSError as e:  # a filesystem without flock: the pid decides
                if e.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                    os.close(fd)
                    raise
                held = self.lock_owner_alive() is not False and self.lock_owner() is not None
            if held:
                os.close(fd)
                raise self._locked_error(self.lock_owner(), "a `train` is running there; wait "
                                         "for it to finish or train into another --out")
            try:  # the file we locked must still be the lock file (not removed meanwhile)
                same = os.fstat(fd).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                continue
            previous = self.lock_owner()
            if previous is not None:
                if previous.get("host") != socket.gethostname():
                    os.close(fd)
                    raise self._locked_error(previous, "its process runs on another host and "
                                             "cannot be checked from here; if it has ended, "
                                             "delete the lock file")
                print(f"{path}: taking over a stale lock of pid {previous.get('pid')} (no "
                      "longer running; it was killed or crashed)", file=sys.stderr, flush=True)
            owner = {"pid": os.getpid(), "host": socket.gethostname(),
                     "started": datetime.datetime.now().isoformat(timespec="seconds"),
                     "command": " ".join(sys.argv)}
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(owner) + "\n").encode(), 0)
            os.fsync(fd)
            return fd
        raise self._locked_error(None, "the lock file keeps changing; is another `train` "
                                 "starting there?")
