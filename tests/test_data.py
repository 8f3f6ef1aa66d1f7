"""tfgan_app.data: every source's shapes, dtypes, value ranges, batching, shuffling and errors."""

import gzip
import os
import struct

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tfgan_app import data as D

MNIST_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "mnist")
MNIST_DIR = os.environ.get("TFGAN_MNIST_DIR", os.path.abspath(MNIST_DIR))
if not os.path.isdir(MNIST_DIR) and os.path.isdir("/work/shared/data/mnist"):
    MNIST_DIR = "/work/shared/data/mnist"
MNIST_IMAGES = os.path.join(MNIST_DIR, "t10k-images-idx3-ubyte.gz")
MNIST_LABELS = os.path.join(MNIST_DIR, "t10k-labels-idx1-ubyte.gz")


def batches(ds):
    return list(ds.as_numpy_iterator())


# ---------------------------------------------------------------- from_arrays


def test_arrays_uint8_scaled_to_unit_range_and_static_batches():
    x = np.zeros((10, 6, 4), np.uint8)
    x[0] = 255
    x[1, 0, 0] = 128
    ds = D.from_arrays(x, batch_size=4, shuffle=False)
    assert ds.element_spec.shape == (4, 6, 4, 1) and ds.element_spec.dtype == tf.float32
    got = batches(ds)
    assert len(got) == 2 == int(ds.cardinality())  # 10 // 4: remainder dropped
    assert np.all(got[0][0] == 1.0) and np.all(got[0][2] == -1.0)
    assert got[0][1, 0, 0, 0] == pytest.approx(128 / 127.5 - 1, abs=1e-6)
    info = D.dataset_info(ds)
    assert info["image_shape"] == [6, 4, 1] and info["num_examples"] == 10
    assert info["steps_per_epoch"] == 2 and info["value_range"] == [-1.0, 1.0]


@pytest.mark.parametrize("lo,hi", [(0.0, 1.0), (-1.0, 1.0)])
def test_arrays_float_ranges(lo, hi):
    x = np.full((4, 4, 4, 3), lo, np.float32)
    x[1] = hi
    x[2] = (lo + hi) / 2
    got = batches(D.from_arrays(x, batch_size=4, shuffle=False))[0]
    np.testing.assert_allclose(got[[0, 1, 2], 0, 0, 0], [-1.0, 1.0, 0.0], atol=1e-6)


def test_arrays_explicit_value_range_for_int_data():
    x = np.arange(17, dtype=np.int64).reshape(17, 1, 1) * np.ones((1, 4, 4), np.int64)
    got = batches(D.from_arrays(x, value_range=(0, 16), batch_size=17, shuffle=False))[0]
    np.testing.assert_allclose(got[:, 0, 0, 0], np.arange(17) / 8 - 1, atol=1e-6)
    with pytest.raises(ValueError, match="value_range"):
        D.from_arrays(x, batch_size=4)  # int64: range cannot be guessed


def test_arrays_labels_stay_paired_with_images_under_shuffle():
    n = 64
    x = np.repeat(np.arange(n, dtype=np.uint8)[:, None, None], 16, axis=1).reshape(n, 4, 4)
    y = np.arange(n) % 7
    ds = D.from_arrays(x, y, batch_size=16, seed=3)
    assert ds.element_spec[1].dtype == tf.int32 and ds.element_spec[1].shape == (16,)
    for xb, yb in batches(ds):
        idx = np.round((xb[:, 0, 0, 0] + 1) * 127.5).astype(int)
        np.testing.assert_array_equal(idx % 7, yb)
    assert D.dataset_info(ds)["num_classes"] == 7


def test_shuffle_is_seeded_reshuffled_per_epoch_and_optional():
    x = np.arange(32, dtype=np.uint8).reshape(32, 1, 1) * np.ones((1, 4, 4), np.uint8)

    def order(ds):
        return np.concatenate([b[:, 0, 0, 0] for b in batches(ds)])

    a, b, c = (D.from_arrays(x, batch_size=8, seed=s) for s in (1, 1, 2))
    first = order(a)
    np.testing.assert_array_equal(first, order(b))
    assert not np.array_equal(first, order(c))
    assert not np.array_equal(first, order(a))  # second epoch of `a` differs
    assert sorted(first) == sorted(order(a))
    plain = order(D.from_arrays(x, batch_size=8, shuffle=False))
    assert np.all(np.diff(plain) > 0)


