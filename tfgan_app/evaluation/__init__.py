"""Evaluation of generative models: FID, KID, Inception/classifier score, precision/recall,
density/coverage, Parzen window, mode and class coverage, sliced Wasserstein distance; PSNR,
SSIM, L1 and classifier accuracy of image-to-image translation.

Layout:

* :mod:`.metrics` -- metrics from activations (FID/KID/IS in float64; PRDC).
* :mod:`.swd` -- the sliced Wasserstein distance of images.
* :mod:`.registry` -- the metrics by name: what each computes and its protocol text
  (which names a kind of output allows, and its defaults, are :mod:`tfgan_app.kinds`').
* :mod:`.extractors` -- images -> features/logits: any keras.Model, InceptionV3 from local
  weights; :func:`as_sampler` (a generator samples through :mod:`tfgan_app.sampling`).
* :mod:`.classifiers` -- the offline classifiers trained on the dataset at hand (cached on
  disk), the default extractor.
* :mod:`.datasets` -- real-image sources (digits, MNIST IDX; pluggable).
* :mod:`.parzen` -- Parzen-window log-likelihood (Goodfellow et al. 2014 protocol).
* :mod:`.coverage` -- VEEGAN mode coverage, class coverage.
* :mod:`.evaluator` -- :class:`Evaluator` (an :class:`ImageEvaluator`, a
  :class:`PointEvaluator` or a registered one, by :func:`tfgan_app.kinds.kind_of`).
* :mod:`.translation` -- :class:`TranslationEvaluator`: image-to-image runs on held-out pairs
  (PSNR, SSIM, L1, the offline classifier's accuracy) beside the input's own baseline;
  :func:`translation_report` (a run's ``report.json``).
* :mod:`.cyclegan` -- unpaired translation: :func:`evaluate_cyclegan` (translation against a
  known mapping beside identity and histogram-matching baselines, cycle PSNR, label
  preservation) and :func:`cyclegan_report` (a CycleGAN run's ``report.json``).
* :mod:`.objective` -- the tuning objectives: one metric of a run, scored as a search trial
  is scored (:func:`~tfgan_app.evaluation.objective.evaluate_objective`);
* :mod:`.report` -- :func:`evaluate_run` (a run directory -> its ``eval.json``),
  :func:`format_table`.
* :mod:`.callback` -- :class:`EvaluationCallback` (``val_fid``, ``val_kid``, ... in the logs).
"""

from tfgan_app.evaluation.callback import EvaluationCallback  # noqa: F401
from tfgan_app.evaluation.classifiers import (  # noqa: F401
    classifier_extractor,
    classifier_info,
    classify,
    dataset_classifier,
    default_cache_dir,
    digits_classifier,
    mnist_classifier,
    train_classifier,
)
from tfgan_app.evaluation.coverage import (  # noqa: F401
    CONFIDENT,
    EXACT_HIGH_QUALITY_2D,
    VEEGAN_NUM_SAMPLES,
    class_coverage,
    confident_rate,
    mode_coverage,
    toy_modes,
)
from tfgan_app.evaluation.datasets import (  # noqa: F401
    RealImages,
    load_digits_images,
    load_mnist_idx,
    real_images,
    register_real_images,
)
from tfgan_app.evaluation.evaluator import (  # noqa: F401
    DEFAULT_IMAGE_METRICS,
    DEFAULT_POINT_METRICS,
    IMAGE_METRICS,
    POINT_METRICS,
    Evaluator,
    ImageEvaluator,
    PointEvaluator,
    default_metrics,
    kind_of_reference,
    sample_toy_points,
)
from tfgan_app.evaluation.extractors import (  # noqa: F401
    Activations,
    FeatureExtractor,
    as_sampler,
    check_images,
    inception_extractor,
    keras_extractor,
)
from tfgan_app.evaluation.metrics import (  # noqa: F401
    classifier_score,
    density_coverage,
    frechet_distance,
    kernel_distance,
    prdc,
    precision_recall,
)
from tfgan_app.evaluation.parzen import (  # noqa: F401
    PARZEN_SIGMAS,
    images_to_parzen_space,
    parzen_evaluate,
    parzen_log_likelihood,
)
from tfgan_app.evaluation.swd import sliced_wasserstein_distance  # noqa: F401
from tfgan_app.evaluation.registry import Metric, Sample, register_metric  # noqa: F401
from tfgan_app.evaluation.report import evaluate_run, format_table  # noqa: F401
from tfgan_app.evaluation.cyclegan import cyclegan_report, evaluate_cyclegan  # noqa: F401
from tfgan_app.evaluation.translation import (  # noqa: F401
    TranslationEvaluator,
    translation_report,
)
