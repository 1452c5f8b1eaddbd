"""Inference: restoring a run's generator, the two inference modes, translating files."""

import os
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from p2p_tf import workdirs
from p2p_tf.datasets import preprocessing
from p2p_tf.errors import UserError
from p2p_tf.nets import generation, models
from p2p_tf.serving import tiling, translation

from conftest import tiny_config, write_pairs


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


def make_run_dir(workdir, **overrides):
    """A workdir as training leaves it: config.json and checkpoints/ckpt-1 of a generator
    (the same names as training.train). Returns (workdir, the saved generator)."""
    config = tiny_config(**overrides)
    os.makedirs(workdir, exist_ok=True)
    workdirs.write_config(config, str(workdir))
    generator = models.generator_from_config(config)
    randomize(generator)
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(generator=generator),
                                         str(workdir / 'checkpoints'), max_to_keep=1)
    manager.save(checkpoint_number=1)
    return workdir, generator


@pytest.fixture(scope='module')
def run_dir(tmp_path_factory):
    return make_run_dir(tmp_path_factory.mktemp('run'))


@pytest.fixture(scope='module')
def restored(run_dir):
    """(generator, config) restored by load_generator from run_dir."""
    return workdirs.load_generator(str(run_dir[0]))


def inputs_batch(size=32, batch=2, seed=0):
    return tf.random.stateless_uniform([batch, size, size, 3], [seed, 0], -1, 1)


def eval_runner(model):
    return lambda inputs: generation.generate(model, inputs, 'eval')


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
    np.testing.assert_allclose(generation.generate(generator, inputs, 'eval'),
                               generation.generate(saved, inputs, 'eval'), atol=1e-6)


def test_eval_mode_is_deterministic(restored):
    generator = restored[0]
    inputs = inputs_batch()
    first = generation.generate(generator, inputs, 'eval')
    assert first.shape == (2, 32, 32, 3)
    assert np.all(np.abs(first) <= 1.0)
    np.testing.assert_array_equal(first, generation.generate(generator, inputs, 'eval'))


def test_paper_mode_differs_and_leaves_the_moving_averages_alone(restored):
    generator = restored[0]
    inputs = inputs_batch()
    averages = [np.asarray(v) for v in generator.non_trainable_variables
                if 'moving_' in v.path]
    assert averages
    before = generation.generate(generator, inputs, 'eval')
    paper = generation.generate(generator, inputs, 'paper')
    assert paper.shape == before.shape
    assert np.abs(np.asarray(paper) - np.asarray(before)).max() > 1e-3
    np.testing.assert_array_equal(before, generation.generate(generator, inputs, 'eval'))
    after = [np.asarray(v) for v in generator.non_trainable_variables if 'moving_' in v.path]
    for old, new in zip(averages, after):
        np.testing.assert_array_equal(old, new)


def test_unknown_mode_is_an_error(restored):
    with pytest.raises(UserError, match='mode'):
        generation.generate(restored[0], inputs_batch(), 'train')


def test_translating_a_non_square_image_keeps_its_size(run_dir, tmp_path):
    image = write_image(tmp_path / 'photo.png', height=30, width=50)
    translator = translation.Translator(str(run_dir[0]), mode='eval')
    written, skipped = translator.translate_files(image, str(tmp_path / 'out'))
    assert written == [str(tmp_path / 'out' / 'photo.png')] and skipped == []
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
    translator = translation.Translator(str(run_dir[0]), convert_channels=True)
    written, _ = translator.translate_files(str(folder), str(out))
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
    translator = translation.Translator(str(run_dir[0]), mode='eval')
    written, _ = translator.translate_files(str(folder), str(out), paired=True)
    assert written == [str(out / '1.png'), str(out / '2.png')]
    strip = np.asarray(Image.open(written[1]))
    assert strip.shape == (32, 96, 3)
    # The tiny config is facades, BtoA: the input is the right half, the target the left one.
    np.testing.assert_array_equal(strip[:, :32], np.full((32, 32, 3), right, np.uint8))
    np.testing.assert_array_equal(strip[:, 64:], np.full((32, 32, 3), left, np.uint8))