def test_arrays_resize():
    x = np.random.default_rng(0).integers(0, 256, (8, 10, 10, 3), dtype=np.uint8)
    ds = D.from_arrays(x, image_size=(8, 4), batch_size=8)
    assert ds.element_spec.shape == (8, 8, 4, 3)
    got = batches(ds)[0]
    assert got.min() >= -1 and got.max() <= 1


@pytest.mark.parametrize("x,kwargs,match", [
    (np.zeros((4, 8), np.uint8), {}, "rank"),
    (np.zeros((4, 2, 8, 8, 1), np.uint8), {}, "rank"),
    (np.zeros((4, 3, 8, 8), np.uint8), {}, "channels-first"),
    (np.array([["a"] * 4] * 4), {}, "numeric"),
    (np.full((4, 4, 4), 2.0, np.float32), {}, "value_range"),
    (np.full((4, 4, 4), np.nan, np.float32), {}, "NaN"),
    (np.zeros((0, 4, 4), np.uint8), {}, "empty"),
    (np.zeros((4, 4, 4), np.uint8), {"y": np.zeros(3, int)}, "lengths"),
    (np.zeros((4, 4, 4), np.uint8), {"y": np.zeros((4, 10))}, "shape"),
    (np.zeros((4, 4, 4), np.uint8), {"y": -np.ones(4, int)}, ">= 0"),
    (np.zeros((4, 4, 4), np.uint8), {"with_labels": True}, "no labels"),
    (np.zeros((4, 4, 4), np.uint8), {"batch_size": 5}, "fewer than batch_size"),
    (np.zeros((4, 4, 4), np.uint8), {"batch_size": 0}, "batch_size"),
    (np.full((4, 4, 4), 300, np.int32), {"value_range": (0, 255)}, "outside"),
])
def test_arrays_bad_input(x, kwargs, match):
    kwargs = {"batch_size": 2, **kwargs}
    with pytest.raises(ValueError, match=match):
        D.from_arrays(x, **kwargs)


def test_pipeline_options():
    ds = D.from_arrays(np.zeros((4, 4, 4), np.uint8), batch_size=2, deterministic=False)
    assert ds.options().deterministic is False
    opts = D.pipeline_options(True)
    assert opts.deterministic and opts.autotune.enabled
    assert opts.experimental_optimization.map_parallelization


# ---------------------------------------------------------------- digits


def test_digits_splits_fixed_stratified_disjoint():
    tr, te, al = (D.digits_split_indices(s) for s in ("train", "test", "all"))
    assert (len(tr), len(te), len(al)) == (1438, 359, 1797)
    assert not set(tr) & set(te) and sorted(set(tr) | set(te)) == list(al)
    np.testing.assert_array_equal(te, D.digits_split_indices("test"))  # deterministic
    x, y = D.load_digits_arrays("test")
    assert x.shape == (359, 8, 8, 1) and x.dtype == np.float32 and y.dtype == np.int32
    assert x.min() == -1.0 and x.max() == 1.0
    counts = np.bincount(y, minlength=10)
    _, y_all = D.load_digits_arrays("all")
    np.testing.assert_allclose(counts, 0.2 * np.bincount(y_all), atol=0.5)  # stratified
    with pytest.raises(ValueError, match="split"):
        D.load_digits_arrays("validation")


def test_digits_dataset():
    ds = D.digits("train", with_labels=True, batch_size=100)
    xs, ys = ds.element_spec
    assert xs.shape == (100, 8, 8, 1) and ys.dtype == tf.int32
    got = batches(ds)
    assert len(got) == 14
    allx = np.concatenate([b[0] for b in got])
    assert allx.min() >= -1 and allx.max() <= 1 and allx.dtype == np.float32
    info = D.dataset_info(ds)
    assert info["num_classes"] == 10 and info["num_examples"] == 1438 and info["split"] == "train"
    assert D.digits(batch_size=32, image_size=16).element_spec.shape == (32, 16, 16, 1)


