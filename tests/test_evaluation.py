"""Evaluation: the evaluate command and library, periodic evaluation during training and the
best checkpoint, on tiny runs trained here."""

import io
import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from p2p_tf import config as config_lib
from p2p_tf import workdirs
from p2p_tf.datasets import examples as examples_lib
from p2p_tf.errors import UserError
from p2p_tf.evaluation import metrics, scoring
from p2p_tf.nets import models
from p2p_tf.training import periodic, pix2pix

from conftest import run_command, tiny_config, write_pairs
from test_training import assert_same_state, run_state

EVAL_OVERRIDES = dict(dataset='folder', steps=4, eval_every=2, checkpoint_every=2)


def train(data_dir, workdir, **overrides):
    """Trains tiny_config on the folder dataset at data_dir; returns (trainer, console text)."""
    log = io.StringIO()
    config = tiny_config(**{**EVAL_OVERRIDES, **overrides})
    return pix2pix.train(config, str(workdir), str(data_dir), stream=log), log.getvalue()


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory):
    """A folder dataset of generated 40x80 pairs: train/ with 6, val/ with 3."""
    root = tmp_path_factory.mktemp('data') / 'pairs'
    write_pairs(root / 'train', 6)
    write_pairs(root / 'val', 3, seed=1)
    return root


@pytest.fixture(scope='module')
def run(data_dir, tmp_path_factory):
    """A 4-step run evaluated on val at steps 2 and 4: (workdir, trainer, console text)."""
    workdir = tmp_path_factory.mktemp('run') / 'run'
    trainer, log = train(data_dir, workdir)
    return workdir, trainer, log


@pytest.fixture(scope='module')
def report(run, data_dir):
    """evaluate_run of the run's latest checkpoint on val, with the defaults."""
    return scoring.evaluate_run(str(run[0]), data_dir=str(data_dir), sheet_images=2)


def scalar_events(folder):
    """{tag: [(step, value), ...]} of the scalar summaries in the event files under folder."""
    events = {}
    for name in sorted(os.listdir(folder)):
        for event in tf.compat.v1.train.summary_iterator(os.path.join(folder, name)):
            for value in event.summary.value:
                events.setdefault(value.tag, []).append(
                    (event.step, float(tf.make_ndarray(value.tensor))))
    return events


def generator_weights(path, config):
    generator = models.generator_from_config(config)
    tf.train.Checkpoint(generator=generator).restore(path).expect_partial()
    return [np.asarray(weight) for weight in generator.weights]


def test_periodic_evaluation_logs_scores_and_keeps_the_best(run, data_dir, tmp_path):
    workdir, trainer, log = run
    events = scalar_events(workdir / 'logs' / 'eval')
    assert sorted(events) == ['eval/l1', 'eval/psnr', 'eval/ssim']
    assert all([step for step, _ in values] == [2, 4] for values in events.values())
    with open(workdir / 'best' / 'best.json') as f:
        best = json.load(f)
    l1_by_step = dict(events['eval/l1'])
    assert best['step'] == min(l1_by_step, key=l1_by_step.get)
    assert (best['metric'], best['split'], best['images']) == ('l1', 'val', 0)
    assert best['value'] == best['l1'] == pytest.approx(l1_by_step[best['step']])
    assert f'eval at step 2 on 3 val images: l1={l1_by_step[2]:.4f} psnr=' in log
    # The best checkpoint is the training checkpoint of its step.
    path = workdirs.find_checkpoint(str(workdir), 'best')[1]
    assert path == str(workdir / 'best' / f'ckpt-{best["step"]}')
    for saved, kept in zip(generator_weights(path, trainer.config),
                           generator_weights(str(workdir / 'checkpoints' / f'ckpt-{best["step"]}'),
                                             trainer.config)):
        np.testing.assert_array_equal(saved, kept)
    # The evaluate command measures what training measured: one implementation.
    report = scoring.evaluate_run(str(workdir), data_dir=str(data_dir), checkpoint='best',
                                     sheet_images=0, output_dir=str(tmp_path / 'best_eval'))
    for name in metrics.METRIC_NAMES:
        assert report['overall'][name] == pytest.approx(best[name], rel=1e-6)


def test_evaluation_does_not_change_the_training_run(run, data_dir, tmp_path):
    _, evaluated, _ = run
    plain, log = train(data_dir, tmp_path, eval_every=0)
    assert 'eval at' not in log and not (tmp_path / 'best').exists()
    assert_same_state(run_state(evaluated), run_state(plain))


