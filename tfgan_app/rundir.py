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
      gan.keras            the whole GANModel with both optimizers' state
      report.json          what the job measured at the end (e.g. the Gaussian fit)
      eval.json            written by `tfgan-app evaluate`
      plots/losses.png     D and G losses and D's outputs per epoch
      plots/scatter.png    2-D points: real against generated
      samples/             images: a grid every plot_every epochs, interpolation.png
      logs/                TensorBoard events
      backup/              only while training: the last resumable state (see
                           tfgan_app.checkpoint); removed when the run finishes

Every file is written atomically (temporary file, then rename).
"""

from __future__ import annotations

import os

from tfgan_app.utils import atomic_path, read_json, write_json


class RunDirError(FileNotFoundError, ValueError):
    """A run directory, or one of its files, is missing or unreadable.

    A ``FileNotFoundError`` (a missing file) and a ``ValueError`` (bad input), so callers that
    catch either keep working; the message names the file and what was expected.
    """


class RunDir:
    """A run directory written by :func:`tfgan_app.train.train`.

    Args:
      path: the directory. Nothing is read until asked for.
    """

    CONFIG = "config.json"
    HISTORY = "history.json"
    REPORT = "report.json"
    EVAL = "eval.json"
    GENERATOR = "generator.keras"
    EMA_GENERATOR = "ema_generator.keras"
    GAN = "gan.keras"
    BACKUP = "backup"
    LOGS = "logs"
    SAMPLES = "samples"
    LOSSES_PNG = os.path.join("plots", "losses.png")
    SCATTER_PNG = os.path.join("plots", "scatter.png")
    INTERPOLATION_PNG = os.path.join("samples", "interpolation.png")
    SAMPLE_PNG = os.path.join("samples", "sample.png")

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

    def sampling_generator_path(self, use_ema: bool = True) -> str:
        """The generator that samples: ``ema_generator.keras`` when the run kept an EMA copy
        and ``use_ema`` (what ``GANModel.generate`` and the export use), else
        ``generator.keras``."""
        if use_ema and os.path.isfile(self.path(self.EMA_GENERATOR)):
            return self.path(self.EMA_GENERATOR)
        return self._require(self.GENERATOR, "has the run finished training? (expected "
                             "config.json and generator.keras written by `tfgan-app train`)")

    @staticmethod
    def _load_keras(path: str, compile: bool = False):
        import keras

        import tfgan_app.builders  # noqa: F401  (registers the package's custom layers)
        import tfgan_app.model  # noqa: F401  (registers GANModel)

        try:
            return keras.saving.load_model(path, compile=compile)
        except Exception as e:  # noqa: BLE001 -- re-raised as one clear error
            raise RunDirError(f"{path!r} could not be loaded (truncated or corrupt? it was "
                              f"written by `tfgan-app train`): {type(e).__name__}: "
                              f"{str(e).splitlines()[0] if str(e) else ''}") from e

    def load_generator(self, use_ema: bool = True):
        """The sampling generator (see :meth:`sampling_generator_path`) as a ``keras.Model``."""
        self.config  # noqa: B018 -- a clear error for a directory that is not a run
        return self._load_keras(self.sampling_generator_path(use_ema))

    def sampler(self, use_ema: bool = True):
        """A :class:`tfgan_app.sampling.Sampler` over the sampling generator: draws exactly
        what ``GANModel.generate`` would for the same seed."""
        from tfgan_app.sampling import Sampler

        return Sampler(self.load_generator(use_ema), self.latent_dim, self.num_classes)

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
        """``generator.keras``, ``ema_generator.keras`` (when EMA is on) and ``gan.keras``."""
        models = [(self.GENERATOR, gan.generator), (self.GAN, gan)]
        if getattr(gan, "ema_generator", None) is not None:
            models.insert(1, (self.EMA_GENERATOR, gan.ema_generator))
        for name, model in models:
            with atomic_path(self.path(name), suffix=".keras") as tmp:
                model.save(tmp)

    def write_report(self, report: dict) -> None:
        write_json(self.path(self.REPORT), report)

    def write_eval(self, result: dict) -> None:
        write_json(self.path(self.EVAL), result, allow_nan=False)