# ---------------------------------------------------------------- TFDS (mocked)


def test_tfds_mock_mnist_with_labels_and_resize():
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=20):
        ds = D.from_tfds("mnist", with_labels=True, batch_size=8)
        xs, ys = ds.element_spec
        assert xs.shape == (8, 28, 28, 1) and xs.dtype == tf.float32 and ys.dtype == tf.int32
        got = batches(ds)
        assert len(got) == 2  # 20 // 8
        allx = np.concatenate([b[0] for b in got])
        assert allx.min() >= -1 and allx.max() <= 1 and allx.std() > 0.1
        assert all(0 <= b[1].min() and b[1].max() < 10 for b in got)
        info = D.dataset_info(ds)
        assert info["num_classes"] == 10 and info["num_examples"] == 20
        ds = D.from_tfds("cifar10", image_size=16, batch_size=4)
        assert ds.element_spec.shape == (4, 16, 16, 3)
        ds = D.from_tfds("celeb_a", image_size=32, center_crop=True, batch_size=4)
        assert ds.element_spec.shape == (4, 32, 32, 3)
        with pytest.raises(ValueError, match="ClassLabel"):
            D.from_tfds("celeb_a", image_size=32, with_labels=True, batch_size=4)


def test_tfds_unknown_name_suggests_close_names():
    with pytest.raises(ValueError, match="did you mean.*mnist"):
        D.from_tfds("mnsit")


# ---------------------------------------------------------------- image folders


def _png(path, shape, seed=0, mode=None):
    arr = np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)
    Image.fromarray(arr, mode=mode).save(path)
    return arr


def test_folder_unlabelled_exact_values(tmp_path):
    arrs = [_png(tmp_path / f"{i}.png", (6, 5, 3), seed=i) for i in range(6)]
    ds = D.from_directory(tmp_path, batch_size=6, shuffle=False)
    assert ds.element_spec.shape == (6, 6, 5, 3)
    got = batches(ds)[0]
    np.testing.assert_allclose(got, np.stack(arrs) / 127.5 - 1, atol=1e-6)
    assert D.dataset_info(ds)["num_classes"] is None


def test_folder_class_subfolders_any_size_resized(tmp_path):
    for c, name in enumerate(["b_dog", "a_cat"]):
        (tmp_path / name).mkdir()
        for i in range(3):
            _png(tmp_path / name / f"{i}.png", (10 + 3 * i + c, 7 + i, 3), seed=i)
    (tmp_path / "notes.txt").write_text("ignored")
    ds = D.from_directory(tmp_path, image_size=8, with_labels=True, batch_size=6, seed=0)
    xs, ys = ds.element_spec
    assert xs.shape == (6, 8, 8, 3) and ys.dtype == tf.int32
    x, y = batches(ds)[0]
    assert sorted(y.tolist()) == [0, 0, 0, 1, 1, 1]
    assert x.min() >= -1 and x.max() <= 1
    info = D.dataset_info(ds)
    assert info["class_names"] == ["a_cat", "b_dog"] and info["num_classes"] == 2
    with pytest.raises(ValueError, match="different sizes.*image_size"):
        D.from_directory(tmp_path, batch_size=2)


def test_folder_grayscale_inferred(tmp_path):
    for i in range(4):
        _png(tmp_path / f"{i}.png", (8, 8), seed=i)
    assert D.from_directory(tmp_path, batch_size=2).element_spec.shape == (2, 8, 8, 1)


def test_folder_bmp_and_jpeg_to_one_channel(tmp_path):
    gray = _png(tmp_path / "g.bmp", (8, 8), seed=1)  # TF has no 1-channel BMP decoder
    Image.fromarray(np.stack([gray] * 3, -1)).save(tmp_path / "rgb.bmp")
    _png(tmp_path / "c.jpg", (8, 8, 3), seed=2)
    ds = D.from_directory(tmp_path, channels=1, batch_size=3, shuffle=False)
    x = batches(ds)[0]
    assert x.shape == (3, 8, 8, 1)
    files = ["c.jpg", "g.bmp", "rgb.bmp"]  # sorted order
    for f in ("g.bmp", "rgb.bmp"):
        np.testing.assert_allclose(x[files.index(f), ..., 0], gray / 127.5 - 1, atol=1e-6)


