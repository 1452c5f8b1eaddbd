"""The FCN-score: label colours -> classes, the confusion-matrix scores, the segmenter trained
and scored end to end on generated label maps, and the fcn_score command."""

import io
import json
import re

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from p2p_tf import scorer_config
from p2p_tf.datasets import label_maps, layouts
from p2p_tf.errors import UserError
from p2p_tf.evaluation import fcn_score
from p2p_tf.training import pix2pix, scorer_training

from conftest import run_command, synthetic_label_pair, tiny_config

FACADES_COLOURS = np.array([colour for _, colour in label_maps.PALETTES['facades']], np.uint8)
WHITE = (255, 255, 255)
OFF_PALETTE_PIXELS = 5  # White pixels drawn into val/1.png's label half.


def test_colours_match_the_exact_class_maps_of_the_training_set(shared_data):
    """Nearest colour on the JPEG label halves vs facades_labels. Over all 400 training images
    99.21% of the pixels agree (the worst image 97.45%), no pixel is off-palette; plain RGB
    distance would give 92.99%. Every 20th image here; JPEG artefacts at edges make 100%
    impossible."""
    examples = layouts.split_pairs(shared_data / 'facades', 'train')[::20]
    classes = label_maps.read_pairs(examples, 'BtoA').map(
        lambda labels, photo: label_maps.colours_to_classes(labels, 'facades'))
    agreements = []
    for (path, _), mapped in zip(examples, classes):
        exact_path = str(path).replace('/facades/', '/facades_labels/').replace('.jpg', '.png')
        with Image.open(exact_path) as exact:
            agreements.append(np.mean(mapped.numpy() == np.asarray(exact)))
        assert np.count_nonzero(mapped.numpy() == label_maps.VOID) == 0
    assert len(agreements) == 20
    assert np.mean(agreements) > 0.99 and min(agreements) > 0.97, (np.mean(agreements),
                                                                    min(agreements))


def test_off_palette_pixels_become_void_and_are_counted():
    classes = np.arange(1, 13).reshape(3, 4)
    labels = FACADES_COLOURS[classes - 1].astype(np.int32)
    labels[0, 0] += (12, -9, 6)  # A JPEG-like error stays with its class.
    labels[1, 1] = labels[2, 3] = WHITE  # 31.8 from yellow (luma levels, chroma at a tenth).
    labels = labels.clip(0, 255).astype(np.uint8)
    expected = classes.copy()
    expected[1, 1] = expected[2, 3] = label_maps.VOID

    eager = label_maps.colours_to_classes(labels, 'facades', tolerance=28.0)
    in_map = next(iter(tf.data.Dataset.from_tensors(labels).map(
        lambda image: label_maps.colours_to_classes(image, 'facades', tolerance=28.0))))
    np.testing.assert_array_equal(eager, expected)
    np.testing.assert_array_equal(in_map, expected)
    config = scorer_config.resolve(scorer_config.get_config(), label_maps.PALETTES)
    resized, off_palette = label_maps.true_classes(labels, config, 6)
    assert int(off_palette) == 2
    assert resized.shape == (6, 6) and set(np.unique(resized)) == set(expected.ravel())


def test_scores_from_a_hand_made_confusion():
    # Pixel by pixel (truth, prediction); truth 0 is void. Class c is predicted once but never
    # true; class d is in neither (its one prediction falls on a void pixel).
    truth = np.array([1, 1, 1, 2, 2, 0, 0])
    predicted = np.array([1, 1, 2, 2, 3, 1, 4])
    confusion = fcn_score.confusion_matrix(truth, predicted, 4)
    np.testing.assert_array_equal(confusion, [[2, 1, 0, 0], [0, 1, 1, 0], [0] * 4, [0] * 4])
    scores = fcn_score.scores_from_confusion(confusion, ['a', 'b', 'c', 'd'])
    assert scores['per_pixel_accuracy'] == pytest.approx(3 / 5)
    assert scores['per_class_accuracy'] == pytest.approx((2 / 3 + 1 / 2) / 2)
    iou = scores['per_class_iou']
    assert (iou['a'], iou['b'], iou['c'], iou['d']) == (pytest.approx(2 / 3), pytest.approx(1 / 3),
                                                        0.0, None)
    assert scores['class_iou'] == pytest.approx((2 / 3 + 1 / 3 + 0) / 3)


