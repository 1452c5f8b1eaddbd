"""Any number of bands, 8- and 16-bit and float data: array files, value ranges, the pipeline's
alignment of all bands, translation back to the source's type and format, and a tiny 5-band ->
2-band run end to end."""

import json
import os

import ml_collections
import numpy as np
import pytest
import tensorflow as tf

from p2p_tf import config as config_lib
from p2p_tf.datasets import array_files, image_files, input_pipeline, preprocessing, value_ranges
from p2p_tf.errors import UserError
from p2p_tf.nets import images
from p2p_tf.serving import export as export_lib
from p2p_tf.serving import translation

from conftest import run_command, tiny_config
from test_inference import make_run_dir

TARGET_RANGE = (-3.0, 7.0)


def write_tiff_planar(path, bands_last):
    """A TIFF with one plane per band (how GDAL and rasterio write multi-band GeoTIFFs)."""
    import tifffile
    tifffile.imwrite(path, np.moveaxis(bands_last, -1, 0), photometric='minisblack',
                     planarconfig='separate')


def write_band_dataset(root, counts=(('train', 4), ('val', 2)), size=(40, 48), seed=0):
    """A folder dataset of 5-band uint16 inputs (A/, .npy and one planar TIFF) and 2-band
    float32 targets in TARGET_RANGE (B/, .npy)."""
    rng = np.random.default_rng(seed)
    for split, count in counts:
        for side in 'AB':
            os.makedirs(root / split / side, exist_ok=True)
        for i in range(count):
            source = rng.integers(0, 65536, size + (5,), dtype=np.uint16)
            target = rng.uniform(*TARGET_RANGE, size + (2,)).astype(np.float32)
            if split == 'train' and i == 0:
                write_tiff_planar(root / split / 'A' / f'{i}.tif', source)
            else:
                np.save(root / split / 'A' / f'{i}.npy', source)
            np.save(root / split / 'B' / f'{i}.npy', target)
    return root


@pytest.mark.parametrize('name, dtype, bands', [
    ('x.npy', np.float64, 13), ('x.npy', np.uint16, 1), ('x.tif', np.uint16, 5),
    ('x.tiff', np.float32, 2), ('x.tif', np.uint8, 3)])
def test_array_files_round_trip_with_their_headers(tmp_path, name, dtype, bands):
    array = (np.random.default_rng(0).uniform(0, 200, (7, 9, bands))).astype(dtype)
    array_files.write(array, tmp_path / name)
    read = image_files.read_image(str(tmp_path / name))
    assert read.dtype == dtype and read.shape == (7, 9, bands)
    np.testing.assert_array_equal(read, array)
    assert image_files.band_header(str(tmp_path / name)) == ((9, 7), bands, np.dtype(dtype).name)


def test_a_planar_tiff_is_read_bands_last(tmp_path):
    array = np.arange(6 * 8 * 4, dtype=np.uint16).reshape(6, 8, 4)
    write_tiff_planar(tmp_path / 'planar.tif', array)
    np.testing.assert_array_equal(array_files.read(tmp_path / 'planar.tif'), array)
    assert array_files.read_header(tmp_path / 'planar.tif') == ((8, 6), 4, 'uint16')


def test_16_bit_pngs_round_trip(tmp_path):
    for channels in (1, 3, 4):
        array = np.random.default_rng(channels).integers(0, 65536, (5, 6, channels), np.uint16)
        path = str(tmp_path / f'{channels}.png')
        images.write_png(array, path)
        assert image_files.png_bit_depth(path) == 16
        np.testing.assert_array_equal(image_files.read_image(path), array)
        assert image_files.band_header(path).dtype == 'uint16'


def test_a_broken_array_file_is_named(tmp_path):
    (tmp_path / 'broken.npy').write_bytes(b'\x93NUMPY not really')
    with pytest.raises(UserError, match='broken.npy'):
        image_files.band_header(str(tmp_path / 'broken.npy'))


