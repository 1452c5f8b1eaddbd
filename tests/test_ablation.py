"""The Table 1 experiment end to end on tiny settings: the command, its report and its reuse."""

import json

import numpy as np
import pytest
from PIL import Image

from p2p_tf import config as config_lib
from p2p_tf import scorer_config, workdirs
from p2p_tf.datasets import image_files
from p2p_tf.errors import UserError
from p2p_tf.experiments import table1 as ablation

from conftest import REPO, run_command, synthetic_label_pair

VARIANTS_FILE = '''
from p2p_tf.config import get_config as paper_config

VARIANTS = {'l1': dict(gan_weight=0.0), 'l1_cgan': dict(gan_weight=1.0)}


def get_config(variant='l1_cgan'):
    config = paper_config()
    config.update(dict(dataset='folder', direction='BtoA', image_size=32, load_size=36,
                       generator_filters=8, discriminator_filters=8, steps=3, log_every=1,
                       eval_every=0, num_samples=2))
    config.update(VARIANTS[variant])
    return config
'''
SCORER_FILE = '''
from p2p_tf.scorer_config import get_config as scorer_defaults


def get_config():
    config = scorer_defaults()
    config.update(dict(dataset='folder', palette='facades', direction='BtoA', image_size=128,
                       levels=2, filters=4, steps=6, batch_size=4, log_every=3))
    return config
'''


VAL_IMAGES = 5


@pytest.fixture(scope='module')
def table1(tmp_path_factory):
    """`python -m p2p_tf.table1` on two tiny variants of a folder of generated facades-coloured
    pairs: (folder holding the config files, data/ and runs/; the CompletedProcess)."""
    folder = tmp_path_factory.mktemp('table1')
    (folder / 'variants.py').write_text(VARIANTS_FILE)
    (folder / 'scorer.py').write_text(SCORER_FILE)
    rng = np.random.default_rng(0)
    for split, count in (('train', 6), ('val', VAL_IMAGES)):
        (folder / 'data' / split).mkdir(parents=True)
        for number in range(1, count + 1):
            Image.fromarray(synthetic_label_pair(rng, 40)[0]).save(
                folder / 'data' / split / f'{number}.png')
    result = run_command('p2p_tf.table1', f'--workdir={folder / "runs"}',
                         f'--data_dir={folder / "data"}', f'--config={folder / "variants.py"}',
                         f'--scorer_config={folder / "scorer.py"}')
    return folder, result


def test_the_command_prints_the_papers_table_and_writes_the_report(table1):
    folder, result = table1
    assert result.returncode == 0, result.stderr[-3000:]
    for row in ('L1 ', 'L1+cGAN', 'Ground truth', 'Per-pixel acc.', 'Class IOU'):
        assert row in result.stdout
    report = json.loads((folder / 'runs' / ablation.REPORT_FILENAME).read_text())
    assert list(report['variants']) == ['l1', 'l1_cgan']
    assert [report['variants'][v]['gan_weight'] for v in ('l1', 'l1_cgan')] == [0.0, 1.0]
    # The scorer was trained at the runs' size, not its config file's 128.
    assert report['image_size'] == 32
    scorer_dir = folder / 'runs' / ablation.SCORER_FOLDER
    assert workdirs.read_scorer_config(str(scorer_dir)).image_size == 32
    for scores in [v['fcn_scores'] for v in report['variants'].values()] + [
            report['ground_truth']]:
        assert scores['images'] == VAL_IMAGES
        for name in ('per_pixel_accuracy', 'per_class_accuracy', 'class_iou'):
            assert 0.0 <= scores[name] <= 1.0
    assert all(v['step'] == 3 for v in report['variants'].values())
    # input | L1 | L1+cGAN | target, for the first 4 val images: the runs' 32x32 tiles
    # enlarged 8 times to 256 px.
    samples = image_files.read_image(str(folder / 'runs' / ablation.SAMPLES_FILENAME))
    assert samples.shape == (4 * 256, 4 * 256, 3)
    np.testing.assert_array_equal(samples[::8, ::8], samples[7::8, 7::8])
    assert [v['row'] for v in report['variants'].values()] == ['L1', 'L1+cGAN']


def test_a_second_run_reuses_everything_and_reports_the_same(table1):
    folder, result = table1
    assert result.returncode == 0, result.stderr[-3000:]
    first = json.loads((folder / 'runs' / ablation.REPORT_FILENAME).read_text())
    samples = (folder / 'runs' / ablation.SAMPLES_FILENAME).read_bytes()
    variants, scorer = (config_lib.config_file_module(str(folder / f'{name}.py'))
                        for name in ('variants', 'scorer'))
    second = ablation.run_ablation({v: variants.get_config(v) for v in variants.VARIANTS},
                                   scorer.get_config(), str(folder / 'runs'),
                                   str(folder / 'data'))
    assert second['variants'] == first['variants']
    assert second['ground_truth'] == first['ground_truth']
    assert (folder / 'runs' / ablation.SAMPLES_FILENAME).read_bytes() == samples


def test_variants_of_different_sizes_are_refused(tmp_path):
    small, large = config_lib.get_config(), config_lib.get_config()
    large.update(dict(image_size=64, load_size=72))
    with pytest.raises(UserError, match='one dataset and image size'):
        ablation.run_ablation({'a': small, 'b': large}, scorer_config.get_config(),
                              str(tmp_path))


def test_the_command_names_a_missing_config_file(tmp_path):
    result = run_command('p2p_tf.table1', f'--config={tmp_path / "nope.py"}',
                         f'--workdir={tmp_path}')
    assert result.returncode == 2 and 'Traceback' not in result.stderr
    assert 'no config file' in result.stderr.strip().splitlines()[-1]


def test_table1_config_variants_set_the_papers_weights():
    module = config_lib.config_file_module(str(REPO / 'configs' / 'table1.py'))
    weights = {name: (module.get_config(name).l1_weight, module.get_config(name).gan_weight)
               for name in module.VARIANTS}
    assert weights == {'l1': (100.0, 0.0), 'cgan': (0.0, 1.0), 'l1_cgan': (100.0, 1.0)}
    assert np.unique([module.get_config(n).image_size for n in module.VARIANTS]).size == 1
