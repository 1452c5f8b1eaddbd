"""Export: the SavedModel reloaded without p2p_tf equals the checkpoint's generator, its
metadata, its signatures' checks, atomic writes, TFLite agreement, and the export command."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from p2p_tf import workdirs
from p2p_tf.datasets import preprocessing
from p2p_tf.errors import UserError
from p2p_tf.nets import generation, models
from p2p_tf.serving import export as export_lib
from p2p_tf.serving import translation

from conftest import run_command, tiny_config
from test_inference import randomize

STEP = 7
# Largest |TFLite - SavedModel| of translate_float in [-1, 1] units, as docs/translating.md
# states them (measured on a trained 128x128 facades run: 3e-6, 1e-3 and 0.12).
TFLITE_TOLERANCES = {'float32': 1e-5, 'float16': 1e-2, 'dynamic_range': 0.15}

# Loads an export and runs it in a process that never imports p2p_tf.
RELOAD_SCRIPT = """
import json, os, sys
import numpy as np
import tensorflow as tf

export_dir, inputs_path, outputs_path = sys.argv[1:]
loaded = tf.saved_model.load(export_dir)
images = np.load(inputs_path)
translated = loaded.signatures['serving_default'](images=tf.constant(images))['translated']
floats = loaded.signatures['translate_float'](
    images=tf.cast(images, tf.float32) / 127.5 - 1)['translated']
metadata = {name: value.numpy() for name, value in loaded.signatures['metadata']().items()}
metadata = {name: value.decode() if isinstance(value, bytes) else int(value)
            for name, value in metadata.items()}
with open(os.path.join(export_dir, 'assets.extra', 'p2p_tf_metadata.json')) as f:
    file_metadata = json.load(f)
np.savez(outputs_path, translated=translated.numpy(), floats=floats.numpy())
print(json.dumps(dict(metadata=metadata, file_metadata=file_metadata,
                      p2p_tf_imported='p2p_tf' in sys.modules)))