def test_value_types_and_ranges_are_found_in_the_files(tmp_path):
    root = write_band_dataset(tmp_path / 'data', counts=(('train', 2),))
    pairs = [(str(root / 'train/A/0.tif'), str(root / 'train/B/0.npy')),
             (str(root / 'train/A/1.npy'), str(root / 'train/B/1.npy'))]
    config = tiny_config(dataset='folder', input_channels=5, output_channels=2,
                         target_range='-3,7.0')
    resolved = value_ranges.resolve(config, pairs)
    assert (resolved.input_dtype, resolved.input_range) == ('uint16', '0,65535')
    assert (resolved.target_dtype, resolved.target_range) == ('float32', '-3,7')
    assert value_ranges.resolve(resolved, pairs) == resolved  # Resuming finds the same.
    assert config.input_dtype == config_lib.AUTO  # The config passed in is left as it was.
    # Float values without a range: one line naming the field to set.
    with pytest.raises(UserError, match=r'^the target files hold float32 values: give their '
                       r'range with --config.target_range=LOW,HIGH') as error:
        value_ranges.resolve(tiny_config(dataset='folder', input_channels=5,
                                         output_channels=2), pairs)
    assert '\n' not in str(error.value)
    # The pix2pix datasets' TFDS records are all 8-bit.
    assert value_ranges.side_scaling(value_ranges.resolve(tiny_config(), object()),
                                     'input') == ('uint8', 0, 255)


@pytest.mark.parametrize('odd, message', [
    (np.zeros((40, 48, 4), np.uint16), r'2\.npy has 4 band\(s\) where the other input files '
                                       r'have 5$'),
    (np.zeros((40, 48, 5), np.uint8), r'2\.npy has uint8 values where the other input files '
                                      r'have uint16$')])
def test_a_file_unlike_the_rest_of_its_split_is_named(tmp_path, odd, message):
    root = write_band_dataset(tmp_path / 'data', counts=(('train', 3),))
    np.save(root / 'train/A/2.npy', odd)
    config = tiny_config(dataset='folder', input_channels=5, output_channels=2,
                         target_range='-3,7')
    from p2p_tf.datasets import layouts
    with pytest.raises(UserError, match=message):
        value_ranges.resolve(config, layouts.split_pairs(str(root), 'train'))


def test_a_band_count_other_than_the_models_says_what_to_set(tmp_path):
    from p2p_tf.datasets import layouts
    root = write_band_dataset(tmp_path / 'data', counts=(('train', 2),))
    config = tiny_config(dataset='folder', input_channels=4, output_channels=2,
                         target_range='-3,7')
    with pytest.raises(UserError, match=r'the input files have 5 band\(s\) but input_channels '
                       r'is 4; set --config.input_channels=5'):
        value_ranges.resolve(config, layouts.split_pairs(str(root), 'train'))
    np.save(tmp_path / 'pair.npy', np.zeros((8, 16, 3), np.uint8))
    with pytest.raises(UserError, match='not read as side-by-side pairs'):
        value_ranges.resolve(tiny_config(dataset='folder'), [(str(tmp_path / 'pair.npy'), '')])


@pytest.mark.parametrize('dtype, value_range', [
    (tf.uint8, (0, 255)), (tf.uint16, (0, 65535)), (tf.uint16, (0, 10000)),
    (tf.float32, (-3.0, 7.0)), (tf.float64, (100.0, 300.0))])
def test_values_scale_to_unit_range_and_back(dtype, value_range):
    low, high = value_range
    values = np.linspace(low, high, 101).astype(dtype.as_numpy_dtype)
    unit = preprocessing.to_unit_range(values, value_range)
    assert unit.numpy().min() == -1 and unit.numpy().max() == 1
    back = preprocessing.from_unit_range(unit, dtype, value_range).numpy()
    tolerance = 0 if dtype.is_integer else 1e-4 * (high - low)
    np.testing.assert_allclose(back, values, atol=tolerance)
    scaling = value_ranges.Scaling(dtype.name, float(low), float(high))
    np.testing.assert_array_equal(value_ranges.to_unit_numpy(values, scaling), unit.numpy())
    np.testing.assert_array_equal(value_ranges.from_unit_numpy(unit.numpy().copy(), scaling),
                                  back)
    # Values outside the range are clipped to it.
    outside = preprocessing.to_unit_range(np.array([low - (high - low), high * 2 + 1]),
                                          value_range)
    np.testing.assert_array_equal(outside, [-1, 1])


def banded(base, bands):
    """[H, W] -> [H, W, bands] with every band equal to `base`."""
    return np.repeat(base[..., np.newaxis], bands, axis=-1)


def assert_aligned(source, target):
    """Every band of source and target holds the same picture."""
    source, target = np.asarray(source), np.asarray(target)
    for band in range(source.shape[-1]):
        np.testing.assert_array_equal(source[..., band], target[..., 0])
    for band in range(target.shape[-1]):
        np.testing.assert_array_equal(target[..., band], target[..., 0])


def test_jitter_moves_all_bands_together():
    base = np.random.default_rng(0).uniform(-1, 1, (36, 40)).astype(np.float32)
    crops = set()
    for number in range(6):
        source, target = preprocessing.random_jitter(
            banded(base, 5), banded(base, 2), tf.constant([0, number], tf.int64), 32,
            flip=True, vertical_flip=True, rotate90=True)
        assert source.shape == (32, 32, 5) and target.shape == (32, 32, 2)
        assert_aligned(source, target)
        crops.add(np.asarray(source[..., 0]).tobytes())
    assert len(crops) > 1  # The jitter did move something.


