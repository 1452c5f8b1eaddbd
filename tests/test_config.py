"""Config: paper defaults, dataset facts, override precedence, checks, config files."""

import json

import ml_collections
import pytest

from p2p_tf import config as config_lib
from p2p_tf import workdirs
from p2p_tf.errors import UserError

from conftest import REPO


def test_paper_defaults():
    config = config_lib.get_config()
    assert (config.l1_weight, config.learning_rate, config.beta_1) == (100.0, 2e-4, 0.5)
    assert (config.load_size, config.image_size, config.patch_size) == (286, 256, 70)
    assert config.dropout_rate == 0.5 and config.dataset == 'facades'


@pytest.mark.parametrize('dataset, direction, batch_size, epochs', [
    ('facades', 'BtoA', 1, 200), ('cityscapes', 'BtoA', 1, 200), ('maps', 'AtoB', 1, 200),
    ('edges2shoes', 'AtoB', 4, 15), ('edges2handbags', 'AtoB', 4, 15),
    ('night2day', 'AtoB', 4, 17)])
def test_resolve_fills_dataset_facts(dataset, direction, batch_size, epochs):
    config = config_lib.get_config()
    config.dataset = dataset
    resolved = config_lib.resolve(config)
    assert (resolved.direction, resolved.batch_size, resolved.epochs) == (
        direction, batch_size, epochs)
    assert config.direction == config_lib.AUTO  # The input config is not modified.


def test_user_values_win_over_dataset_facts():
    config = config_lib.get_config()
    config.update(dict(dataset='facades', direction='AtoB', batch_size=3, epochs=2.5))
    resolved = config_lib.resolve(config)
    assert (resolved.direction, resolved.batch_size, resolved.epochs) == ('AtoB', 3, 2.5)


@pytest.mark.parametrize('field, value, message', [
    ('dataset', 'nope', 'unknown dataset'), ('direction', 'AtoC', 'direction'),
    ('image_size', 48, 'power of two'), ('load_size', 200, 'smaller than image_size'),
    ('patch_size', 50, 'patch_size'), ('input_channels', 0, 'input_channels'),
    ('input_range', '5,1', 'input_range'), ('target_range', '0,inf', 'target_range'),
    ('batch_size', -1, 'batch_size'), ('dropout_rate', 1.0, 'dropout_rate')])
def test_bad_values_are_user_errors(field, value, message):
    config = config_lib.get_config()
    config[field] = value
    with pytest.raises(UserError, match=message):
        config_lib.resolve(config)


def test_mistyped_field_is_an_error():
    config = config_lib.get_config()
    config.l1_wieght = 5.0
    with pytest.raises(UserError, match="unknown config field 'l1_wieght'.*'l1_weight'"):
        config_lib.resolve(config)


def test_schedule_steps():
    config = config_lib.resolve(config_lib.get_config())
    assert config_lib.schedule_steps(config, 400) == (80000, 0)
    config.update(dict(epochs=100.0, decay_epochs=100.0, batch_size=4))
    assert config_lib.schedule_steps(config, 400) == (20000, 10000)
    config.steps = 50
    assert config_lib.schedule_steps(config, 400) == (50, 50)


def test_save_load_round_trip(tmp_path):
    config = config_lib.resolve(config_lib.get_config())
    workdirs.write_config(config, str(tmp_path))
    assert workdirs.read_config(str(tmp_path)).to_dict() == config.to_dict()
    with pytest.raises(UserError, match='config.json'):
        workdirs.read_config(str(tmp_path / 'missing'))


def test_load_gives_fields_added_later_their_defaults(tmp_path):
    config = config_lib.resolve(config_lib.get_config())
    saved = config.to_dict()
    del saved['gan_weight']  # As written by a run from before the field existed.
    (tmp_path / 'config.json').write_text(json.dumps(saved))
    loaded = workdirs.read_config(str(tmp_path))
    assert loaded.gan_weight == 1.0
    assert loaded.to_dict() == config.to_dict()


