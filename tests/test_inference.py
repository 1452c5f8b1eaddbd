"""Inference: restoring a run's generator, the two inference modes, translating files."""

import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from conftest import tiny_config, write_pairs
from p2p_tf import config as config_lib
from p2p_tf import inference, models
from p2p_tf.errors import UserError


def randomize(model, seed=0):
    """Gives every variable of `model` (moving averages included) random values, so that a
    restored model cannot match a freshly built one by chance."""
    rng = np.random.default_rng(seed)
    for variable in model.variables:
        if 'seed_generator' in variable.path:
            continue
        if 'moving_variance' in variable.path:
            value = rng.uniform(0.5, 1.5, variable.shape)
        else:
            value = rng.normal(0.0, 0.05, variable.shape)
        variable.assign(value.astype(variable.dtype))


@pytest.fixture(scope='module')
def run_dir(tmp_path_factory):
    """A workdir as training leaves it: config.json and checkpoints/ckpt-1 of a generator
    (the same names as training.train). Returns (workdir, the saved generator)."""
    workdir = tmp_path_factory.mktemp('run')
    config = tiny_config()
    config_lib.save(config, str(workdir))
    generator = models.generator_from_config(config)
    randomize(generator)
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(generator=generator),
                                         str(workdir / 'checkpoints'), max_to_keep=1)
    manager.save(checkpoint_number=1)
    return workdir, generator


@pytest.fixture(scope='module')
def restored(run_dir):
    """(generator, config) restored by load_generator from run_dir."""
    return inference.load_generator(str(run_dir[0]))


def inputs_batch(size=32, batch=2, seed=0):
    return tf.random.stateless_uniform([batch, size, size, 3], [seed, 0], -1, 1)


def write_image(path, height, width, channels=3, seed=0):
    rng = np.random.default_rng(seed)
    shape = (height, width, channels) if channels > 1 else (height, width)
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(path)
    return str(path)


def test_load_generator_restores_the_saved_weights(run_dir, restored):
    saved, (generator, config) = run_dir[1], restored
    assert config.image_size == 32 and config.generator_filters == 8
    assert len(saved.variables) == len(generator.variables)
    for original, loaded in zip(saved.variables, generator.variables):
        if 'seed_generator' not in original.path:
            np.testing.assert_array_equal(np.asarray(loaded), np.asarray(original),
                                          err_msg=original.path)
    inputs = inputs_batch()
    np.testing.assert_allclose(inference.generate(generator, inputs, 'eval'),
                               inference.generate(saved, inputs, 'eval'), atol=1e-6)


def test_eval_mode_is_deterministic(restored):
    generator = restored[0]
    inputs = inputs_batch()
    first = inference.generate(generator, inputs, 'eval')
    assert first.shape == (2, 32, 32, 3)
    assert np.all(np.abs(first) <= 1.0)
    np.testing.assert_array_equal(first, inference.generate(generator, inputs, 'eval'))


def test_paper_mode_differs_and_leaves_the_moving_averages_alone(restored):
    generator = restored[0]
    inputs = inputs_batch()
    averages = [np.asarray(v) for v in generator.non_trainable_variables
                if 'moving_' in v.path]
    assert averages
    before = inference.generate(generator, inputs, 'eval')
    paper = inference.generate(generator, inputs, 'paper')
    assert paper.shape == before.shape
    assert np.abs(np.asarray(paper) - np.asarray(before)).max() > 1e-3
    np.testing.assert_array_equal(before, inference.generate(generator, inputs, 'eval'))
    after = [np.asarray(v) for v in generator.non_trainable_variables if 'moving_' in v.path]
    for old, new in zip(averages, after):
        np.testing.assert_array_equal(old, new)


def test_unknown_mode_is_an_error(restored):
    with pytest.raises(UserError, match='mode'):
        inference.generate(restored[0], inputs_batch(), 'train')


def test_translating_a_non_square_image_keeps_its_size(run_dir, tmp_path):
    image = write_image(tmp_path / 'photo.png', height=30, width=50)
    written = inference.translate_files(str(run_dir[0]), image, str(tmp_path / 'out'),
                                        mode='eval')
    assert written == [str(tmp_path / 'out' / 'photo.png')]
    with Image.open(written[0]) as output:
        assert output.size == (50, 30) and output.mode == 'RGB'