"""


def expected_metadata(mode='eval'):
    return dict(dataset='facades', direction='BtoA', input_channels=3, output_channels=3,
                image_size=32, image_height=32, image_width=32, multiple=32, step=STEP,
                mode=mode, input_dtype='uint8', input_range='0,255', target_dtype='uint8',
                target_range='0,255',
                p2p_tf_version='0.1.0')


def make_run(workdir, **overrides):
    """A workdir as training leaves it: config.json and checkpoints/ckpt-STEP holding a
    generator with random weights and moving averages, and the step counter."""
    workdir.mkdir(exist_ok=True)
    config = tiny_config(**overrides)
    workdirs.write_config(config, str(workdir))
    generator = models.generator_from_config(config)
    randomize(generator)
    checkpoint = tf.train.Checkpoint(generator=generator,
                                     step=tf.Variable(STEP, dtype=tf.int64))
    tf.train.CheckpointManager(checkpoint, str(workdir / 'checkpoints'),
                               max_to_keep=1).save(checkpoint_number=STEP)
    return workdir


@pytest.fixture(scope='module')
def run_dir(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp('run'))


@pytest.fixture(scope='module')
def saved_model(run_dir, tmp_path_factory):
    return export_lib.export_saved_model(str(run_dir),
                                         str(tmp_path_factory.mktemp('exports') / 'sm'))


@pytest.fixture(scope='module')
def reloaded(saved_model, tmp_path_factory):
    """Runs RELOAD_SCRIPT on a 1x300x500 uint8 image (not a multiple of 32); returns (inputs,
    {name: outputs}, the script's JSON report)."""
    folder = tmp_path_factory.mktemp('reload')
    inputs = np.random.default_rng(0).integers(0, 256, (1, 300, 500, 3), dtype=np.uint8)
    np.save(folder / 'inputs.npy', inputs)
    result = subprocess.run(
        [sys.executable, '-c', RELOAD_SCRIPT, saved_model, str(folder / 'inputs.npy'),
         str(folder / 'outputs.npz')], capture_output=True, text=True, timeout=300,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2'))
    assert result.returncode == 0, result.stderr[-3000:]
    outputs = dict(np.load(folder / 'outputs.npz'))
    return inputs, outputs, json.loads(result.stdout.strip().splitlines()[-1])


def checkpoint_translation(workdir, images, mode='eval'):
    """What the restored checkpoint's generator makes of [batch, H, W, C] float32 images in
    [-1, 1], padded and cropped as the export does."""
    generator, _ = workdirs.load_generator(str(workdir))
    padded, window = preprocessing.pad_to_multiple(images, 32)
    return np.asarray(preprocessing.crop_padding(
        generation.generate(generator, padded, mode), window))


def folder_states(folder):
    """{relative path: contents} of every file under `folder`."""
    states = {}
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            with open(path, 'rb') as f:
                states[os.path.relpath(path, folder)] = f.read()
    return states


def test_reloaded_export_equals_the_checkpoint_generator(run_dir, reloaded):
    inputs, outputs, report = reloaded
    assert report['p2p_tf_imported'] is False
    assert outputs['translated'].shape == (1, 300, 500, 3)
    assert outputs['translated'].dtype == np.uint8
    assert outputs['floats'].shape == (1, 300, 500, 3)
    expected = checkpoint_translation(run_dir, preprocessing.to_unit_range(inputs))
    np.testing.assert_allclose(outputs['floats'], expected, atol=1e-5, rtol=0)
    difference = np.abs(outputs['translated'].astype(int)
                        - np.asarray(preprocessing.to_uint8(expected)).astype(int))
    assert difference.max() <= 1
    # Not a constant image: the comparison means something.
    assert outputs['translated'].std() > 1


def test_metadata_round_trips(saved_model, reloaded):
    report = reloaded[2]
    assert report['metadata'] == expected_metadata()
    assert report['file_metadata'] == expected_metadata()
    assert export_lib.read_metadata(saved_model) == expected_metadata()


@pytest.mark.parametrize('signature, images, message', [
    ('serving_default', tf.zeros([1, 32, 32, 3], tf.float32),
     'expected to be a uint8 tensor but is a float tensor'),
    ('translate_float', tf.zeros([1, 32, 32, 3], tf.uint8),
     'expected to be a float tensor but is a uint8 tensor'),
    ('serving_default', tf.zeros([1, 32, 32, 1], tf.uint8),
     r'Shape of tensor images \[1,32,32,1\] is not compatible with expected shape \[\?,\?,\?,3\]'),
    ('serving_default', tf.zeros([32, 32, 3], tf.uint8),
     r'Shape of tensor images \[32,32,3\] is not compatible with expected shape \[\?,\?,\?,3\]'),
], ids=['float_to_uint8', 'uint8_to_float', 'one_channel', 'no_batch'])
def test_a_wrong_dtype_or_shape_is_a_clear_error(saved_model, signature, images, message):
    loaded = tf.saved_model.load(saved_model)
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        loaded.signatures[signature](images=images)


def test_paper_mode_uses_batch_statistics_and_keeps_the_moving_averages(tmp_path):
    workdir = make_run(tmp_path / 'run', dropout_rate=0.0)
    loaded = tf.saved_model.load(
        export_lib.export_saved_model(str(workdir), str(tmp_path / 'paper'), mode='paper'))
    assert loaded.signatures['metadata']()['mode'].numpy() == b'paper'
    images = tf.random.stateless_uniform([2, 40, 50, 3], [0, 0], -1, 1)
    before = [v.numpy() for v in loaded.variables]
    outputs = loaded.signatures['translate_float'](images=images)['translated']
    np.testing.assert_allclose(outputs, checkpoint_translation(workdir, images, 'paper'),
                               atol=1e-5, rtol=0)
    assert np.abs(outputs - checkpoint_translation(workdir, images, 'eval')).max() > 1e-3
    for variable, value in zip(loaded.variables, before):
        np.testing.assert_array_equal(variable.numpy(), value, err_msg=variable.name)


def test_paper_mode_dropout_differs_between_calls(run_dir, tmp_path):
    loaded = tf.saved_model.load(
        export_lib.export_saved_model(str(run_dir), str(tmp_path / 'paper'), mode='paper'))
    images = tf.zeros([1, 32, 32, 3], tf.uint8)
    first, second = (loaded.signatures['serving_default'](images=images)['translated']
                     for _ in range(2))
    assert np.any(np.asarray(first) != np.asarray(second))


def test_an_existing_export_dir_is_refused_unless_overwrite(run_dir, tmp_path):
    export_dir = tmp_path / 'export'
    export_dir.mkdir()
    (export_dir / 'keep.txt').write_text('earlier work')
    with pytest.raises(UserError, match='already exists; pass --overwrite'):
        export_lib.export_saved_model(str(run_dir), str(export_dir))
    assert folder_states(export_dir) == {'keep.txt': b'earlier work'}
    export_lib.export_saved_model(str(run_dir), str(export_dir), overwrite=True)
    assert not (export_dir / 'keep.txt').exists()
    assert (export_dir / 'saved_model.pb').is_file()
    assert os.listdir(tmp_path) == ['export']


@pytest.mark.parametrize('earlier_export', [True, False])
def test_a_failed_write_keeps_the_earlier_export_and_leaves_no_temporary_folder(
        run_dir, saved_model, tmp_path, monkeypatch, earlier_export):
    export_dir = tmp_path / 'export'
    if earlier_export:
        export_lib.export_saved_model(str(run_dir), str(export_dir))
        states = folder_states(export_dir)
    save = tf.saved_model.save

    def save_then_fail(*args, **kwargs):
        save(*args, **kwargs)
        raise OSError('disk full')
    monkeypatch.setattr(tf.saved_model, 'save', save_then_fail)
    with pytest.raises(OSError, match='disk full'):
        export_lib.export_saved_model(str(run_dir), str(export_dir), overwrite=True)
    if earlier_export:
        assert os.listdir(tmp_path) == ['export']
        assert folder_states(export_dir) == states
    else:
        assert os.listdir(tmp_path) == []


def test_a_workdir_without_checkpoints_is_an_error_naming_where_it_looked(tmp_path):
    workdirs.write_config(tiny_config(), str(tmp_path))
    with pytest.raises(UserError, match='no checkpoint in') as error:
        export_lib.export_saved_model(str(tmp_path), str(tmp_path / 'export'))
    assert str(tmp_path / 'checkpoints') in str(error.value)
    assert not (tmp_path / 'export').exists()


def test_an_unknown_mode_is_an_error(run_dir, tmp_path):
    with pytest.raises(UserError, match='mode'):
        export_lib.export_saved_model(str(run_dir), str(tmp_path / 'export'), mode='train')
    with pytest.raises(UserError, match='eval mode only'):
        export_lib.export_tflite(str(run_dir), str(tmp_path / 'export'), mode='paper')
    assert os.listdir(tmp_path) == []


@pytest.fixture(scope='module')
def tflite_export(run_dir, tmp_path_factory):
    return export_lib.export_tflite(str(run_dir), str(tmp_path_factory.mktemp('exports') / 'lite'))


def test_tflite_export_writes_the_files_and_metadata(tflite_export):
    assert sorted(os.listdir(tflite_export)) == [
        'model_dynamic_range.tflite', 'model_float16.tflite', 'model_float32.tflite',
        'p2p_tf_metadata.json']
    assert export_lib.read_metadata(tflite_export) == expected_metadata()
    sizes = {quantization: os.path.getsize(os.path.join(tflite_export, filename))
             for quantization, filename in export_lib.TFLITE_FILES.items()}
    assert sizes['dynamic_range'] < sizes['float16'] < sizes['float32']


@pytest.mark.filterwarnings('ignore:.*tf.lite.Interpreter is deprecated')
@pytest.mark.parametrize('quantization', sorted(export_lib.TFLITE_FILES))
def test_tflite_agrees_with_the_saved_model(saved_model, tflite_export, quantization):
    loaded = tf.saved_model.load(saved_model)
    interpreter = tf.lite.Interpreter(
        model_path=os.path.join(tflite_export, export_lib.TFLITE_FILES[quantization]))
    assert set(interpreter.get_signature_list()) == set(export_lib.IMAGE_SIGNATURES)
    images = np.random.default_rng(1).integers(0, 256, (1, 32, 32, 3), dtype=np.uint8)
    floats = np.asarray(preprocessing.to_unit_range(images))
    runner = interpreter.get_signature_runner('translate_float')
    assert runner.get_input_details()['images']['shape'].tolist() == [1, 32, 32, 3]
    expected = loaded.signatures['translate_float'](images=floats)['translated'].numpy()
    outputs = runner(images=floats)['translated']
    assert outputs.shape == (1, 32, 32, 3)
    np.testing.assert_allclose(outputs, expected, atol=TFLITE_TOLERANCES[quantization], rtol=0)
    translated = interpreter.get_signature_runner('serving_default')(images=images)['translated']
    expected = loaded.signatures['serving_default'](images=images)['translated'].numpy()
    assert translated.dtype == np.uint8 and translated.shape == (1, 32, 32, 3)
    limit = 1 + 127.5 * TFLITE_TOLERANCES[quantization]
    assert np.abs(translated.astype(int) - expected.astype(int)).max() <= limit


def test_export_command_writes_a_saved_model(run_dir, tmp_path):
    result = run_command('p2p_tf.export', f'--workdir={run_dir}',
                         f'--export_dir={tmp_path / "export"}')
    assert result.returncode == 0, result.stderr[-3000:]
    assert str(tmp_path / 'export') in result.stdout
    assert (tmp_path / 'export' / 'saved_model.pb').is_file()
    assert export_lib.read_metadata(str(tmp_path / 'export')) == expected_metadata()


def test_export_command_refuses_an_existing_export_dir(run_dir, tmp_path):
    (tmp_path / 'export').mkdir()
    result = run_command('p2p_tf.export', f'--workdir={run_dir}',
                         f'--export_dir={tmp_path / "export"}', '--format=tflite')
    assert result.returncode == 2, result.stderr[-3000:]
    assert 'Traceback' not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert re.fullmatch(r'p2p_tf\.export: error: \S+ already exists; pass --overwrite to '
                        r'replace it', last), last
    assert os.listdir(tmp_path / 'export') == []


def test_translator_on_an_export_matches_the_checkpoint(run_dir, saved_model):
    image = np.random.default_rng(5).integers(0, 256, (70, 45, 3), dtype=np.uint8)
    from_export = translation.Translator(saved_model)
    from_checkpoint = translation.Translator(str(run_dir), mode='eval')
    assert from_export.mode == 'eval' and from_export.config.image_size == 32
    exported, restored = from_export(image), from_checkpoint(image)
    assert exported.shape == (70, 45, 3)
    assert np.abs(exported.astype(int) - restored.astype(int)).max() <= 1
    with pytest.raises(UserError, match='exported in eval mode'):
        translation.Translator(saved_model, mode='paper')


def test_translator_takes_batches_and_lists(run_dir):
    translator = translation.Translator(str(run_dir), mode='eval')
    rng = np.random.default_rng(6)
    batch = rng.integers(0, 256, (2, 40, 50, 3), dtype=np.uint8)
    outputs = translator(batch)
    assert outputs.shape == (2, 40, 50, 3) and outputs.dtype == np.uint8
    np.testing.assert_array_equal(outputs[1], translator(batch[1]))
    sizes = [(33, 20), (64, 64)]
    listed = translator([rng.integers(0, 256, size + (3,), dtype=np.uint8) for size in sizes])
    assert [output.shape[:2] for output in listed] == sizes


def test_translate_command_reads_an_export(saved_model, tmp_path):
    image = tmp_path / 'in.png'
    Image.fromarray(np.random.default_rng(7).integers(0, 256, (50, 90, 3), dtype=np.uint8)).save(
        image)
    result = run_command('p2p_tf.translate', f'--export_dir={saved_model}', f'--input={image}',
                         f'--output={tmp_path / "out"}')
    assert result.returncode == 0, result.stderr[-2000:]
    with Image.open(tmp_path / 'out' / 'in.png') as output:
        assert output.size == (90, 50)
    both = run_command('p2p_tf.translate', f'--export_dir={saved_model}', f'--workdir={tmp_path}',
                       f'--input={image}', f'--output={tmp_path / "out2"}')
    assert both.returncode == 2 and 'exactly one of --workdir and --export_dir' in both.stderr