def test_the_training_pipeline_keeps_all_bands_aligned(tmp_path):
    rng = np.random.default_rng(0)
    rows = ['a,b']
    for i in range(3):
        base = rng.integers(0, 65536, (40, 48), dtype=np.uint16)
        for side, bands in (('A', 5), ('B', 2)):
            os.makedirs(tmp_path / side, exist_ok=True)
            np.save(tmp_path / side / f'{i}.npy', banded(base, bands))
        rows.append(f'A/{i}.npy,B/{i}.npy')
    # Listed by a CSV manifest, the other layout that arrays come in.
    (tmp_path / 'train.csv').write_text('\n'.join(rows) + '\n')
    from p2p_tf.datasets import layouts
    pairs = layouts.split_pairs(str(tmp_path), 'train')
    assert len(pairs) == 3
    config = value_ranges.resolve(tiny_config(dataset='folder', input_channels=5,
                                              output_channels=2, random_rotate90=True), pairs)
    assert (config.input_dtype, config.target_dtype) == ('uint16', 'uint16')
    for cache in (True, False):
        batches = input_pipeline.train_dataset(pairs, config, cache=cache).take(4)
        for source, target in batches:
            assert source.shape == (1, 32, 32, 5) and target.shape == (1, 32, 32, 2)
            assert source.dtype == tf.float32 and np.abs(source).max() <= 1
            assert_aligned(source[0], target[0])
    (source, target), = input_pipeline.eval_dataset(pairs[:1], config).take(1)
    assert_aligned(source[0], target[0])


def test_pictures_show_the_first_three_bands_or_one():
    values = tf.reshape(tf.range(2 * 2 * 5, dtype=tf.float32), [1, 2, 2, 5])
    np.testing.assert_array_equal(images.shown_bands(values), values[..., :3])
    np.testing.assert_array_equal(images.shown_bands(values[..., :2]),
                                  tf.repeat(values[..., :1], 3, axis=-1))
    strip = images.side_by_side(values, values[..., :1], values[..., :2])
    assert strip.shape == (1, 2, 6, 3)


def test_16_bit_targets_translate_to_16_bit_pngs_and_tiles_keep_the_type(tmp_path):
    workdir, _ = make_run_dir(tmp_path / 'run', output_channels=1, target_dtype='uint16',
                              target_range='0,65535')
    translator = translation.Translator(str(workdir), mode='eval', tile_size=64,
                                        tile_overlap=16)
    image = np.random.default_rng(0).integers(0, 256, (40, 50, 3), np.uint8)
    os.makedirs(tmp_path / 'in')
    images.write_png(image, str(tmp_path / 'in' / 'x.png'))
    written, skipped = translator.translate_files(str(tmp_path / 'in'), str(tmp_path / 'out'))
    assert written == [str(tmp_path / 'out' / 'x.png')] and not skipped
    output = image_files.read_image(written[0])
    assert output.dtype == np.uint16 and output.shape == (40, 50, 1)
    np.testing.assert_array_equal(output, translator.translate(image))
    # A 16-bit model output spans more than 256 levels.
    assert len(np.unique(output)) > 256
    tiled = translator.translate(np.tile(image, (3, 3, 1)))  # 120x150: tiles of 64.
    assert tiled.dtype == np.uint16 and tiled.shape == (120, 150, 1)


@pytest.fixture(scope='module')
def band_run(tmp_path_factory):
    """A 2-step 5-band -> 2-band run trained by the train command on write_band_dataset."""
    folder = tmp_path_factory.mktemp('bands')
    data = write_band_dataset(folder / 'data')
    result = run_command(
        'p2p_tf.train', '--config=configs/tiny.py', '--dataset=folder', f'--data_dir={data}',
        f'--workdir={folder / "run"}', '--config.input_channels=5',
        '--config.output_channels=2', '--config.target_range=-3,7', '--config.steps=2',
        '--config.eval_every=2', '--config.checkpoint_every=2')
    assert result.returncode == 0, result.stderr[-3000:]
    return folder


