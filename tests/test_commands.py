"""End to end: the train and translate commands in subprocesses on configs/tiny.py."""

import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from p2p_tf import native_logs

from conftest import require_shared_data, run_command


def error_line(result):
    """Checks that a command failed on bad input the documented way; returns its error line."""
    assert result.returncode == 2, result.stderr[-2000:]
    assert 'Traceback' not in result.stderr, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert re.match(r'(p2p_tf\.(train|translate|export|evaluate)|p2p-(train|translate)): '
                    r'error: \S', last), (
        result.stderr[-2000:])
    return last


def event_tags(folder):
    """{tag: plugin name} of every summary in the TensorBoard event files under `folder`."""
    tags = {}
    for name in os.listdir(folder):
        for event in tf.compat.v1.train.summary_iterator(os.path.join(folder, name)):
            for value in event.summary.value:
                tags[value.tag] = value.metadata.plugin_data.plugin_name
    return tags


def file_states(folder):
    """{file name: (mtime, contents)} of the files directly in `folder`."""
    paths = (os.path.join(folder, name) for name in os.listdir(folder))
    return {path: (os.stat(path).st_mtime_ns, open(path, 'rb').read())
            for path in paths if os.path.isfile(path)}


@pytest.fixture(scope='module')
def tiny_run(tmp_path_factory):
    """Trains configs/tiny.py on the shared facades; returns (workdir, CompletedProcess)."""
    data_dir = require_shared_data()
    workdir = tmp_path_factory.mktemp('tiny_run') / 'run'
    result = run_command('p2p_tf.train', '--config=configs/tiny.py', f'--data_dir={data_dir}',
                         f'--workdir={workdir}')
    return workdir, result


def test_train_writes_config_checkpoints_and_logs(shared_data, tiny_run):
    workdir, result = tiny_run
    assert result.returncode == 0, result.stderr[-3000:]
    with open(workdir / 'config.json') as f:
        config = json.load(f)
    assert (config['dataset'], config['direction'], config['batch_size']) == ('facades', 'BtoA', 1)
    assert (config['image_size'], config['steps']) == (32, 8)
    checkpoints = os.listdir(workdir / 'checkpoints')
    assert {'ckpt-4.index', 'ckpt-8.index'} <= set(checkpoints)
    tags = event_tags(workdir / 'logs' / 'train')
    for name in ('gen_total', 'gen_gan', 'gen_l1', 'disc', 'disc_real', 'disc_fake'):
        assert tags.get(f'loss/{name}') == 'scalars', sorted(tags)
    assert tags.get('input_target_output') == 'images', sorted(tags)
    # Not a terminal: plain progress lines every log_every (2) steps, no bar.
    lines = result.stdout.splitlines()
    for step in (2, 4, 6, 8):
        assert any(re.match(rf'step {step}/8 .*gen_l1=\S+ .*\d img/s ETA \d+:\d\d$', line)
                   for line in lines), result.stdout
    assert not any(re.match(r'step [1357]/8 ', line) for line in lines), result.stdout
    assert '\r' not in result.stdout and '\x1b' not in result.stdout


def test_translate_writes_paired_strips(shared_data, tiny_run, tmp_path):
    workdir, _ = tiny_run
    out = tmp_path / 'out'
    result = run_command('p2p_tf.translate', f'--workdir={workdir}',
                         f'--input={shared_data}/facades/val/1.jpg', f'--output={out}',
                         '--paired')
    assert result.returncode == 0, result.stderr[-3000:]
    assert os.listdir(out) == ['1.png']
    with Image.open(out / '1.png') as strip:
        assert strip.size == (96, 32) and strip.mode == 'RGB'


def test_translate_keeps_the_size_of_a_label_map(shared_data, tiny_run, tmp_path):
    workdir, _ = tiny_run
    with Image.open(shared_data / 'facades' / 'val' / '1.jpg') as pair:
        pair.crop((256, 0, 512, 256)).save(tmp_path / 'labels.png')  # BtoA: B is the input.
    out = tmp_path / 'out'
    result = run_command('p2p_tf.translate', f'--workdir={workdir}',
                         f'--input={tmp_path / "labels.png"}', f'--output={out}')
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'wrote 1 image(s)' in result.stdout
    with Image.open(out / 'labels.png') as output:
        assert output.size == (256, 256) and output.mode == 'RGB'
        assert np.asarray(output).std() > 0


@pytest.mark.parametrize('args, message', [
    pytest.param(['--config.l1_wieght=5'], 'l1_weight', id='unknown_option'),
    pytest.param(['--foo=1'], 'foo', id='unknown_flag'),
    pytest.param(['--dataset=nope'], 'unknown dataset', id='unknown_dataset'),
    pytest.param(['--data_dir=/nonexistent'], 'data dir /nonexistent does not exist',
                 id='missing_data_dir'),
    pytest.param(['--workdir={tmp}/file.txt/run'], 'cannot write to workdir',
                 id='unwritable_workdir'),
    pytest.param(['--config.learning_rate=-1'], 'learning_rate must be > 0, got -1.0',
                 id='negative_learning_rate'),
    pytest.param(['--config.l1_weight=-5'], 'l1_weight must be >= 0, got -5.0',
                 id='negative_l1_weight'),
])
def test_train_bad_input_is_one_error_line(args, message, shared_data, tmp_path):
    (tmp_path / 'file.txt').write_text('a file, not a folder')
    defaults = {'--data_dir': str(shared_data), '--workdir': str(tmp_path / 'run')}
    given = {arg.split('=')[0] for arg in args}
    args = [arg.format(tmp=tmp_path) for arg in args] + [
        f'{flag}={value}' for flag, value in defaults.items() if flag not in given]
    result = run_command('p2p_tf.train', '--config=configs/tiny.py', *args)
    assert message in error_line(result)
    assert not os.path.exists(tmp_path / 'run' / 'checkpoints')


