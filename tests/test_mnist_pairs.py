"""mnist_pairs: the outline -> filled digit op, building the pair folder, and training on it.

TFDS never downloads here: `tfds.testing.mock_data` stands in for MNIST with random digits.
"""

import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image

from p2p_tf import config as config_lib
from p2p_tf import workdirs
from p2p_tf.datasets import layouts, mnist_pairs, sources
from p2p_tf.errors import UserError
from p2p_tf.training import pix2pix


def ring_digit():
    """A 28x28 'zero': a ring 4 px wide, uint8 [28, 28, 1]."""
    y, x = np.mgrid[:28, :28]
    ring = np.abs(np.hypot(y - 14, x - 14) - 7) < 2
    return (ring * 255).astype(np.uint8)[..., None]


def mock_digits(count):
    with tfds.testing.mock_data(num_examples=count):
        return [example['image'] for example in tfds.load('mnist', split='train')]


def near_background(mask, distance):
    """Pixels with a background pixel (the outside included) within `distance` (chessboard)."""
    padded = np.pad(~mask, distance, constant_values=True)
    height, width = mask.shape
    return np.any([padded[dy:dy + height, dx:dx + width]
                   for dy in range(2 * distance + 1) for dx in range(2 * distance + 1)], axis=0)


def test_digit_pair_is_the_same_eagerly_and_inside_dataset_map():
    digits = [tf.constant(ring_digit())] + mock_digits(3)
    mapped = tf.data.Dataset.from_tensor_slices(tf.stack(digits)).map(mnist_pairs.digit_pair)
    for digit, (mapped_outline, mapped_filled) in zip(digits, mapped):
        outline, filled = mnist_pairs.digit_pair(digit)
        for image in (outline, filled):
            assert image.shape == (128, 128, 3) and image.dtype == tf.uint8
        np.testing.assert_array_equal(outline, mapped_outline)
        np.testing.assert_array_equal(filled, mapped_filled)


@pytest.mark.parametrize('digit', ['ring', 'mock'])
def test_the_outline_is_the_border_of_the_digit_and_the_target_fills_it(digit):
    image = ring_digit() if digit == 'ring' else mock_digits(1)[0]
    outline, filled = (np.asarray(x) for x in mnist_pairs.digit_pair(image))
    mask = np.asarray(mnist_pairs.digit_mask(image))[..., 0] > 0
    assert set(np.unique(outline)) == {0, 255}
    assert (outline == outline[..., :1]).all()  # White on black.
    drawn = outline[..., 0] > 0
    # Exactly the mask pixels within OUTLINE_WIDTH of the background: inside the digit, thin.
    np.testing.assert_array_equal(drawn, mask & near_background(mask, mnist_pairs.OUTLINE_WIDTH))
    np.testing.assert_array_equal(filled.max(axis=-1) > 0, mask)
    if digit == 'ring':
        assert 0.2 < drawn.sum() / mask.sum() < 0.6  # The ring's inside is not all outline.
        assert len(np.unique(filled[mask][:, 0])) > 20  # Shaded, not a flat colour.


def test_build_writes_side_by_side_pairs_in_mnist_order_atomically(tmp_path):
    destination = tmp_path / 'cache' / 'mnist_pairs'
    with tfds.testing.mock_data(num_examples=6):
        assert mnist_pairs.build(str(destination), val_count=4) == str(destination)
        first_test_digit = next(iter(tfds.load('mnist', split='test')))['image']
    assert os.listdir(tmp_path / 'cache') == ['mnist_pairs']  # No staging folder left.
    for split, count in (('train', 6), ('val', 4)):
        paths = layouts.split_files(str(destination), split)
        assert [os.path.basename(p) for p in paths] == [f'{i}.png' for i in range(1, count + 1)]
        for path in paths:
            with Image.open(path) as image:
                assert (image.size, image.mode) == ((256, 128), 'RGB')
    pair = np.asarray(Image.open(destination / 'val' / '1.png'))
    outline, filled = mnist_pairs.digit_pair(first_test_digit)
    np.testing.assert_array_equal(pair, np.concatenate([outline, filled], axis=1))


def test_dataset_root_builds_into_an_empty_cache_then_reuses_it(tmp_path, monkeypatch):
    monkeypatch.setenv(sources.CACHE_DIR_ENV, str(tmp_path / 'cache'))
    monkeypatch.delenv(sources.DATA_DIR_ENV, raising=False)
    expected = str(tmp_path / 'cache' / 'extracted' / 'mnist_pairs')
    with tfds.testing.mock_data(num_examples=3):
        assert sources.dataset_root('mnist_pairs') == expected
    assert len(layouts.split_files(expected, 'val')) == 3
    monkeypatch.setattr(tfds, 'load', lambda *args, **kwargs: pytest.fail('built again'))
    assert sources.dataset_root('mnist_pairs') == expected


def test_training_on_mnist_pairs_needs_the_128_config_and_runs(tmp_path):
    with tfds.testing.mock_data(num_examples=4):
        mnist_pairs.build(str(tmp_path / 'data' / 'mnist_pairs'), val_count=2)
    config = config_lib.get_config()
    config.dataset = 'mnist_pairs'
    with pytest.raises(UserError, match='smaller than the 256x256 crop; lower --config.image_size'):
        pix2pix.train(config, str(tmp_path / 'run256'), data_dir=str(tmp_path / 'data'))
    config.update(dict(image_size=128, load_size=128, generator_filters=4,
                       discriminator_filters=4, steps=2, log_every=1, num_samples=2))
    trainer = pix2pix.train(config, str(tmp_path / 'run'), data_dir=str(tmp_path / 'data'))
    assert int(trainer.step) == 2
    resolved = workdirs.read_config(str(tmp_path / 'run'))
    assert (resolved.direction, resolved.batch_size, resolved.epochs) == ('AtoB', 1, 1.0)


def test_a_failed_mnist_download_is_a_one_line_error(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise ConnectionError('Failed to resolve storage.googleapis.com\nmore detail')

    monkeypatch.setattr(tfds, 'load', offline)
    with pytest.raises(UserError, match='could not get MNIST .*ConnectionError: Failed to '
                                        'resolve storage.googleapis.com\\); offline'):
        mnist_pairs.build(str(tmp_path / 'pairs'))
    assert os.listdir(tmp_path) == []  # No staging folder left behind.