def test_translating_a_folder_writes_one_png_per_image(run_dir, tmp_path):
    folder = tmp_path / 'inputs'
    folder.mkdir()
    write_image(folder / '2.jpg', 32, 32)
    write_image(folder / '10.png', 40, 20, seed=1)
    write_image(folder / 'gray.png', 16, 24, channels=1, seed=2)
    (folder / 'notes.txt').write_text('not an image')
    out = tmp_path / 'out'
    written = inference.translate_files(str(run_dir[0]), str(folder), str(out))
    assert written == [str(out / '2.png'), str(out / '10.png'), str(out / 'gray.png')]
    assert sorted(os.listdir(out)) == ['10.png', '2.png', 'gray.png']
    sizes = {name: Image.open(out / name).size for name in os.listdir(out)}
    assert sizes == {'2.png': (32, 32), '10.png': (20, 40), 'gray.png': (24, 16)}


def test_paired_translation_writes_input_output_target_strips(run_dir, tmp_path):
    folder = tmp_path / 'pairs'
    write_pairs(folder, 1, height=40)
    left, right = (200, 30, 30), (30, 30, 200)
    pair = np.concatenate([np.full((40, 40, 3), left, np.uint8),
                           np.full((40, 40, 3), right, np.uint8)], axis=1)
    Image.fromarray(pair).save(folder / '2.png')
    out = tmp_path / 'out'
    written = inference.translate_files(str(run_dir[0]), str(folder), str(out),
                                        paired=True, mode='eval')
    assert written == [str(out / '1.png'), str(out / '2.png')]
    strip = np.asarray(Image.open(written[1]))
    assert strip.shape == (32, 96, 3)
    # The tiny config is facades, BtoA: the input is the right half, the target the left one.
    np.testing.assert_array_equal(strip[:, :32], np.full((32, 32, 3), right, np.uint8))
    np.testing.assert_array_equal(strip[:, 64:], np.full((32, 32, 3), left, np.uint8))


def test_workdir_without_checkpoints_is_an_error(tmp_path):
    config_lib.save(tiny_config(), str(tmp_path))
    with pytest.raises(UserError, match='no checkpoint in') as error:
        inference.load_generator(str(tmp_path))
    assert str(tmp_path / 'checkpoints') in str(error.value)


def test_workdir_without_config_is_an_error(run_dir, tmp_path):
    workdir = tmp_path / 'checkpoints_only'
    shutil.copytree(os.path.join(run_dir[0], 'checkpoints'), workdir / 'checkpoints')
    with pytest.raises(UserError, match='config.json'):
        inference.load_generator(str(workdir))
    with pytest.raises(UserError, match='does not exist'):
        inference.load_generator(str(tmp_path / 'missing'))


def test_missing_input_is_an_error(run_dir, tmp_path):
    with pytest.raises(UserError, match='does not exist') as error:
        inference.translate_files(str(run_dir[0]), str(tmp_path / 'nope.png'),
                                  str(tmp_path / 'out'))
    assert str(tmp_path / 'nope.png') in str(error.value)
    (tmp_path / 'empty').mkdir()
    with pytest.raises(UserError, match='no images in'):
        inference.translate_files(str(run_dir[0]), str(tmp_path / 'empty'), str(tmp_path / 'out'))


@pytest.mark.parametrize('paired', [False, True])
@pytest.mark.parametrize('damage', ['garbage', 'truncated'])
def test_a_corrupt_input_file_is_an_error_naming_it(run_dir, tmp_path, paired, damage):
    folder = tmp_path / 'inputs'
    good = write_pairs(folder, 2, suffix='.jpg')
    bad = folder / '3.jpg'
    contents = open(good[0], 'rb').read()
    bad.write_bytes(b'not an image' * 20 if damage == 'garbage' else contents[:len(contents) // 2])
    with pytest.raises(UserError, match='cannot (read|decode) image') as error:
        inference.translate_files(str(run_dir[0]), str(folder), str(tmp_path / 'out'),
                                  paired=paired)
    assert str(bad) in str(error.value)