def test_table_has_the_layout_of_the_papers_table_1():
    scores = dict(per_pixel_accuracy=0.664, per_class_accuracy=0.2349, class_iou=0.17)
    table = fcn_score.format_table([('L1+cGAN', scores), ('Ground truth', scores)])
    lines = table.splitlines()
    assert [cell.strip() for cell in lines[0].strip('|').split('|')] == [
        'Loss', 'Per-pixel acc.', 'Per-class acc.', 'Class IOU']
    assert re.fullmatch(r'\|[-|:]+\|', lines[1])
    assert [cell.strip() for cell in lines[3].strip('|').split('|')] == [
        'Ground truth', '0.66', '0.23', '0.17']


@pytest.fixture(scope='module')
def label_folder(tmp_path_factory):
    """A `folder` dataset of generated 64x64 pairs (labels on the right, as facades): train/
    with 8, val/ with 4; val/1.png has OFF_PALETTE_PIXELS white label pixels. Returns (root,
    true classes of val)."""
    root = tmp_path_factory.mktemp('labels')
    rng = np.random.default_rng(0)
    val_classes = []
    for split, count in (('train', 8), ('val', 4)):
        (root / split).mkdir()
        for number in range(1, count + 1):
            pair, classes = synthetic_label_pair(rng)
            if split == 'val' and number == 1:
                pair[0, 64:64 + OFF_PALETTE_PIXELS] = WHITE
            Image.fromarray(pair).save(root / split / f'{number}.png')
            if split == 'val':
                val_classes.append(classes)
    return root, np.stack(val_classes)


def tiny_scorer_config(**overrides):
    config = scorer_config.get_config()
    config.update(dict(dataset='folder', palette='facades', direction='BtoA', image_size=32,
                       levels=2, filters=8, steps=100, batch_size=4, learning_rate=1e-2,
                       log_every=10))
    config.update(overrides)
    return config


@pytest.fixture(scope='module')
def trained_scorer(label_folder, tmp_path_factory):
    """(fcn_dir, progress output) of a tiny scorer trained on label_folder."""
    root, _ = label_folder
    fcn_dir = tmp_path_factory.mktemp('scorer') / 'fcn'
    output = io.StringIO()
    scorer_training.train_scorer(tiny_scorer_config(), fcn_dir, root, output)
    return fcn_dir, output.getvalue()


def test_scorer_segments_real_photos_far_better_than_chance(label_folder, trained_scorer):
    root, val_classes = label_folder
    fcn_dir, output = trained_scorer
    assert 'step 100/100 loss=' in output
    scores = fcn_score.score_real(fcn_dir, 'val', root)
    assert (scores['images'], scores['off_palette_pixels'], scores['off_palette_images']) == (
        4, OFF_PALETTE_PIXELS, 1)
    # Chance: always answering the most frequent class.
    chance = np.bincount(val_classes.ravel()).max() / val_classes.size
    assert scores['per_pixel_accuracy'] > chance + 0.15, (scores, chance)
    assert scores['class_iou'] > 0.2, scores
    assert set(scores['per_class_iou']) == set(label_maps.class_names('facades'))


def test_a_finished_scorer_is_reused_and_another_config_refused(label_folder, trained_scorer):
    root, _ = label_folder
    fcn_dir, _ = trained_scorer
    output = io.StringIO()
    scorer_training.train_scorer(tiny_scorer_config(), fcn_dir, root, output)
    assert output.getvalue() == f'{fcn_dir} holds a scorer trained for 100 steps\n'
    with pytest.raises(UserError, match='different config.*image_size: 32 -> 64'):
        scorer_training.train_scorer(tiny_scorer_config(image_size=64), fcn_dir, root, output)


