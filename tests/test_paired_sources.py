"""Paired sources read from disk and TFDS (tfgan_app.data.paired_sources), joint crops and
flips (tfgan_app.data.paired.augment_pairs), their held-out pairs and their errors."""

import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tfgan_app import kinds
from tfgan_app.data import dataset_by_name
from tfgan_app.data import paired
from tfgan_app.data import paired_sources as PS


def _save(path, arr):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(np.asarray(arr, np.uint8).squeeze()).save(path)


def _unit(u8):
    return np.asarray(u8, np.float32) / 127.5 - 1.0


def _same(x, y):
    """Equal pixels (float32 scaling may differ in the last bit; a grey level is 0.0078)."""
    return np.shape(x) == np.shape(y) and np.allclose(x, y, atol=1e-5, rtol=0)


def _side_by_side(folder, n=10, h=8, w=8, seed=0):
    """``n`` PNGs ``A|B`` of random pixels; returns ``{name: (A, B)}`` in uint8."""
    rng = np.random.default_rng(seed)
    out = {}
    for i in range(n):
        a = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        b = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        _save(os.path.join(folder, f"{i:02d}.png"), np.concatenate([a, b], axis=1))
        out[f"{i:02d}"] = (a, b)
    return out


def _all(ds):
    got = list(ds.as_numpy_iterator())
    return np.concatenate([g[0] for g in got]), np.concatenate([g[1] for g in got])


def _find(pairs, source):
    """The name of the pair whose A equals ``source`` (float in [-1, 1])."""
    hits = [k for k, (a, _) in pairs.items() if _same(_unit(a), source)]
    assert len(hits) == 1
    return hits[0]


# ---------------------------------------------------------------- side-by-side A|B

def test_side_by_side_halves_direction_and_conventions(tmp_path):
    pairs = _side_by_side(tmp_path / "sbs", n=10)
    ds = PS.from_pair_folder(tmp_path / "sbs", batch_size=4, heldout_fraction=0.2, seed=3)
    s_spec, t_spec = ds.element_spec
    assert s_spec.shape == t_spec.shape == (4, 8, 8, 3) and s_spec.dtype == tf.float32
    info = ds.info
    assert info["paired"] and info["num_examples"] == 8 and info["layout"] == "side_by_side"
    assert info["source_shape"] == [8, 8, 3] and info["data_shape"] == [8, 8, 3]
    s, t = _all(ds)
    assert len(s) == 8  # 8 training pairs, batch 4, drop_remainder
    assert s.min() >= -1 and s.max() <= 1
    for i in range(len(s)):  # the left half is the source, the right half its target
        name = _find(pairs, s[i])
        assert _same(t[i], _unit(pairs[name][1]))
    # BtoA swaps the halves
    back = PS.from_pair_folder(tmp_path / "sbs", batch_size=4, direction="BtoA",
                               heldout_fraction=0.2, seed=3, shuffle=False)
    s2, t2 = next(back.as_numpy_iterator())
    name = min(_find(pairs, x) for x in s)  # unshuffled: the first training file
    assert _same(s2[0], _unit(pairs[name][1]))
    assert _same(t2[0], _unit(pairs[name][0]))


def test_seeded_shuffle_reshuffles_each_epoch(tmp_path):
    _side_by_side(tmp_path / "sbs", n=24)
    make = lambda seed: PS.from_pair_folder(tmp_path / "sbs", batch_size=4,  # noqa: E731
                                            heldout_fraction=0.0, seed=seed)
    a, b = make(5), make(5)
    e1, e2 = _all(a)[0], _all(a)[0]
    np.testing.assert_array_equal(e1, _all(b)[0])      # same seed: same order
    assert not np.array_equal(e1, e2)                 # a new order each epoch
    assert not np.array_equal(e1, _all(make(6))[0])   # another seed: another order
    np.testing.assert_array_equal(np.sort(e1.ravel()), np.sort(e2.ravel()))  # same pairs


# ---------------------------------------------------------------- A/ and B/ by name

def test_ab_folders_pair_by_name_across_extensions(tmp_path):
    rng = np.random.default_rng(1)
    for i in range(8):  # constant images: A is 8*i, B is 8*i + 100 (JPEG keeps a flat grey)
        _save(tmp_path / "ab" / "A" / f"x{i}.png", np.full((8, 8), 8 * i))
        ext = "jpg" if i % 2 else "png"
        _save(tmp_path / "ab" / "B" / f"x{i}.{ext}",
              np.full((16, 16, 3), 8 * i + 100) + rng.integers(0, 1, (16, 16, 3)))
    ds, info = dataset_by_name(f"pairs-folder:{tmp_path / 'ab'}", batch_size=4,
                               heldout_fraction=0.0, seed=2)
    assert info["layout"] == "ab" and info["name"].startswith("pairs-folder:")
    assert info["source_shape"] == [8, 8, 1] and info["data_shape"] == [16, 16, 3]
    s, t = _all(ds)
    a = np.round((s[:, 0, 0, 0] + 1) * 127.5)
    b = np.round((t[:, 0, 0, 0] + 1) * 127.5)
    np.testing.assert_allclose(b - a, 100, atol=2)  # each source met its own target
    assert sorted(a.tolist()) == [8.0 * i for i in range(8)]