def test_workdir_without_checkpoints_is_an_error(tmp_path):
    workdirs.write_config(tiny_config(), str(tmp_path))
    with pytest.raises(UserError, match='no checkpoint in') as error:
        workdirs.load_generator(str(tmp_path))
    assert str(tmp_path / 'checkpoints') in str(error.value)


def test_workdir_without_config_is_an_error(run_dir, tmp_path):
    workdir = tmp_path / 'checkpoints_only'
    shutil.copytree(os.path.join(run_dir[0], 'checkpoints'), workdir / 'checkpoints')
    with pytest.raises(UserError, match='config.json'):
        workdirs.load_generator(str(workdir))
    with pytest.raises(UserError, match='does not exist'):
        workdirs.load_generator(str(tmp_path / 'missing'))
    # A Translator takes exports too, and says so.
    with pytest.raises(UserError, match='does not exist .*or an export'):
        translation.Translator(str(tmp_path / 'missing_export'))


def test_missing_input_is_an_error(run_dir, tmp_path):
    with pytest.raises(UserError, match='does not exist') as error:
        translation.Translator(str(run_dir[0])).translate_files(str(tmp_path / 'nope.png'),
                                                              str(tmp_path / 'out'))
    assert str(tmp_path / 'nope.png') in str(error.value)
    (tmp_path / 'empty').mkdir()
    with pytest.raises(UserError, match='no images in'):
        translation.Translator(str(run_dir[0])).translate_files(str(tmp_path / 'empty'),
                                                              str(tmp_path / 'out'))