@pytest.mark.parametrize('path', sorted((REPO / 'configs').glob('*.py')), ids=lambda p: p.stem)
def test_config_files_resolve(path):
    module = config_lib.config_file_module(str(path))
    resolved = config_lib.resolve(module.get_config())
    assert set(resolved) == set(config_lib.get_config())  # No stray or missing fields.
    assert 'python -m p2p_tf.train' in module.__doc__  # The docstring states its command.


# An invalid value for every field of the config: a field added without a valid range or
# choice list fails test_every_field_has_an_invalid_example until it gets one here.
INVALID = {
    'dataset': 'nope', 'direction': 'AtoC', 'train_split': '', 'sample_split': '',
    'val_fraction': 1.0, 'input_channels': 0, 'output_channels': 2.5, 'load_size': 0,
    'input_range': '0-255', 'target_range': '1,1', 'input_dtype': 'complex64',
    'target_dtype': 'uint9',
    'image_size': 16, 'random_flip': 1, 'random_vertical_flip': 'yes', 'random_rotate90': 0,
    'cache_megabytes': -1, 'generator_filters': 0, 'discriminator_filters': 0,
    'patch_size': 50, 'dropout_rate': 1.0, 'l1_weight': -5.0, 'gan_weight': -0.1,
    'learning_rate': -1.0, 'beta_1': 1.0, 'beta_2': -0.5, 'batch_size': -1,
    'epochs': -1.0, 'decay_epochs': -2.0, 'steps': -1, 'seed': -1, 'log_every': 0,
    'sample_every': -1, 'num_samples': 0, 'checkpoint_every': -1, 'keep_checkpoints': 0,
    'eval_every': -1, 'eval_split': '', 'eval_images': -1, 'eval_size': '256x300',
    'best_metric': 'fid',
    'sync_batch_norm': 'maybe', 'precision': 'float8', 'xla': 'yes', 'fused_adam': 'no',
    'fused_batch_norm': 'no',
    'matmul_weight_gradients': None, 'fast_transposed_passes': 'yes', 'init_from': 3,
    'init_discriminator': 'true',
    'num_discriminators': 0, 'feature_matching_weight': -1.0, 'gan_loss': 'wgan',
    'upsample': 'pixel_shuffle', 'norm': 'layer', 'update_order': 'random',
}


@pytest.mark.parametrize('channels', [1, 2, 3, 4, 5, 13])
def test_any_positive_channel_count_is_valid(channels):
    config = config_lib.get_config()
    config.update(dict(input_channels=channels, output_channels=channels,
                       input_range='-1.5,2e3', target_range='0,10000'))
    resolved = config_lib.resolve(config)
    assert (resolved.input_channels, resolved.output_channels) == (channels, channels)
    assert config_lib.parse_range(resolved.input_range, 'input_range') == (-1.5, 2000.0)


def test_every_field_has_an_invalid_example():
    assert set(INVALID) == set(config_lib.get_config())


@pytest.mark.parametrize('field', sorted(INVALID))
def test_an_invalid_value_of_any_field_is_one_error_naming_it(field):
    config = config_lib.get_config().to_dict()
    config[field] = INVALID[field]  # A plain dict: ConfigDict would refuse some types itself.
    with pytest.raises(UserError, match=f'^(unknown dataset|{field} must be)') as error:
        config_lib.resolve(ml_collections.ConfigDict(config))
    if field in config_lib.RANGES:
        assert repr(INVALID[field]) in str(error.value)
        assert config_lib.range_text(*config_lib.RANGES[field]) in str(error.value)


@pytest.mark.parametrize('field, value', [
    ('learning_rate', 1e-30), ('l1_weight', 0.0), ('gan_weight', 0.0), ('checkpoint_every', 0),
    ('sample_every', 0), ('eval_every', 0), ('dropout_rate', 0.0), ('beta_1', 0.0)])
def test_the_edges_of_the_ranges_are_valid(field, value):
    config = config_lib.get_config()
    config[field] = value
    assert config_lib.resolve(config)[field] == value


def test_nan_is_out_of_every_range():
    config = config_lib.get_config()
    config.learning_rate = float('nan')
    with pytest.raises(UserError, match=r'learning_rate must be > 0, got nan'):
        config_lib.resolve(config)