def test_resuming_with_a_different_config_is_refused(shared_data, tiny_run):
    workdir, result = tiny_run
    assert result.returncode == 0
    before = file_states(workdir / 'checkpoints'), file_states(workdir)
    result = run_command('p2p_tf.train', '--config=configs/tiny.py', '--config.image_size=64',
                         '--config.load_size=72', f'--data_dir={shared_data}',
                         f'--workdir={workdir}')
    line = error_line(result)
    assert 'different config' in line and 'image_size: 32 -> 64' in line
    assert (file_states(workdir / 'checkpoints'), file_states(workdir)) == before


def test_console_script_mirrors_the_module(tmp_path):
    """`p2p-translate` (installed with the package) is the same command as the module."""
    script = os.path.join(os.path.dirname(sys.executable), 'p2p-translate')
    assert os.path.exists(script), 'install the package (pip install -e .) to get p2p-translate'
    result = subprocess.run([script, f'--workdir={tmp_path}', f'--input={tmp_path}',
                             f'--output={tmp_path / "out"}'], capture_output=True, text=True,
                            timeout=120)
    last = error_line(result)
    assert last.startswith('p2p-translate: error:') and 'no checkpoint' in last


def test_translate_skips_a_corrupt_file_and_exits_2_at_the_end(shared_data, tiny_run, tmp_path):
    workdir, _ = tiny_run
    inputs = tmp_path / 'inputs'
    inputs.mkdir()
    with Image.open(shared_data / 'facades' / 'val' / '2.jpg') as pair:
        pair.crop((256, 0, 512, 256)).resize((300, 500)).save(inputs / 'a.png')
    (inputs / 'b.jpg').write_bytes(b'\xff\xd8 not really a jpeg')
    out = tmp_path / 'out'
    result = run_command('p2p_tf.translate', f'--workdir={workdir}', f'--input={inputs}',
                         f'--output={out}', '--mode=eval')
    assert error_line(result).endswith('1 of 2 input(s) could not be translated (warnings above)')
    # TensorFlow's native start-up lines are hidden; the warning and the error are not.
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2 and lines[1] == error_line(result)
    assert lines[0].startswith(f'warning: skipping {inputs / "b.jpg"}: ')
    assert 'wrote 1 image(s)' in result.stdout
    with Image.open(out / 'a.png') as output:
        assert output.size == (300, 500)
    verbose = run_command('p2p_tf.translate', f'--workdir={workdir}', f'--input={inputs}',
                          f'--output={out}', '--mode=eval', '--overwrite',
                          env={native_logs.VERBOSE_ENV: '1'})
    shown = verbose.stderr.splitlines(keepends=True)
    hidden = [line for line in shown if native_logs.STARTUP_NOISE.fullmatch(line)]
    assert [line for line in shown if line not in hidden] == result.stderr.splitlines(
        keepends=True)


def test_a_mistyped_dataset_is_exactly_one_line():
    result = run_command('p2p_tf.train', '--dataset=facdes', '--workdir=unused')
    assert result.returncode == 2 and result.stderr.splitlines() == [
        "p2p_tf.train: error: unknown dataset 'facdes'; known datasets: cityscapes, "
        'edges2handbags, edges2shoes, facades, maps, mnist_pairs, night2day, folder']


def test_the_noise_filter_drops_only_tensorflows_start_up_lines():
    noise = [
        'WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n',
        'I0000 00:00:1796123542.599981   10477 cudart_stub.cc:31] Could not find cuda drivers on '
        'your machine, GPU will not be used.\n',
        'E0000 00:00:1796123545.554157   10477 cuda_platform.cc:52] failed call to cuInit: '
        'INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)\n',
        'I0000 00:00:1796180317.442025   10492 port.cc:153] oneDNN custom operations are on. '
        'You may see slightly different numerical results due to floating-point round-off '
        'errors from different computation orders.\n']
    kept = ['E0000 00:00:1796123545.554157   10477 op_kernel.cc:1830] OP_REQUIRES failed\n',
            'W0000 00:00:1796180317.442025   10492 port.cc:160] some other port message\n',
            'warning: skipping x.jpg: cannot read it\n', 'Traceback (most recent call last):\n']
    assert all(native_logs.STARTUP_NOISE.fullmatch(line) for line in noise)
    assert not any(native_logs.STARTUP_NOISE.fullmatch(line) for line in kept)


def test_a_cut_config_json_is_one_line_naming_it_in_every_command(shared_data, tiny_run,
                                                                   tmp_path):
    workdir, _ = tiny_run
    broken = tmp_path / 'run'
    shutil.copytree(workdir, broken)
    config_path = broken / 'config.json'
    config_path.write_text(config_path.read_text()[:40])  # As an interrupted copy leaves it.
    image = shared_data / 'facades' / 'val' / '1.jpg'
    for command, args in [
            ('p2p_tf.translate', [f'--input={image}', f'--output={tmp_path / "out"}']),
            ('p2p_tf.export', [f'--export_dir={tmp_path / "export"}']),
            ('p2p_tf.evaluate', [f'--data_dir={shared_data}', '--max_images=1']),
            ('p2p_tf.train', ['--config=configs/tiny.py', f'--data_dir={shared_data}'])]:
        line = error_line(run_command(command, f'--workdir={broken}', *args))
        assert f'{config_path} is not valid JSON' in line, (command, line)
