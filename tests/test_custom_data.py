"""Custom paired data: A/ and B/ folders matched by name, CSV manifests, and their errors."""

import io
import os

import numpy as np
import pytest
from PIL import Image

from p2p_tf.datasets import image_files, input_pipeline, layouts
from p2p_tf.errors import UserError
from p2p_tf.training import pix2pix

from conftest import tiny_config, write_pairs


def write_image(path, pixels):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(pixels).save(path)
    return str(path)


def separate_pairs(folder, count, seed=0):
    """A/i.png and B/i.jpg... as lossless PNGs with B = 255 - A; returns [(a, b), ...]."""
    rng = np.random.default_rng(seed)
    pairs = []
    for i in range(1, count + 1):
        a = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
        pairs.append((write_image(folder / 'A' / f'{i}.png', a),
                      write_image(folder / 'B' / f'{i}.png', 255 - a)))
    return pairs


def test_a_and_b_folders_are_matched_by_name(tmp_path):
    expected = separate_pairs(tmp_path / 'train', 3)
    os.rename(expected[1][1], str(tmp_path / 'train' / 'B' / '2.bmp'))  # Extensions may differ.
    examples = layouts.split_pairs(str(tmp_path), 'train')
    assert [os.path.basename(a) for a, _ in examples] == ['1.png', '2.png', '3.png']
    assert examples[1][1].endswith(os.path.join('B', '2.bmp'))


def test_an_unmatched_file_is_an_error_naming_it(tmp_path):
    separate_pairs(tmp_path / 'train', 2)
    write_image(tmp_path / 'train' / 'A' / 'extra.png', np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(UserError, match=r'A/extra\.\* has no partner in .*train/B'):
        layouts.split_pairs(str(tmp_path), 'train')
    os.makedirs(tmp_path / 'val' / 'A')
    with pytest.raises(UserError, match='val has no B/ folder'):
        layouts.split_pairs(str(tmp_path), 'val')


@pytest.mark.parametrize('direction', ['AtoB', 'BtoA'])
def test_separate_images_stay_aligned_through_the_pipeline(tmp_path, direction):
    examples = separate_pairs(tmp_path / 'train', 3)
    config = tiny_config(direction=direction, batch_size=1)
    for inputs, targets in input_pipeline.train_dataset(examples, config).take(6):
        np.testing.assert_allclose(inputs, -targets, atol=2 / 127.5)
    (source, target), = input_pipeline.eval_dataset(examples[:1], config).take(1)
    a = np.asarray(Image.open(examples[0][0]).resize((32, 32), Image.BILINEAR), np.float32)
    expected_input = a if direction == 'AtoB' else 255 - a
    np.testing.assert_allclose(source[0], expected_input / 127.5 - 1, atol=3 / 127.5)


def test_a_csv_manifest_lists_pairs_relative_to_itself(tmp_path):
    pairs = separate_pairs(tmp_path / 'images', 2)
    lines = ['a,b'] + [f'images/A/{i}.png,images/B/{i}.png' for i in (2, 1)]
    (tmp_path / 'train.csv').write_text('\n'.join(lines) + '\n')
    assert layouts.split_pairs(str(tmp_path), 'train') == [pairs[1], pairs[0]]
    (tmp_path / 'val.csv').write_text('a,b\nimages/A/1.png,images/B/9.png\n')
    with pytest.raises(UserError, match=r'val.csv line 2: no file .*B/9.png'):
        layouts.split_pairs(str(tmp_path), 'val')
    (tmp_path / 'test.csv').write_text('input,target\nx,y\n')
    with pytest.raises(UserError, match='columns a and b'):
        layouts.split_pairs(str(tmp_path), 'test')


def test_check_examples_names_a_small_or_unreadable_side(tmp_path):
    (a, b), = separate_pairs(tmp_path / 'train', 1)
    image_files.check_examples([(a, b)], min_side=32)
    write_image(b, np.zeros((40, 20, 3), np.uint8))
    with pytest.raises(UserError, match=f'{b} is 20x40, smaller than the 32x32 crop'):
        image_files.check_examples([(a, b)], min_side=32)
    open(b, 'wb').write(b'garbage')
    with pytest.raises(UserError, match=f'cannot read image {b}'):
        image_files.check_examples([(a, b)], min_side=32)


def test_training_on_a_folder_and_b_folders_and_a_manifest(tmp_path):
    separate_pairs(tmp_path / 'data' / 'train', 4)
    (tmp_path / 'data' / 'val.csv').write_text(
        'a,b\ntrain/A/1.png,train/B/1.png\ntrain/A/2.png,train/B/2.png\n')
    config = tiny_config(dataset='folder', steps=2, direction='AtoB', sample_every=2)
    trainer = pix2pix.train(config, str(tmp_path / 'run'), str(tmp_path / 'data'),
                             stream=io.StringIO())
    assert int(trainer.step) == 2
    assert os.path.exists(tmp_path / 'run' / 'checkpoints' / 'ckpt-2.index')


def test_a_folder_without_splits_is_split_with_the_seed(tmp_path):
    paths = write_pairs(tmp_path / 'flat', 20)
    first = layouts.training_examples(str(tmp_path / 'flat'), val_fraction=0.1, seed=0)
    train, held_out = first
    assert len(train) == 18 and len(held_out) == 2
    assert sorted(a for a, _ in train + held_out) == sorted(paths)  # Each pair exactly once.
    assert layouts.training_examples(str(tmp_path / 'flat'), val_fraction=0.1, seed=0) == first
    other = layouts.training_examples(str(tmp_path / 'flat'), val_fraction=0.1, seed=1)
    assert other[1] != held_out
    separate_pairs(tmp_path / 'flat_ab', 3)
    train, held_out = layouts.training_examples(str(tmp_path / 'flat_ab'))
    assert (len(train), len(held_out)) == (2, 1) and all(b for _, b in train + held_out)
    (tmp_path / 'empty').mkdir()
    with pytest.raises(UserError, match='has no train/ split .* and no pairs of its own'):
        layouts.training_examples(str(tmp_path / 'empty'))


def test_training_on_a_folder_without_splits(tmp_path):
    write_pairs(tmp_path / 'flat', 5)
    config = tiny_config(dataset='folder', steps=1)
    trainer = pix2pix.train(config, str(tmp_path / 'run'), str(tmp_path / 'flat'),
                             stream=io.StringIO())
    assert int(trainer.step) == 1


def test_16_bit_png_pairs_are_scaled_to_the_unit_range(tmp_path):
    import tensorflow as tf
    levels = np.linspace(0, 65535, 32 * 64).astype(np.uint16).reshape(32, 64, 1)
    path = tmp_path / 'train' / '1.png'
    os.makedirs(path.parent)
    tf.io.write_file(str(path), tf.io.encode_png(levels))
    image_files.check_examples([(str(path), '')], min_side=32)
    config = tiny_config(input_channels=1, output_channels=1, direction='AtoB')
    (source, target), = input_pipeline.eval_dataset([str(path)], config).take(1)
    expected = levels.astype(np.float64) / 65535 * 2 - 1
    np.testing.assert_allclose(source[0], expected[:, :32], atol=2 / 255)
    np.testing.assert_allclose(target[0], expected[:, 32:], atol=2 / 255)