def test_split_folders_give_the_heldout_pairs(tmp_path):
    for split, n in (("train", 8), ("test", 3)):
        for i in range(n):
            value = (10 if split == "train" else 200) + i
            _save(tmp_path / "p" / "A" / split / f"{i}.png", np.full((8, 8), value))
            _save(tmp_path / "p" / "B" / split / f"{i}.png", np.full((8, 8), value))
    ds = PS.from_pair_folder(tmp_path / "p", batch_size=4)
    assert ds.info["heldout"] == "the test/ folder" and ds.info["num_examples"] == 8
    assert _all(ds)[0].max() < _unit(100)
    hs, ht = paired.heldout_pairs(ds.info)
    assert hs.shape == (3, 8, 8, 1) and np.all(hs >= _unit(200))
    assert paired.heldout_pairs(ds.info, 2)[0].shape == (2, 8, 8, 1)
    assert kinds.kind_of(ds.info).name == "translation"
    assert kinds.kind_of("pairs-folder:/data/facades").name == "translation"
    assert kinds.kind_of("pairs-tfds:div2k").name == "translation"


def test_heldout_fraction_is_disjoint_from_training_and_center_cropped(tmp_path):
    pairs = _side_by_side(tmp_path / "sbs", n=20, h=12, w=12)
    ds = PS.from_pair_folder(tmp_path / "sbs", batch_size=2, heldout_fraction=0.25, seed=7,
                             crop=8)
    hs, ht = paired.heldout_pairs(ds.info)
    assert hs.shape == ht.shape == (5, 8, 8, 3)
    full = PS.from_pair_folder(tmp_path / "sbs", batch_size=1, heldout_fraction=0.25, seed=7,
                               shuffle=False)
    train_names = {_find(pairs, x) for x in _all(full)[0]}
    held_names = {k for k, (a, _) in pairs.items() for x in hs
                  if _same(_unit(a)[2:10, 2:10], x)}
    assert len(train_names) == 15 and len(held_names) == 5
    assert not train_names & held_names


# ---------------------------------------------------------------- joint crops and flips

def test_crop_and_flip_are_identical_on_both_sides(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(16):  # target = source: any difference after augmentation is a bug
        img = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
        _save(tmp_path / "same" / f"{i:02d}.png", np.concatenate([img, img], axis=1))
    ds = PS.from_pair_folder(tmp_path / "same", batch_size=8, crop=(8, 8), flip=True,
                             heldout_fraction=0.0, seed=1)
    assert ds.element_spec[0].shape == (8, 8, 8, 3)
    epochs = [_all(ds) for _ in range(2)]
    for s, t in epochs:
        np.testing.assert_array_equal(s, t)
    assert not np.array_equal(np.sort(epochs[0][0].ravel()), np.sort(epochs[1][0].ravel()))


def test_crop_and_flip_follow_the_size_factor_of_superres_pairs():
    rng = np.random.default_rng(0)
    lo = rng.uniform(-1, 1, (32, 8, 8, 1)).astype(np.float32)
    hi = np.repeat(np.repeat(lo, 2, axis=1), 2, axis=2)  # nearest x2: a pixel-exact relation
    ds = paired.from_pairs(lo, hi, batch_size=32, crop=8, flip=True, seed=4)
    assert ds.info["source_shape"] == [4, 4, 1] and ds.info["data_shape"] == [8, 8, 1]
    s, t = next(ds.as_numpy_iterator())
    np.testing.assert_array_equal(np.repeat(np.repeat(s, 2, axis=1), 2, axis=2), t)
    # crops come from many places and about half are mirrored
    placed = [next((oy, ox, m) for oy in range(5) for ox in range(5) for m in (0, 1)
                   if any(np.array_equal(x, (lo[j, oy:oy + 4, ox:ox + 4][:, ::-1] if m else
                                             lo[j, oy:oy + 4, ox:ox + 4])) for j in range(32)))
              for x in s]
    assert len({p[:2] for p in placed}) > 5 and 5 < sum(p[2] for p in placed) < 27
    with pytest.raises(ValueError, match="divisible by the target/source size factor 2"):
        paired.from_pairs(lo, hi, batch_size=8, crop=7)


# ---------------------------------------------------------------- TFDS

def test_tfds_pairs_with_mock_data():
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=12):
        ds, info = dataset_by_name("pairs-tfds:div2k", batch_size=4, image_size=16,
                                   source_size=4, seed=0)
        s, t = next(ds.as_numpy_iterator())
        assert s.shape == (4, 4, 4, 3) and t.shape == (4, 16, 16, 3) and s.dtype == np.float32
        assert s.min() >= -1 and t.max() <= 1 and t.std() > 0.1
        assert (info["source_key"], info["target_key"]) == ("lr", "hr")
        hs, ht = paired.heldout_pairs(info, 5)
        assert hs.shape == (5, 4, 4, 3) and ht.shape == (5, 16, 16, 3)
        ds = PS.from_tfds_pairs("cityscapes", source_key="segmentation_label",
                                target_key="image_left", image_size=16, batch_size=4)
        assert [e.shape for e in ds.element_spec] == [(4, 16, 16, 1), (4, 16, 16, 3)]
        with pytest.raises(ValueError, match="source_key must name one of its image features"):
            PS.from_tfds_pairs("cityscapes", image_size=16, batch_size=4)
        with pytest.raises(ValueError, match="variable image sizes"):
            PS.from_tfds_pairs("div2k", batch_size=4)