def test_folder_corrupt_files_are_named(tmp_path):
    for i in range(4):
        _png(tmp_path / f"ok{i}.png", (8, 8, 3), seed=i)
    good = (tmp_path / "ok0.png").read_bytes()
    (tmp_path / "truncated.png").write_bytes(good[: len(good) // 2])
    (tmp_path / "garbage.jpg").write_bytes(b"this is not an image")
    with pytest.raises(ValueError) as err:
        D.from_directory(tmp_path, batch_size=2)
    msg = str(err.value)
    assert "2 unreadable" in msg and "truncated.png" in msg and "garbage.jpg" in msg
    assert "ok1.png" not in msg
    with pytest.raises(ValueError, match="truncated.png"):
        D.from_directory(tmp_path, batch_size=2, validate="quick")


def test_folder_errors(tmp_path):
    with pytest.raises(ValueError, match="not found"):
        D.from_directory(tmp_path / "missing")
    with pytest.raises(ValueError, match="empty"):
        D.from_directory(tmp_path)
    (tmp_path / "readme.txt").write_text("x")
    with pytest.raises(ValueError, match="no images"):
        D.from_directory(tmp_path)
    _png(tmp_path / "a.png", (8, 8, 3))
    _png(tmp_path / "b.png", (8, 8, 3))
    with pytest.raises(ValueError, match="class sub-folders"):
        D.from_directory(tmp_path, with_labels=True, batch_size=1)


# ---------------------------------------------------------------- IDX


def _write_idx(path, arr, code=0x08, compress=False, magic=None, extra=b""):
    arr = np.asarray(arr)
    head = magic if magic is not None else bytes([0, 0, code, arr.ndim])
    head += b"".join(struct.pack(">I", d) for d in arr.shape)
    body = head + arr.astype(arr.dtype.newbyteorder(">")).tobytes() + extra
    with (gzip.open if compress else open)(path, "wb") as f:
        f.write(body)
    return str(path)


@pytest.mark.skipif(not os.path.exists(MNIST_IMAGES), reason="shared MNIST IDX files absent")
def test_idx_real_mnist():
    x, y = D.load_idx_arrays(MNIST_IMAGES, MNIST_LABELS)
    assert x.shape == (10000, 28, 28) and x.dtype == np.uint8
    assert y.shape == (10000,) and set(np.unique(y)) == set(range(10))
    ds = D.from_idx(MNIST_IMAGES, MNIST_LABELS, batch_size=256)
    xs, ys = ds.element_spec
    assert xs.shape == (256, 28, 28, 1) and ys.shape == (256,)
    assert int(ds.cardinality()) == 39
    xb, yb = next(iter(ds))
    assert float(tf.reduce_min(xb)) == -1.0 and float(tf.reduce_max(xb)) == 1.0
    assert D.dataset_info(ds)["num_classes"] == 10


@pytest.mark.parametrize("compress", [False, True])
def test_idx_roundtrip_small(tmp_path, compress):
    imgs = np.random.default_rng(0).integers(0, 256, (6, 4, 5), dtype=np.uint8)
    labs = np.array([0, 1, 2, 0, 1, 2], np.uint8)
    ip = _write_idx(tmp_path / "i.idx", imgs, compress=compress)
    lp = _write_idx(tmp_path / "l.idx", labs, compress=compress)
    np.testing.assert_array_equal(D.read_idx(ip), imgs)
    x, y = batches(D.from_idx(ip, lp, batch_size=6, shuffle=False))[0]
    np.testing.assert_allclose(x[..., 0], imgs / 127.5 - 1, atol=1e-6)
    np.testing.assert_array_equal(y, labs)


def test_idx_malformed(tmp_path):
    imgs = np.zeros((4, 4, 4), np.uint8)
    bad_magic = _write_idx(tmp_path / "m.idx", imgs, magic=b"\x01\x02\x08\x03")
    with pytest.raises(ValueError, match="m.idx.*magic"):
        D.read_idx(bad_magic)
    short = _write_idx(tmp_path / "s.idx", imgs)
    with open(short, "r+b") as f:
        f.truncate(os.path.getsize(short) - 3)
    with pytest.raises(ValueError, match="s.idx.*bytes"):
        D.read_idx(short)
    long = _write_idx(tmp_path / "long.idx", imgs, extra=b"\0")
    with pytest.raises(ValueError, match="long.idx"):
        D.read_idx(long)
    gz = _write_idx(tmp_path / "g.idx.gz", imgs, compress=True)
    data = open(gz, "rb").read()
    open(gz, "wb").write(data[:-10])
    with pytest.raises(ValueError, match="g.idx.gz.*gzip"):
        D.read_idx(gz)
    ok = _write_idx(tmp_path / "ok.idx", imgs)
    labs = _write_idx(tmp_path / "l.idx", np.zeros(5, np.uint8))
    with pytest.raises(ValueError, match="4 images.*5 labels"):
        D.from_idx(ok, labs, batch_size=2)
    with pytest.raises(ValueError, match="3 dimensions"):
        D.from_idx(labs, batch_size=2)
    with pytest.raises(ValueError, match="labels_path"):
        D.from_idx(ok, with_labels=True, batch_size=2)
    with pytest.raises(ValueError, match="not found"):
        D.read_idx(tmp_path / "nope.idx")


# ---------------------------------------------------------------- toy and dispatcher


def test_from_toy():
    ds = D.from_toy("ring", batch_size=100, n=1000, seed=1)
    assert ds.element_spec.shape == (100, 2) and ds.element_spec.dtype == tf.float32
    info = D.dataset_info(ds)
    assert info["image_shape"] is None and info["sample_shape"] == [2]
    assert len(info["spec"]["modes"]) == 8 and info["spec"]["std"] == 0.01
    pts = np.concatenate(batches(ds))
    assert pts.shape == (1000, 2)
    np.testing.assert_allclose(np.linalg.norm(pts, axis=1), 1.0, atol=0.06)
    with pytest.raises(ValueError, match="no labels"):
        D.from_toy("ring", with_labels=True)
    with pytest.raises(ValueError, match="unknown toy"):
        D.from_toy("spiral")


def test_dataset_by_name(tmp_path):
    ds, info = D.dataset_by_name("digits:test", batch_size=50, image_size=None)
    assert ds.element_spec.shape == (50, 8, 8, 1) and info["num_examples"] == 359
    assert info["name"] == "digits:test" and ds.info is info
    ds, info = D.dataset_by_name("digits", batch_size=50, with_labels=True)
    assert info["split"] == "train" and ds.element_spec[1].shape == (50,)
    ds, info = D.dataset_by_name("grid", batch_size=64, with_labels=False)
    assert ds.element_spec.shape == (64, 2) and len(info["spec"]["modes"]) == 25
    for i in range(2):
        _png(tmp_path / f"{i}.png", (8, 8, 3), seed=i)
    ds, info = D.dataset_by_name(f"folder:{tmp_path}", batch_size=2)
    assert ds.element_spec.shape == (2, 8, 8, 3) and info["source"] == "folder"
    ip = _write_idx(tmp_path / "i.idx", np.zeros((4, 8, 8), np.uint8))
    lp = _write_idx(tmp_path / "l.idx", np.arange(4, dtype=np.uint8))
    ds, info = D.dataset_by_name(f"idx:{ip},{lp}", batch_size=2)
    assert ds.element_spec[0].shape == (2, 8, 8, 1) and info["num_classes"] == 4
    with pytest.raises(ValueError, match="valid forms.*digits.*folder:<path>"):
        D.dataset_by_name("no_such_dataset_xyz")


def test_dataset_by_name_tfds_mock():
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=8):
        for name in ("fashion_mnist", "tfds:fashion_mnist"):
            ds, info = D.dataset_by_name(name, batch_size=4)
            assert ds.element_spec.shape == (4, 28, 28, 1) and info["source"] == "tfds"