@pytest.fixture(scope='module')
def tiny_run(label_folder, tmp_path_factory):
    """A 4-step labels -> photo pix2pix run at 64x64 on label_folder (the scorer works at 32)."""
    root, _ = label_folder
    workdir = tmp_path_factory.mktemp('pix2pix') / 'run'
    config = tiny_config(dataset='folder', direction='BtoA', image_size=64, load_size=72)
    pix2pix.train(config, workdir, root, io.StringIO())
    return workdir


def test_score_run_scores_each_translation_reproducibly(label_folder, trained_scorer, tiny_run):
    root, _ = label_folder
    fcn_dir, _ = trained_scorer
    scores = fcn_score.score_run(fcn_dir, tiny_run, 'val', root)
    assert scores['images'] == 4 and scores['off_palette_pixels'] == OFF_PALETTE_PIXELS
    for name in ('per_pixel_accuracy', 'per_class_accuracy', 'class_iou'):
        assert 0 <= scores[name] <= 1
    assert all(0 <= value <= 1 for value in scores['per_class_iou'].values()
               if value is not None)
    assert fcn_score.score_run(fcn_dir, tiny_run, 'val', root) == scores


def test_bad_input_is_a_user_error(label_folder, trained_scorer, tiny_run, tmp_path):
    root, _ = label_folder
    fcn_dir, _ = trained_scorer
    with pytest.raises(UserError, match='no FCN scorer in'):
        fcn_score.load_scorer(tmp_path)
    with pytest.raises(UserError, match="has no split 'test'"):
        fcn_score.score_real(fcn_dir, 'test', root)
    with pytest.raises(UserError, match='no checkpoint in'):
        fcn_score.score_run(fcn_dir, tmp_path, 'val', root)
    with pytest.raises(UserError, match="no label colour palette for 'maps'"):
        scorer_training.train_scorer(tiny_scorer_config(dataset='maps', palette='auto'), tmp_path)


def test_fcn_score_command_trains_and_evaluates(label_folder, tiny_run, tmp_path):
    root, _ = label_folder
    fcn_dir, report_path = tmp_path / 'fcn', tmp_path / 'scores.json'
    overrides = [f'--config.{name}={value}' for name, value in dict(
        palette='facades', direction='BtoA', image_size=32, levels=2, filters=8, steps=5,
        batch_size=4, log_every=5).items()]
    result = run_command('p2p_tf.fcn_score', 'train', '--dataset=folder', f'--data_dir={root}',
                         f'--fcn_dir={fcn_dir}', *overrides)
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'step 5/5 loss=' in result.stdout
    result = run_command('p2p_tf.fcn_score', 'evaluate', f'--fcn_dir={fcn_dir}',
                         f'--workdir={tiny_run}', f'--data_dir={root}', f'--json={report_path}')
    assert result.returncode == 0, result.stderr[-3000:]
    assert re.search(r'^\| Loss +\| Per-pixel acc\. \| Per-class acc\. \| Class IOU \|$',
                     result.stdout, re.MULTILINE), result.stdout
    assert re.search(r'^\| L1\+cGAN +\|( +[01]\.\d\d \|){3}$', result.stdout, re.MULTILINE)
    assert re.search(r'^\| Ground truth +\|', result.stdout, re.MULTILINE)
    assert f'{OFF_PALETTE_PIXELS} off-palette label pixel(s) in 1 image(s)' in result.stdout
    with open(report_path) as f:
        report = json.load(f)
    assert report['run']['images'] == report['ground_truth']['images'] == 4


def test_an_unknown_command_is_one_error_line():
    result = run_command('p2p_tf.fcn_score', 'segment', '--fcn_dir=x')
    assert result.returncode == 2, result.stderr[-2000:]
    assert 'Traceback' not in result.stderr, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1] == (
        "p2p_tf.fcn_score: error: unknown command 'segment'; commands: train, evaluate")