def test_evaluate_run_writes_metrics_and_a_contact_sheet(run, report, data_dir, tmp_path):
    workdir, _, _ = run
    assert report['output_dir'] == str(workdir / 'eval' / 'val-step4')
    with open(workdir / 'eval' / 'val-step4' / 'metrics.json') as f:
        written = json.load(f)
    assert written == {key: value for key, value in report.items() if key != 'output_dir'}
    assert {key: written[key] for key in ('workdir', 'checkpoint', 'step', 'dataset', 'split',
                                          'mode', 'image_size', 'count')} == dict(
        workdir=str(workdir), checkpoint=str(workdir / 'checkpoints' / 'ckpt-4'), step=4,
        dataset='folder', split='val', mode='paper', image_size=32, count=3)
    assert [image['name'] for image in written['images']] == ['1.png', '2.png', '3.png']
    for name in metrics.METRIC_NAMES:
        values = [image[name] for image in written['images']]
        assert written['overall'][name] == pytest.approx(np.mean(values))
    assert all(0 < image['l1'] < 2 and image['psnr'] < metrics.PSNR_CAP_DB
               and -1 <= image['ssim'] < 1 for image in written['images'])
    with Image.open(workdir / 'eval' / 'val-step4' / 'contact_sheet.png') as sheet:
        assert sheet.size == (3 * 32, 2 * 32) and sheet.mode == 'RGB'
    text = scoring.format_report(report)
    assert text.splitlines()[2].split()[:3] == ['l1', 'lower', f'{report["overall"]["l1"]:.4f}']
    eval_mode = scoring.evaluate_run(str(workdir), data_dir=str(data_dir), mode='eval',
                                        max_images=2, output_dir=str(tmp_path))
    assert (eval_mode['mode'], eval_mode['count']) == ('eval', 2)
    assert sorted(os.listdir(tmp_path)) == ['contact_sheet.png', 'metrics.json']
    # An explicit folder that holds files is written only with overwrite; the default one is
    # refreshed (above, by the `report` fixture and again here).
    (tmp_path / 'metrics.json').write_text('kept')
    with pytest.raises(UserError, match='holds files already; pass --overwrite'):
        scoring.evaluate_run(str(workdir), data_dir=str(data_dir), max_images=1,
                             output_dir=str(tmp_path))
    assert (tmp_path / 'metrics.json').read_text() == 'kept'
    scoring.evaluate_run(str(workdir), data_dir=str(data_dir), max_images=1,
                         output_dir=str(tmp_path), overwrite=True)
    assert json.loads((tmp_path / 'metrics.json').read_text())['count'] == 1
    assert scoring.evaluate_run(str(workdir), data_dir=str(data_dir))['output_dir'] == str(
        workdir / 'eval' / 'val-step4')
    # Other evaluations of the step do not overwrite the default one.
    assert scoring.default_output_dir('w', 'val', 4, 'eval', 'folder', 2) == os.path.join(
        'w', 'eval', 'folder-val-step4-eval-first2')


def test_scores_are_repeatable_and_leave_the_generator_alone(run, data_dir):
    workdir, _, _ = run
    generator, config = workdirs.load_generator(str(workdir))
    examples = examples_lib.split_examples(config, 'val', str(data_dir))
    before = [np.asarray(variable) for variable in generator.variables]
    evaluator = scoring.Evaluator(generator, 'paper', seed=config.seed)
    first, second = evaluator(examples, config), evaluator(examples, config, max_images=2)
    for name in metrics.METRIC_NAMES:
        np.testing.assert_array_equal(first.per_image[name][:2], second.per_image[name])
    # Dropout is on in paper mode: another seed gives other outputs.
    other = scoring.Evaluator(generator, 'paper', seed=config.seed + 1)(examples, config)
    assert not np.array_equal(first.per_image['l1'], other.per_image['l1'])
    for old, variable in zip(before, generator.variables):
        np.testing.assert_array_equal(old, variable, err_msg=variable.path)


def test_example_names_of_files_and_of_tfds_records():
    assert scoring.example_names([('d/1.jpg', ''), ('A/x.png', 'B/x.jpg')], 2) == [
        '1.jpg', 'x.png']
    records = {0: {'file_name': b'7.jpg'}, 1: {'file_name': b'10.jpg'}}  # As a data source.
    assert scoring.example_names(records, 2) == ['7.jpg', '10.jpg']


def test_the_best_so_far_survives_a_resume(run, data_dir, tmp_path):
    workdir = tmp_path / 'run'
    shutil.copytree(run[0], workdir)
    record_path = workdir / 'best' / 'best.json'
    record = json.loads(record_path.read_text())
    record['value'] = 0.0  # No later evaluation can beat it.
    record_path.write_text(json.dumps(record))
    _, log = train(data_dir, workdir, steps=6)
    assert 'eval at step 6 on 3 val images' in log and 'best l1 so far' not in log
    assert json.loads(record_path.read_text()) == record
    assert tf.train.latest_checkpoint(str(workdir / 'best')).endswith(f'ckpt-{record["step"]}')


def test_a_best_of_another_metric_is_not_carried_over(tmp_path):
    checkpoint = tf.train.Checkpoint(weight=tf.Variable(1.0))
    scores = dict(l1=0.3, psnr=15.0, ssim=0.2)
    first = periodic.BestCheckpoint(checkpoint, str(tmp_path), 'l1', 'val', 0)
    assert first.update(2, scores) and not first.update(4, dict(scores, l1=0.4))
    assert periodic.BestCheckpoint(checkpoint, str(tmp_path), 'l1', 'val', 0).record['step'] == 2
    by_psnr = periodic.BestCheckpoint(checkpoint, str(tmp_path), 'psnr', 'val', 0)
    assert by_psnr.record is None
    assert by_psnr.update(6, dict(scores, psnr=10.0))
    assert json.loads((tmp_path / 'best' / 'best.json').read_text())['metric'] == 'psnr'
    assert os.path.basename(tf.train.latest_checkpoint(str(tmp_path / 'best'))) == 'ckpt-6'
    assert not os.path.exists(tmp_path / 'best' / 'ckpt-2.index')  # One best is kept.


