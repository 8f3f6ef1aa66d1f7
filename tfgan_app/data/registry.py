"""``dataset_by_name``: one string names any source (used by the command line and presets).

==============================  ===========================================================
name                            source
==============================  ===========================================================
``digits``, ``digits:<split>``  :func:`~tfgan_app.data.digits` (split ``train``/``test``/
                                ``all``; default ``train``)
``gaussian``, ``ring``,         :func:`~tfgan_app.data.from_toy`
``grid``
``tfds:<name>``                 :func:`~tfgan_app.data.from_tfds` (``<name>`` may carry a
                                config/version, e.g. ``tfds:mnist:3.*.*``)
``<name>`` (a TFDS builder)     same as ``tfds:<name>``, e.g. ``mnist``, ``cifar10``
``folder:<path>``               :func:`~tfgan_app.data.from_directory`
``idx:<images>[,<labels>]``     :func:`~tfgan_app.data.from_idx`
``pairs:<images>[:<split>]``    (source, target) pairs derived by ``task`` (a keyword:
                                ``{"name": "inpaint", ...}``) from offline images ``digits``
                                or ``photos`` (:func:`tfgan_app.data.paired.derived_pairs`)
``pairs-folder:<path>``         (source, target) pairs from a folder: ``A/`` and ``B/``
                                paired by file name, or side-by-side A|B images
                                (:func:`tfgan_app.data.paired_sources.from_pair_folder`;
                                ``direction``, ``crop``, ``flip``, ``heldout_fraction``...)
``pairs-tfds:<name>``           (source, target) pairs from two image features of a TFDS
                                dataset (:func:`~tfgan_app.data.paired_sources.from_tfds_pairs`;
                                ``source_key``, ``target_key``, ``heldout_split``...)
``unpaired:digits[:<split>]``   unpaired ``(a, b)`` batches for CycleGAN: the offline task
                                with a known mapping (:func:`tfgan_app.data.unpaired.offline`;
                                ``image_size``; split ``train``, or ``test``: the held-out
                                digits and their transforms, shuffled independently)
``unpaired-folder:<path>``      unpaired batches from ``<path>/trainA`` and ``<path>/trainB``
                                (held out: ``testA``/``testB``;
                                :func:`~tfgan_app.data.unpaired.from_folders`)
``unpaired-tfds:<name>``        unpaired batches from TFDS ``cycle_gan/<name>``
                                (:func:`~tfgan_app.data.unpaired.from_tfds`)
==============================  ===========================================================
"""

from __future__ import annotations

import inspect

from tfgan_app.data.digits import DIGITS_SPLITS, digits
from tfgan_app.data.directory import from_directory
from tfgan_app.data.idx import from_idx
from tfgan_app.data.tfds_source import check_tfds_name, from_tfds
from tfgan_app.data.toy import TOY_DISTRIBUTIONS
from tfgan_app.data.toy_data import from_toy

DATASET_CHOICES = ("digits", "digits:<split>", "gaussian", "ring", "grid", "tfds:<name>",
                   "<tfds name>", "folder:<path>", "idx:<images>[,<labels>]",
                   "pairs:<digits|photos>[:<split>]", "pairs-folder:<path>",
                   "pairs-tfds:<name>", "unpaired:digits[:<split>]", "unpaired-folder:<path>",
                   "unpaired-tfds:<name>")
UNPAIRED_KINDS = ("unpaired", "unpaired-folder", "unpaired-tfds")