@pytest.mark.parametrize('paired', [False, True])
@pytest.mark.parametrize('damage', ['garbage', 'truncated'])
def test_a_corrupt_input_file_is_skipped_with_a_warning(run_dir, tmp_path, paired, damage):
    folder = tmp_path / 'inputs'
    good = write_pairs(folder, 2, suffix='.jpg')
    bad = folder / '3.jpg'
    contents = open(good[0], 'rb').read()
    bad.write_bytes(b'not an image' * 20 if damage == 'garbage' else contents[:len(contents) // 2])
    warnings = []
    written, skipped = translation.Translator(str(run_dir[0])).translate_files(
        str(folder), str(tmp_path / 'out'), paired=paired, warn=warnings.append)
    assert [os.path.basename(path) for path in written] == ['1.png', '2.png']
    assert [path for path, _ in skipped] == [str(bad)]
    assert len(warnings) == 1 and warnings[0].startswith(f'warning: skipping {bad}: ')


def test_a_300x500_image_comes_back_300x500_in_both_fits(restored, tmp_path):
    generator, config = restored
    image = np.random.default_rng(0).integers(0, 256, (300, 500, 3), dtype=np.uint8)
    for fit in ('pad', 'resize'):
        output = translation.translate_image(eval_runner(generator), image, config.image_size,
                                           fit=fit)
        assert output.shape == (300, 500, 3) and output.dtype == np.uint8


def test_pad_fit_is_the_generator_on_the_mirror_padded_image(restored):
    generator, config = restored
    image = np.random.default_rng(1).integers(0, 256, (40, 70, 3), dtype=np.uint8)
    output = translation.translate_image(eval_runner(generator), image, config.image_size)
    padded, window = preprocessing.pad_to_multiple(
        preprocessing.to_unit_range(image)[np.newaxis], 32)
    assert padded.shape[1:3] == (64, 96)
    expected = preprocessing.to_uint8(
        preprocessing.crop_padding(generator(padded, training=False), window))[0]
    np.testing.assert_array_equal(output, expected)


def test_tiles_blend_to_the_untiled_result_for_a_pointwise_model():
    """With a per-pixel model, every tile agrees with the whole image, so any error in the
    tiling or blending arithmetic shows up as a difference."""
    inputs = keras.Input([None, None, 3])
    pointwise = keras.Model(inputs, keras.layers.Conv2D(3, 1, activation='tanh')(inputs))
    image = np.random.default_rng(2).uniform(-1, 1, (1, 96, 160, 3)).astype(np.float32)
    bands = list(tiling.translated_bands(eval_runner(pointwise), image, tile_size=64,
                                              overlap=24))
    assert [first for first, _ in bands] == [0, 32]  # Two rows of tiles: two bands.
    tiled = np.concatenate([band for _, band in bands])[np.newaxis]
    np.testing.assert_allclose(tiled, pointwise(image, training=False), atol=1e-6)


def test_a_tiled_uint8_image_is_the_pointwise_model_on_the_whole_image():
    """The large-image path (uint8 kept, bands of rows finished as they are done, mirror
    padding in numpy) gives what the whole padded image gives, in more than one row of tiles
    and with padding on every side."""
    inputs = keras.Input([None, None, 3])
    pointwise = keras.Model(inputs, keras.layers.Conv2D(3, 1, activation='tanh')(inputs))
    image = np.random.default_rng(4).integers(0, 256, (150, 210, 3), dtype=np.uint8)
    tiled = translation.translate_image(eval_runner(pointwise), image, 32, tile_size=64,
                                        tile_overlap=16)
    whole = translation.translate_image(eval_runner(pointwise), image, 32, tile_size=0)
    assert tiled.shape == whole.shape == (150, 210, 3) and tiled.dtype == np.uint8
    # Blending equal values can round a .5 the other way: at most one level, rarely.
    assert np.abs(tiled.astype(int) - whole).max() <= 1
    assert (tiled != whole).mean() < 0.01
    padded, (top, left) = tiling.mirror_pad(image, 32)
    reference, _ = preprocessing.pad_to_multiple(image[np.newaxis], 32)
    np.testing.assert_array_equal(padded, reference[0])
    assert (top, left) == (5, 7)


def test_tiled_and_untiled_agree_away_from_tile_borders(restored):
    generator, config = restored
    rng = np.random.default_rng(3)
    # A smooth image, as photos are, so differences come from the tiling, not from noise.
    small = rng.integers(0, 256, (6, 10, 3)).astype(np.uint8)
    image = np.asarray(preprocessing.resize(small, (96, 160)))
    run = eval_runner(generator)
    whole = translation.translate_image(run, image, config.image_size, tile_size=0).astype(float)
    tiled = translation.translate_image(run, image, config.image_size, tile_size=64,
                                      tile_overlap=32).astype(float)
    difference = np.abs(whole - tiled)
    spread = np.abs(whole - whole.mean()).mean()  # How much the output varies at all.
    assert spread > 1.0
    assert difference.max() > 0  # The tiles really were translated separately.
    # Away from the image border, tiled and whole outputs agree to a few percent of the
    # output's own variation (the tiles' deepest layers see less context).
    assert difference[8:-8, 8:-8].mean() < 0.05 * spread


def test_tile_starts_cover_the_image_with_the_overlap():
    assert tiling.tile_starts(64, 64, 16) == [0]
    starts = tiling.tile_starts(1000, 256, 64)
    assert starts[0] == 0 and starts[-1] == 1000 - 256
    assert all(b - a <= 256 - 64 for a, b in zip(starts, starts[1:]))


def test_match_channels_converts_only_when_asked():
    rgb = np.random.default_rng(4).integers(0, 256, (5, 6, 3), dtype=np.uint8)
    rgba = np.concatenate([rgb, np.full((5, 6, 1), 255, np.uint8)], axis=-1)
    gray = rgb[..., :1]
    assert translation.match_channels(rgb, 3) is rgb
    with pytest.raises(translation.ChannelMismatch, match='3 channel.*takes 1.*--convert_channels'):
        translation.match_channels(rgb, 1)
    np.testing.assert_array_equal(translation.match_channels(rgb, 1, convert=True),
                                  tf.image.rgb_to_grayscale(rgb))
    np.testing.assert_array_equal(translation.match_channels(rgba, 3, convert=True), rgb)
    np.testing.assert_array_equal(translation.match_channels(gray, 3, convert=True),
                                  np.repeat(gray, 3, axis=-1))


def test_a_channel_mismatch_is_a_warning_and_the_other_files_are_translated(run_dir, tmp_path):
    folder = tmp_path / 'inputs'
    folder.mkdir()
    write_image(folder / '1.png', 16, 16, channels=1)
    write_image(folder / '2.png', 16, 16, channels=3)
    warnings = []
    written, skipped = translation.Translator(str(run_dir[0])).translate_files(
        str(folder), str(tmp_path / 'out'), warn=warnings.append)
    assert written == [str(tmp_path / 'out' / '2.png')]
    assert [path for path, _ in skipped] == [str(folder / '1.png')]
    assert warnings == [f'warning: skipping {folder / "1.png"}: the image has 1 channel(s) and '
                        'the model takes 3; pass --convert_channels to convert it']


def test_translating_never_replaces_an_input_and_asks_before_replacing_outputs(run_dir,
                                                                              tmp_path):
    folder = tmp_path / 'photos'
    write_pairs(folder, 2)  # 1.png and 2.png: their outputs would have the same names.
    before = {path: path.read_bytes() for path in folder.iterdir()}
    translator = translation.Translator(str(run_dir[0]))
    with pytest.raises(UserError, match=f'output {folder / "1.png"} would replace the input'):
        translator.translate_files(str(folder), str(folder))
    assert {path: path.read_bytes() for path in folder.iterdir()} == before
    out = tmp_path / 'out'
    translator.translate_files(str(folder), str(out))
    (out / '1.png').write_bytes(b'kept')
    with pytest.raises(UserError, match=r'2 output file\(s\) already exist.*--overwrite'):
        translator.translate_files(str(folder), str(out))
    assert (out / '1.png').read_bytes() == b'kept'
    written, _ = translator.translate_files(str(folder), str(out), overwrite=True)
    assert (out / '1.png').read_bytes() != b'kept' and len(written) == 2
    (tmp_path / 'mixed').mkdir()
    write_image(tmp_path / 'mixed' / 'x.jpg', 16, 16)
    write_image(tmp_path / 'mixed' / 'x.png', 16, 16)
    with pytest.raises(UserError, match='would both be written to'):
        translator.translate_files(str(tmp_path / 'mixed'), str(tmp_path / 'mixed_out'))


def test_load_generator_from_a_checkpoint_path(run_dir, tmp_path):
    workdir, saved = run_dir
    path = tf.train.latest_checkpoint(str(workdir / 'checkpoints'))
    generator, config = workdirs.load_generator(path)
    assert config.image_size == 32
    for expected, actual in zip(saved.variables, generator.variables):
        if 'seed_generator' not in expected.path:
            np.testing.assert_array_equal(expected, actual)
    with pytest.raises(UserError, match='no checkpoint .*ckpt-99'):
        workdirs.load_generator(str(workdir), checkpoint=str(workdir / 'checkpoints' / 'ckpt-99'))


def test_grayscale_model_end_to_end(tmp_path):
    workdir, _ = make_run_dir(tmp_path / 'gray_run', input_channels=1, output_channels=1)
    folder = tmp_path / 'inputs'
    folder.mkdir()
    write_image(folder / 'gray.png', 40, 24, channels=1)
    write_image(folder / 'color.png', 40, 24, channels=3)
    translator = translation.Translator(str(workdir), mode='eval')
    written, skipped = translator.translate_files(str(folder), str(tmp_path / 'gray_only'),
                                                  warn=lambda message: None)
    assert [os.path.basename(path) for path, _ in skipped] == ['color.png']
    assert 'the image has 3 channel' in skipped[0][1] and len(written) == 1
    translator = translation.Translator(str(workdir), mode='eval', convert_channels=True)
    written, _ = translator.translate_files(str(folder), str(tmp_path / 'out'))
    for path in written:
        with Image.open(path) as output:
            assert output.mode == 'L' and output.size == (24, 40)