def test_the_eval_split_is_val_else_test(tmp_path):
    config = tiny_config(dataset='folder')
    write_pairs(tmp_path / 'train', 1)
    assert examples_lib.resolve_eval_split(config, str(tmp_path)) is None
    write_pairs(tmp_path / 'test', 1)
    assert examples_lib.resolve_eval_split(config, str(tmp_path)) == 'test'
    write_pairs(tmp_path / 'val', 1)
    assert examples_lib.resolve_eval_split(config, str(tmp_path)) == 'val'
    config.eval_split = 'train'
    assert examples_lib.resolve_eval_split(config, str(tmp_path)) == 'train'


@pytest.mark.parametrize('field, value, message', [
    ('eval_every', -1, 'eval_every'), ('eval_images', -2, 'eval_images'),
    ('best_metric', 'fid', 'best_metric must be one of l1, psnr, ssim, none'),
    ('eval_split', '', 'eval_split')])
def test_bad_evaluation_fields_are_user_errors(field, value, message):
    config = config_lib.get_config()
    config[field] = value
    with pytest.raises(UserError, match=message):
        config_lib.resolve(config)


@pytest.mark.parametrize('arguments, message', [
    (dict(workdir='{tmp}'), 'no checkpoint in'),
    (dict(workdir='{tmp}/missing'), 'does not exist'),
    (dict(split='test'), "has no split 'test'"),
    (dict(dataset='nope'), "unknown dataset 'nope'"),
    (dict(checkpoint='best', workdir='{tmp}/plain'), 'no best checkpoint in'),
])
def test_bad_input_is_a_user_error(arguments, message, run, data_dir, tmp_path):
    plain = tmp_path / 'plain'
    shutil.copytree(run[0] / 'checkpoints', plain / 'checkpoints')
    shutil.copy(run[0] / 'config.json', plain)
    arguments = {key: value.format(tmp=tmp_path) for key, value in arguments.items()}
    arguments = dict(dict(workdir=str(run[0]), data_dir=str(data_dir)), **arguments)
    with pytest.raises(UserError, match=message):
        scoring.evaluate_run(**arguments)


def test_a_truncated_image_is_named(run, data_dir, tmp_path):
    broken = tmp_path / 'broken'
    shutil.copytree(data_dir, broken)
    contents = (broken / 'val' / '2.png').read_bytes()
    (broken / 'val' / '2.png').write_bytes(contents[:len(contents) // 2])
    with pytest.raises(UserError, match=r'cannot decode image .*2\.png'):
        scoring.evaluate_run(str(run[0]), data_dir=str(broken), output_dir=str(tmp_path / 'out'))


def test_a_truncated_image_of_the_eval_split_stops_training_naming_it(data_dir, tmp_path):
    broken = tmp_path / 'broken'
    shutil.copytree(data_dir, broken)
    contents = (broken / 'val' / '3.png').read_bytes()
    (broken / 'val' / '3.png').write_bytes(contents[:len(contents) // 2])
    with pytest.raises(UserError, match=r'cannot decode image .*3\.png'):
        train(broken, tmp_path / 'run')


def test_the_evaluate_command(run, report, data_dir, tmp_path):
    workdir, _, _ = run
    result = run_command('p2p_tf.evaluate', f'--workdir={workdir}', f'--data_dir={data_dir}',
                         '--dataset=folder', '--sheet_images=3', f'--output={tmp_path}')
    assert result.returncode == 0, result.stderr[-3000:]
    with open(tmp_path / 'metrics.json') as f:
        written = json.load(f)
    assert (written['count'], written['step'], written['checkpoint']) == (
        3, 4, str(workdir / 'checkpoints' / 'ckpt-4'))
    lines = result.stdout.splitlines()
    assert lines[0].startswith('3 val images of folder, step 4')
    for name in metrics.METRIC_NAMES:
        row = next(line.split() for line in lines if line.startswith(name + ' '))
        assert float(row[2]) == pytest.approx(written['overall'][name], abs=1e-4)
    assert 'worst 3 by l1:' in lines and lines[-1] == f'wrote {tmp_path}'
    # Another process gives the numbers this one did.
    assert written['images'] == report['images']


def test_the_evaluate_command_reports_bad_input_on_one_line(tmp_path):
    result = run_command('p2p_tf.evaluate', f'--workdir={tmp_path / "missing"}')
    assert result.returncode == 2, result.stderr[-2000:]
    assert 'Traceback' not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f'p2p_tf.evaluate: error: workdir {tmp_path / "missing"} does not exist')
