"""Rectangular training: image_size, load_size and eval_size as HxW, through the config, the
input pipeline, both networks, evaluation, translation and export."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from p2p_tf import config as config_lib
from p2p_tf import image_sizes, workdirs
from p2p_tf.datasets import input_pipeline, layouts, preprocessing
from p2p_tf.errors import UserError
from p2p_tf.evaluation import scoring
from p2p_tf.nets import models
from p2p_tf.serving import export as export_lib
from p2p_tf.serving import translation

from conftest import require_shared_data, run_command, tiny_config

RECTANGLE = dict(image_size='32x64', load_size='36x72')


@pytest.mark.parametrize('value, resolved', [
    (256, 256), ('256', 256), ('256x256', 256), ('128x256', '128x256'), ('128X256', '128x256'),
    ((128, 256), '128x256'), ([64, 32], '64x32')])
def test_a_size_resolves_to_one_spelling(value, resolved):
    config = config_lib.get_config()
    config.image_size = value
    config.load_size = '300x600'
    config = config_lib.resolve(config)
    assert config.image_size == resolved
    assert image_sizes.image_shape(config) == image_sizes.parse_size(value)
    assert config_lib.resolve(config).to_dict() == config.to_dict()


def test_the_default_sizes_read_as_they_always_have():
    config = config_lib.resolve(config_lib.get_config())
    assert (config.image_size, config.load_size, config.eval_size) == (256, 286, 0)
    assert json.loads(config.to_json())['image_size'] == 256
    assert image_sizes.eval_shape(config) == (256, 256)


def test_a_run_from_before_eval_size_evaluates_at_its_image_size(tmp_path):
    recorded = tiny_config().to_dict()
    del recorded['eval_size']
    (tmp_path / workdirs.CONFIG_FILENAME).write_text(json.dumps(recorded))
    assert image_sizes.eval_shape(workdirs.read_config(str(tmp_path))) == (32, 32)


@pytest.mark.parametrize('image_size, shape', [
    ('32x64', (32, 64)), ('64x32', (64, 32)), ('32x96', (32, 96))])
def test_the_unet_depth_follows_the_shorter_side(image_size, shape):
    config = tiny_config(image_size=image_size, load_size=image_size)
    assert image_sizes.unet_depth(config.image_size) == 5
    generator = models.generator_from_config(config)
    assert generator(tf.zeros([1, *shape, 3]), training=False).shape == (1, *shape, 3)
    # Five stride-2 encoder layers, as for 32x32: the bottleneck is shape / 32.
    strided = [layer for layer in generator._flatten_layers()
               if isinstance(layer, keras.layers.Conv2D) and layer.strides == (2, 2)]
    assert len(strided) == 5
    logits = models.discriminator_from_config(config)([tf.zeros([1, *shape, 3])] * 2)
    assert (logits.shape[1] < logits.shape[2]) == (shape[0] < shape[1])


@pytest.mark.parametrize('overrides, message', [
    (dict(image_size='32x48'), r'^image_size must be a power of two >= 32, or HxW .* e\.g\. 32 '
                               r'or 32x64; got 32x48$'),
    (dict(image_size='48x96'), r'^image_size must be .*; got 48x96$'),
    (dict(image_size='32x64x2'), r'^image_size must be a number or HxW \(e\.g\. 256 or '
                                 r'256x512\), got \'32x64x2\'$'),
    (dict(image_size='32x64', load_size=40), r'^load_size \(40\) is smaller than image_size '
                                             r'\(32x64\): .*e\.g\. --config\.load_size=36x72$'),
    (dict(image_size='32x64', load_size='36x72', random_rotate90=True),
     r'^random_rotate90 needs a square image_size .*image_size=32$'),
    (dict(eval_size='64x80'), r'^eval_size must be 0 \(image_size\) or have sides that are '
                              r'multiples of 32 .*e\.g\. 64; got \'64x80\'$'),
    (dict(image_size='32x64', load_size='36x72', num_discriminators=3, patch_size=34),
     r'^num_discriminators must be at most 2 for image_size 32x64 ')])
def test_bad_sizes_are_one_line_naming_the_field_and_a_valid_value(overrides, message):
    with pytest.raises(UserError, match=message):
        tiny_config(**overrides)


def test_the_train_command_refuses_a_bad_size_in_one_line(tmp_path):
    result = run_command('p2p_tf.train', '--config=configs/tiny.py', '--config.image_size=64x96',
                         f'--workdir={tmp_path / "run"}')
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and 'image_size must be' in lines[0] and 'e.g. 64 or 64x128' in lines[0]
    assert not (tmp_path / 'run').exists()


def test_a_rectangular_jitter_crops_one_window_of_both_sides():
    source = tf.reshape(tf.range(36 * 72 * 3, dtype=tf.int32), [36, 72, 3])
    target = source[..., :1] * 2
    for seed in range(4):
        cropped, cropped_target = preprocessing.random_jitter(
            source, target, tf.constant([seed, 7], tf.int64), (32, 64), flip=False)
        assert cropped.shape == (32, 64, 3) and cropped_target.shape == (32, 64, 1)
        np.testing.assert_array_equal(cropped_target, cropped[..., :1] * 2)
        # A window of the source: rows and columns are consecutive.
        top, left = divmod(int(cropped[0, 0, 0]) // 3, 72)
        np.testing.assert_array_equal(cropped, source[top:top + 32, left:left + 64])


def test_the_pipelines_give_rectangular_batches(pair_folder):
    config = tiny_config(**RECTANGLE, batch_size=2)
    train = layouts.split_pairs(str(pair_folder), 'train')
    inputs, targets = next(iter(input_pipeline.train_dataset(train, config)))
    assert inputs.shape == targets.shape == (2, 32, 64, 3)
    val = layouts.split_pairs(str(pair_folder), 'val')
    assert next(iter(input_pipeline.eval_dataset(val, config)))[0].shape == (1, 32, 64, 3)
    whole = tiny_config(**RECTANGLE, eval_size='64x96')
    assert next(iter(input_pipeline.eval_dataset(val, whole)))[0].shape == (1, 64, 96, 3)


@pytest.mark.filterwarnings('ignore:.*tf.lite.Interpreter is deprecated')
def test_a_rectangular_run_trains_evaluates_translates_and_exports(tmp_path):
    """The real train command on the shared facades at 32x64 (evaluated on 64x96 images), then
    evaluation, translation at other sizes, and a SavedModel and a TFLite model equal to the
    checkpoint."""
    data_dir = require_shared_data()
    workdir = tmp_path / 'run'
    result = run_command(
        'p2p_tf.train', '--config=configs/tiny.py', f'--data_dir={data_dir}',
        f'--workdir={workdir}', '--config.image_size=32x64', '--config.load_size=36x72',
        '--config.eval_size=64x96', '--config.steps=4', '--config.eval_images=3')
    assert result.returncode == 0, result.stderr
    recorded = json.loads((workdir / 'config.json').read_text())
    assert (recorded['image_size'], recorded['load_size'], recorded['eval_size']) == (
        '32x64', '36x72', '64x96')
    assert 'eval at step 4 on 3 val images' in result.stdout + result.stderr

    metrics = scoring.evaluate_run(str(workdir), data_dir=str(data_dir), max_images=2,
                                   output_dir=str(tmp_path / 'eval'))
    assert metrics['image_size'] == '64x96' and metrics['count'] == 2
    sheet = tf.io.decode_png(tf.io.read_file(str(tmp_path / 'eval' / 'contact_sheet.png')))
    assert sheet.shape == (2 * 64, 3 * 96, 3)

    # A crop of a label map at a size of its own: the output has its size, however it fits.
    label = np.asarray(tf.io.decode_jpeg(
        (data_dir / 'facades' / 'val' / '1.jpg').read_bytes()))[:45, 256:256 + 70]
    for fit in ('pad', 'resize'):
        output = translation.Translator(str(workdir), mode='eval', fit=fit).translate(label)
        assert output.shape == (45, 70, 3) and output.dtype == np.uint8

    checkpoint = translation.Translator(str(workdir), mode='eval')
    images = np.random.default_rng(0).uniform(-1, 1, [1, 32, 64, 3]).astype(np.float32)
    expected = checkpoint.run(images)
    assert expected.shape == (1, 32, 64, 3)
    exported = translation.Translator(export_lib.export_saved_model(str(workdir),
                                                                    str(tmp_path / 'sm')))
    np.testing.assert_allclose(exported.run(images), expected, atol=1e-5)
    lite = export_lib.export_tflite(str(workdir), str(tmp_path / 'lite'))
    interpreter = tf.lite.Interpreter(os.path.join(lite, 'model_float32.tflite'))
    runner = interpreter.get_signature_runner('translate_float')
    assert list(runner.get_input_details()['images']['shape']) == [1, 32, 64, 3]
    np.testing.assert_allclose(runner(images=images)['translated'], expected, atol=1e-4)
    metadata = json.loads(open(os.path.join(lite, os.path.basename(
        export_lib.METADATA_PATH))).read())
    assert (metadata['image_size'], metadata['image_height'], metadata['image_width']) == (
        '32x64', 32, 64)