def test_a_five_band_run_trains_and_translates_npy_and_tiff(band_run):
    config = json.loads((band_run / 'run' / 'config.json').read_text())
    assert {name: config[name] for name in ('input_dtype', 'input_range', 'target_dtype',
                                            'target_range')} == dict(
        input_dtype='uint16', input_range='0,65535', target_dtype='float32', target_range='-3,7')
    # translate: .npy -> .npy and TIFF -> TIFF in the targets' type and range; a file with
    # another band count is a warning, the rest are translated, and the exit status is 2.
    inputs = band_run / 'inputs'
    os.makedirs(inputs)
    source = np.load(band_run / 'data' / 'val' / 'A' / '0.npy')
    np.save(inputs / 'a.npy', source)
    array_files.write(source[:33, :45], inputs / 'b.tif')
    np.save(inputs / 'c.npy', source[..., :4])
    result = run_command('p2p_tf.translate', f'--workdir={band_run / "run"}',
                         f'--input={inputs}', f'--output={band_run / "out"}', '--mode=eval')
    assert result.returncode == 2, result.stderr[-3000:]
    assert 'c.npy: the file has 4 band(s) and the model takes 5' in result.stderr
    assert sorted(os.listdir(band_run / 'out')) == ['a.npy', 'b.tif']
    for name, shape in (('a.npy', (40, 48, 2)), ('b.tif', (33, 45, 2))):
        output = image_files.read_image(str(band_run / 'out' / name))
        assert output.dtype == np.float32 and output.shape == shape
        assert TARGET_RANGE[0] <= output.min() and output.max() <= TARGET_RANGE[1]
        assert output.std() > 0


def test_a_five_band_export_equals_its_checkpoint(band_run):
    source = np.load(band_run / 'data' / 'val' / 'A' / '0.npy')
    # The SavedModel's float signature equals the checkpoint; its serving signature takes
    # the stored uint16 values and gives float32 in the targets' range, as translate does.
    translator = translation.Translator(str(band_run / 'run'), mode='eval')
    export_dir = export_lib.export_saved_model(str(band_run / 'run'), str(band_run / 'sm'))
    exported = translation.Translator(export_dir)
    assert exported.config.input_range == '0,65535' and exported.config.target_dtype == 'float32'
    unit = value_ranges.to_unit_numpy(source[np.newaxis, :32, :32],
                                      value_ranges.side_scaling(translator.config, 'input'))
    np.testing.assert_allclose(exported.run(unit), translator.run(unit), atol=1e-5)
    loaded = tf.saved_model.load(export_dir)
    served = loaded.signatures['serving_default'](images=tf.constant(source[np.newaxis]))
    np.testing.assert_allclose(served['translated'][0], translator.translate(source),
                               atol=1e-4 * (TARGET_RANGE[1] - TARGET_RANGE[0]))
    metadata = export_lib.read_metadata(export_dir)
    assert metadata['target_range'] == '-3,7' and metadata['input_dtype'] == 'uint16'


def test_old_configs_without_value_fields_read_as_8_bit():
    config = ml_collections.ConfigDict(dict(input_channels=3, output_channels=3))
    for side in ('input', 'target'):
        assert value_ranges.side_scaling(config, side) == ('uint8', 0, 255)


def test_data_check_reads_array_files(tmp_path):
    from p2p_tf import data
    from p2p_tf.datasets import checking
    root = write_band_dataset(tmp_path / 'data', counts=(('train', 2),))
    report = checking.check(str(root))
    assert report.ok
    assert dict(report.splits[0].modes) == {'5-band uint16': 2, '2-band float32': 2}
    assert '    modes: 5-band uint16 (2); 2-band float32 (2)' in data.report_lines(report)


def test_the_demo_refuses_models_of_other_than_8_bit_pictures(tmp_path):
    from p2p_tf.serving import demo_app
    workdir, _ = make_run_dir(tmp_path / 'run', input_channels=5)
    with pytest.raises(UserError, match="this model's inputs are 5-band uint8; translate"):
        demo_app.check_shows_pictures(translation.Translator(str(workdir)))


def test_a_run_from_before_the_value_fields_resumes_as_8_bit(tmp_path, pair_folder):
    from p2p_tf import workdirs
    from p2p_tf.datasets import layouts
    workdir, _ = make_run_dir(tmp_path / 'old')
    path = workdir / 'config.json'
    recorded = json.loads(path.read_text())
    for name in value_ranges.EIGHT_BIT_FIELDS:
        del recorded[name]
    path.write_text(json.dumps(recorded))
    assert {name: workdirs.read_config(str(workdir))[name]
            for name in value_ranges.EIGHT_BIT_FIELDS} == value_ranges.EIGHT_BIT_FIELDS
    # Resuming it on 8-bit files finds the config unchanged.
    config = value_ranges.resolve(tiny_config(), layouts.split_pairs(str(pair_folder), 'train'))
    workdirs.prepare(config, str(workdir), resumable_changes=())