def dataset_by_name(name: str, **kwargs):
    """Build a dataset from a name string (table in the module docs).

    ``kwargs`` go to the source function (``batch_size``, ``seed``, ``with_labels``,
    ``image_size``, ``shuffle``, ...); keyword arguments whose value is ``None`` are dropped
    first, so a caller can pass the same optional settings to every source.

    Returns:
      ``(dataset, info)``: the ``tf.data.Dataset`` (``dataset.element_spec`` gives the batch
      shape, static because remainders are dropped) and its JSON-ready info dict (also at
      ``dataset.info``; keys in :func:`tfgan_app.data.dataset_info`), whose ``"name"`` is
      the string given here.

    Raises:
      ValueError: unknown name (valid forms listed; close TFDS names suggested), or any
        error of the source.
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"dataset name must be a non-empty string; valid forms: "
                         f"{', '.join(DATASET_CHOICES)}")
    name = name.strip()
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    kind, _, rest = name.partition(":")
    if kind == "digits":
        split = rest or kwargs.pop("split", "train")
        if split not in DIGITS_SPLITS:
            raise ValueError(f"unknown digits split {split!r}; expected one of {DIGITS_SPLITS}")
        ds = digits(split, **kwargs)
    elif name in TOY_DISTRIBUTIONS:
        ds = from_toy(name, **kwargs)
    elif kind == "tfds":
        if not rest:
            raise ValueError("tfds: needs a dataset name, e.g. tfds:mnist")
        ds = from_tfds(rest, **kwargs)
    elif kind == "folder":
        if not rest:
            raise ValueError("folder: needs a path, e.g. folder:/data/faces")
        ds = from_directory(rest, **kwargs)
    elif kind == "pairs":
        from tfgan_app.data.paired import derived_pairs

        images, _, split = rest.partition(":")
        if "task" not in kwargs:
            raise ValueError(f"{name!r} needs a task, e.g. dataset_options "
                             '{"task": {"name": "inpaint"}}')
        kwargs.pop("with_labels", None)
        ds, _ = derived_pairs(images, kwargs.pop("task"), split or kwargs.pop("split", "train"),
                              **kwargs)
    elif kind in ("pairs-folder", "pairs-tfds"):
        from tfgan_app.data import paired_sources

        if not rest:
            example = "/data/facades" if kind == "pairs-folder" else "div2k"
            raise ValueError(f"{kind}: needs a {'path' if kind == 'pairs-folder' else 'name'}"
                             f", e.g. {kind}:{example}")
        if kwargs.pop("with_labels", None):
            raise ValueError(f"{name!r} yields (source, target) pairs: it has no class labels")
        read = (paired_sources.from_pair_folder if kind == "pairs-folder"
                else paired_sources.from_tfds_pairs)
        valid = [p for p in inspect.signature(read).parameters if p not in ("path", "name")]
        _check_options(kind, kwargs, valid)
        ds = read(rest, **kwargs)
    elif kind in UNPAIRED_KINDS:
        ds = _unpaired(kind, rest, name, kwargs)
    elif kind == "idx":
        parts = [p for p in rest.split(",") if p]
        if len(parts) not in (1, 2):
            raise ValueError(f"idx: expects idx:<images>[,<labels>], got {name!r}")
        ds = from_idx(*parts, **kwargs)
    else:
        try:
            check_tfds_name(name)
        except ValueError as e:
            raise ValueError(f"unknown dataset {name!r}; valid forms: "
                             f"{', '.join(DATASET_CHOICES)}. As a TFDS name: {e}") from None
        ds = from_tfds(name, **kwargs)
    ds.info["name"] = name
    return ds, ds.info


def _unpaired(kind: str, rest: str, name: str, kwargs: dict):
    """The ``unpaired*`` sources (:mod:`tfgan_app.data.unpaired`); options checked by name."""
    from tfgan_app.data import unpaired

    if not rest:
        example = {"unpaired": "digits", "unpaired-folder": "/data/horse2zebra",
                   "unpaired-tfds": "horse2zebra"}[kind]
        raise ValueError(f"{kind}: needs a {'path' if kind == 'unpaired-folder' else 'name'}, "
                         f"e.g. {kind}:{example}")
    if kwargs.pop("with_labels", None):
        raise ValueError(f"{name!r} yields unpaired (a, b) images: it has no class labels "
                         "(num_classes must be None)")
    if kind == "unpaired":
        task, _, split = rest.partition(":")
        if task not in unpaired.OFFLINE:
            raise ValueError(f"unknown offline unpaired task {task!r} in {name!r}; valid: "
                             f"{', '.join('unpaired:' + t for t in unpaired.OFFLINE)}")
        split = split or kwargs.pop("split", "train")
        if split not in unpaired.SPLITS:
            raise ValueError(f"unknown split {split!r} in {name!r}; expected one of "
                             f"{unpaired.SPLITS}")
        read = unpaired.offline if split == "train" else _offline_test
        rest = task
    else:
        read = unpaired.from_folders if kind == "unpaired-folder" else unpaired.from_tfds
    params = inspect.signature(read).parameters
    valid = [p for p, v in params.items() if p not in ("root", "name")
             and v.kind is not v.VAR_KEYWORD]
    if any(v.kind is v.VAR_KEYWORD for v in params.values()):  # passed on to one reader
        from tfgan_app.data import tfds_source

        inner = from_directory if kind == "unpaired-folder" else tfds_source.from_tfds
        valid += [p for p in inspect.signature(inner).parameters
                  if p not in valid and p not in ("path", "name", "split", "with_labels")]
    _check_options(kind, kwargs, valid)
    return read(rest, **kwargs)


def _check_options(kind: str, kwargs: dict, valid: list) -> None:
    """Refuse ``dataset_options`` a reader of ``kind`` does not take, naming the valid ones."""
    unknown = sorted(set(kwargs) - set(valid))
    if unknown:
        raise ValueError(f"{kind}: unknown option(s) {unknown} (in dataset_options?); valid: "
                         f"{', '.join(valid)}")


def _offline_test(task: str, *, image_size: int = 32, batch_size: int = 16,
                  shuffle: bool = True, seed: int = 0, deterministic: bool = True):
    """``unpaired:<task>:test``: the held-out images and their transforms as two domains,
    shuffled independently (for evaluating; :func:`tfgan_app.data.unpaired.heldout`)."""
    from tfgan_app.data import unpaired

    a, b, _ = unpaired.heldout(task, image_size=image_size)
    ds = unpaired.from_arrays(a, b, batch_size=batch_size, shuffle=shuffle, seed=seed,
                              deterministic=deterministic, name=f"unpaired-{task}:test",
                              task=task)
    ds.info["image_size"] = int(image_size)
    return ds