# ---------------------------------------------------------------- bad input

def test_errors_name_the_file_and_what_was_expected(tmp_path):
    for i in range(4):
        _save(tmp_path / "mis" / "A" / f"{i}.png", np.zeros((16, 16)))
        _save(tmp_path / "mis" / "B" / f"{i}.png", np.zeros((16 if i else 12, 16 if i else 12)))
    with pytest.raises(ValueError, match=r"source .*A/0\.png with target .*B/0\.png: source "
                                         r"size 16x16 and target size 12x12"):
        PS.from_pair_folder(tmp_path / "mis", batch_size=2)

    _side_by_side(tmp_path / "bad", n=4)
    with open(tmp_path / "bad" / "02.png", "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(ValueError, match=r"(?s)1 unreadable image file.*bad/02\.png: OSError"):
        PS.from_pair_folder(tmp_path / "bad", batch_size=2)

    for i in range(3):
        _save(tmp_path / "lone" / "A" / f"{i}.png", np.zeros((8, 8)))
        _save(tmp_path / "lone" / "B" / f"{i if i < 2 else 'other'}.png", np.zeros((8, 8)))
    with pytest.raises(ValueError, match=r"2 unpaired file\(s\): .*A/2\.png has no image of "
                                         r"the same name in .*B.*B/other\.png"):
        PS.from_pair_folder(tmp_path / "lone", batch_size=2)

    _save(tmp_path / "odd" / "x.png", np.zeros((8, 17, 3)))
    with pytest.raises(ValueError, match=r"odd/x\.png is 17x8 \(W x H\): a side-by-side A\|B "
                                         "image needs an even width"):
        PS.from_pair_folder(tmp_path / "odd", batch_size=1, heldout_fraction=0)

    os.makedirs(tmp_path / "empty")
    with pytest.raises(ValueError, match=r"no images .* found in .*empty \(empty\)"):
        PS.from_pair_folder(tmp_path / "empty")
    with pytest.raises(ValueError, match="pair folder not found"):
        dataset_by_name(f"pairs-folder:{tmp_path / 'nowhere'}")
    with pytest.raises(ValueError, match=r"pairs-folder: unknown option\(s\) \['task'\]"):
        dataset_by_name(f"pairs-folder:{tmp_path / 'lone'}", task={"name": "inpaint"})
    with pytest.raises(ValueError, match="has no class labels"):
        dataset_by_name(f"pairs-folder:{tmp_path / 'lone'}", with_labels=True)
    with pytest.raises(ValueError, match="direction must be one of"):
        PS.from_pair_folder(tmp_path / "sbs", direction="AB")
    with pytest.raises(ValueError, match=r"source size 16x16 and target size 12x12 \(H x W\)"):
        paired.from_pairs(np.zeros((4, 16, 16, 1)), np.zeros((4, 12, 12, 1)), batch_size=2)


@pytest.mark.slow
def test_folder_pairs_train_through_the_cli_settings(tmp_path):
    """``--set dataset=pairs-folder:...``: a translation run whose triptychs and report use
    the folder's test/ pairs."""
    from tfgan_app import train
    from tfgan_app.rundir import RunDir

    pairs = {}
    for split, n in (("train", 32), ("test", 4)):
        pairs[split] = _side_by_side(tmp_path / "facades" / split, n=n, h=16, w=16,
                                     seed=len(split))
    settings = train.resolve_settings(
        "digits-inpaint", overrides=[f"dataset=pairs-folder:{tmp_path / 'facades'}",
                                     'dataset_options={"flip": true}', "epochs=1",
                                     "batch_size=8", "generator.base_filters=8",
                                     "discriminator.base_filters=8"])
    train.train(settings, str(tmp_path / "run"), verbose=0)
    run = RunDir(tmp_path / "run")
    assert run.kind.name == "translation"
    assert run.report()["num_pairs"] == 4
    assert (tmp_path / "run" / "samples" / "epoch_0001.png").is_file()
