"""Pictures of samples, in one place: uint8 conversion, image grids, PNG files (written and
read), scatter plots.

Used by the training callbacks, ``tfgan-app sample`` (from a run or from an export) and the
export module (:func:`scatter_image` draws points with Pillow alone, for processes without
matplotlib). Every file is written atomically (temporary file beside it, then rename), so
a reader never sees a half-written PNG. Figures use matplotlib's object API (``Figure`` with
its own Agg canvas), never ``pyplot``: importing tfgan_app leaves the process's matplotlib
backend alone, and training threads never touch pyplot's global figure list.
"""

from __future__ import annotations

import numpy as np

from tfgan_app.utils import atomic_path


def to_uint8(images) -> np.ndarray:
    """``float [-1, 1]`` images to ``uint8 [0, 255]`` (clipped, rounded)."""
    images = np.asarray(images, np.float32)
    return np.clip(np.round((images + 1.0) * 127.5), 0, 255).astype(np.uint8)


def tile(images: np.ndarray, rows: int | None = None, cols: int | None = None, pad: int = 1,
         fill: int = 255) -> np.ndarray:
    """Tile ``uint8 [N, H, W, C]`` into one ``uint8 [rows*(H+pad)+pad, cols*(W+pad)+pad, C]``
    image, row-major, with ``pad`` pixels of ``fill`` between and around the tiles.

    ``rows`` and ``cols`` default to a square-ish layout (``ceil(sqrt(N))`` of one of them).
    """
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"images must be [N, H, W, C], got shape {images.shape}")
    n, h, w, c = images.shape
    if rows is None and cols is None:
        rows = int(np.ceil(np.sqrt(n)))
    if cols is None:
        cols = int(np.ceil(n / rows))
    elif rows is None:
        rows = int(np.ceil(n / cols))
    grid = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, c), fill, np.uint8)
    for i in range(n):
        r, col = divmod(i, cols)
        y, x = pad + r * (h + pad), pad + col * (w + pad)
        grid[y:y + h, x:x + w] = images[i]
    return grid


def image_grid(images, rows: int | None = None) -> np.ndarray:
    """Tile ``images [N, H, W, C]`` in ``[-1, 1]`` into one ``uint8 [rows*H, cols*W, C]`` image
    with a 1-pixel white border (``rows`` default ``ceil(sqrt(N))``)."""
    images = to_uint8(images)
    if images.ndim != 4:
        raise ValueError(f"images must be [N, H, W, C], got shape {images.shape}")
    return tile(images, rows=rows)


def save_png(image: np.ndarray, path: str, scale: int = 1) -> str:
    """Write a ``uint8 [H, W, C]`` (C = 1 or 3, or 2-D) image to ``path`` as PNG, atomically.

    ``scale > 1`` enlarges it with nearest-neighbour resampling. Returns ``path``.
    """
    from PIL import Image

    image = np.asarray(image)
    img = Image.fromarray(image[..., 0] if image.ndim == 3 and image.shape[-1] == 1 else image)
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    with atomic_path(path, suffix=".png") as tmp:
        img.save(tmp, format="PNG")
    return path


_GRAY_MODES = ("1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "F")


def read_image(path: str, channels: int) -> tuple[np.ndarray, int]:
    """A PNG/JPEG file as ``uint8 [H, W, channels]`` (``channels`` 1: grayscale, 3: RGB;
    transparency dropped; EXIF orientation applied), and the channel count the file itself
    had (1 or 3).

    Raises:
      ValueError: the file is not a readable image, naming it.
    """
    from PIL import Image, ImageOps

    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    try:
        with Image.open(path) as im:
            im.load()
            im = ImageOps.exif_transpose(im)  # a photo as its camera meant it to be seen
            own = 1 if im.mode in _GRAY_MODES else 3
            if im.mode.startswith("I") or im.mode == "F":  # 16-bit/float grayscale to 8 bits
                a = np.asarray(im, np.float64) / (257.0 if im.mode.startswith("I;16") else 1.0)
                im = Image.fromarray(np.clip(np.round(a), 0, 255).astype(np.uint8))
            x = np.asarray(im.convert("L" if channels == 1 else "RGB"), np.uint8)
    except Exception as e:  # noqa: BLE001 -- PIL raises many types for broken files
        raise ValueError(f"{path}: could not be read as an image (expected PNG or JPEG): "
                         f"{type(e).__name__}: {e}") from None
    return (x[..., None] if x.ndim == 2 else x), own


def scatter_image(points, size: int = 512, radius: int = 2) -> np.ndarray:
    """Draw 2-D points ``float [N, 2]`` as a ``uint8 [size, size, 3]`` RGB scatter plot, with
    Pillow alone (no matplotlib): white background, grey axes through 0, blue dots of
    ``radius`` pixels; the view fits the points' bounding box (equal scale on both axes)."""
    from PIL import Image, ImageDraw

    pts = np.asarray(points, np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2 or not len(pts):
        raise ValueError(f"points must be [N, 2] with N >= 1, got shape {pts.shape}")
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    span = float(max(hi[0] - lo[0], hi[1] - lo[1], 1e-6))
    center = (lo + hi) / 2
    margin = 0.06 * size

    def to_px(p):
        q = (p - center) / span * (size - 2 * margin) + size / 2
        return float(q[0]), float(size - q[1])

    img = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(img)
    ox, oy = to_px(np.zeros(2))
    draw.line([(0, oy), (size, oy)], fill=(200, 200, 200))
    draw.line([(ox, 0), (ox, size)], fill=(200, 200, 200))
    for p in pts:
        x, y = to_px(p)
        draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=(31, 119, 180))
    return np.asarray(img)


def save_figure(fig, path: str) -> None:
    """Save a matplotlib ``Figure`` to the PNG ``path`` atomically."""
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=100, bbox_inches="tight")


def plot_scatter(real, generated, path: str, title: str = "real vs generated",
                 modes=None) -> None:
    """Scatter real and generated 2-D points ``[N, 2]`` (and mode centres) into ``path``."""
    from matplotlib.figure import Figure

    real = np.zeros((0, 2)) if real is None else np.asarray(real)
    generated = np.asarray(generated)
    fig = Figure(figsize=(5, 5))
    ax = fig.subplots()
    ax.scatter(real[:, 0], real[:, 1], s=4, alpha=0.4, label="real")
    ax.scatter(generated[:, 0], generated[:, 1], s=4, alpha=0.4, label="generated")
    if modes is not None:
        modes = np.asarray(modes)
        ax.scatter(modes[:, 0], modes[:, 1], marker="x", c="k", s=30, label="modes")
    ax.set_xlabel("x1")
    ax.set_ylabel("x2")
    ax.set_title(title)
    ax.legend(markerscale=3)
    save_figure(fig, path)
