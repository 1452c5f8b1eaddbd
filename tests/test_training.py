"""The training loop: train step, schedule, resume equality, determinism, divergence, signals."""

import io
import os
import re
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from p2p_tf import errors
from p2p_tf.errors import UserError
from p2p_tf.nets import losses
from p2p_tf.training import pix2pix
from p2p_tf.training import trainer as trainer_lib
from p2p_tf.training.progress import Progress

from conftest import REPO, tiny_config, trainer_config


def run_state(trainer):
    """Every variable a checkpoint must carry, as numpy arrays keyed by owner, position and
    name (layer-name prefixes differ between two models built in one process)."""
    state = {'step': trainer.step.numpy()}
    for owner in ('generator', 'discriminator', 'generator_optimizer', 'discriminator_optimizer'):
        for i, variable in enumerate(getattr(trainer, owner).variables):
            state[f'{owner}/{i}/{variable.name.split("_")[-1]}'] = np.asarray(variable)
    return state


def assert_same_state(first, second):
    assert first.keys() == second.keys()
    for key in first:
        np.testing.assert_array_equal(first[key], second[key], err_msg=key)


def train_folder(pair_folder, workdir, **overrides):
    config = tiny_config(dataset='folder', **overrides)
    return pix2pix.train(config, str(workdir), str(pair_folder), stream=io.StringIO())


def test_train_step_returns_the_six_losses():
    config = trainer_config()
    trainer = trainer_lib.Trainer(config, total_steps=10)
    inputs = tf.random.uniform([1, 32, 32, 3], -1, 1, seed=1)
    targets = tf.random.uniform([1, 32, 32, 3], -1, 1, seed=2)
    before = [np.asarray(v) for v in trainer.generator.trainable_variables]
    values = trainer.train_step(inputs, targets)
    assert set(values) == set(trainer_lib.LOSS_NAMES)
    np.testing.assert_allclose(values['gen_total'],
                               values['gen_gan'] + config.l1_weight * values['gen_l1'], rtol=1e-5)
    np.testing.assert_allclose(values['disc'], 0.5 * (values['disc_real'] + values['disc_fake']),
                               rtol=1e-5)
    after = [np.asarray(v) for v in trainer.generator.trainable_variables]
    assert any(not np.array_equal(b, a) for b, a in zip(before, after))
    assert int(trainer.step) == 1 and int(trainer.generator_optimizer.iterations) == 1


def test_a_step_under_an_explicit_strategy_is_the_default_strategys_step():
    inputs = tf.random.uniform([1, 32, 32, 3], -1, 1, seed=1)
    targets = tf.random.uniform([1, 32, 32, 3], -1, 1, seed=2)
    strategy = tf.distribute.OneDeviceStrategy('/cpu:0')
    dataset = tf.data.Dataset.from_tensors((inputs, targets))
    distributed = next(iter(strategy.experimental_distribute_dataset(dataset)))
    results = []
    for run_strategy, batch in ((None, (inputs, targets)), (strategy, distributed)):
        keras.utils.set_random_seed(0)
        trainer = trainer_lib.Trainer(trainer_config(strategy=run_strategy), total_steps=10,
                                      strategy=run_strategy)
        losses = trainer.train_step(*batch)
        results.append(({name: float(value) for name, value in losses.items()},
                        [np.asarray(v) for v in trainer.generator.trainable_variables]))
    (default_losses, default_weights), (losses, weights) = results
    assert losses == pytest.approx(default_losses, rel=1e-6)
    assert int(trainer.step) == 1
    for expected, actual in zip(default_weights, weights):
        np.testing.assert_allclose(actual, expected, atol=1e-6)


def test_linear_decay_schedule():
    schedule = trainer_lib.LinearDecay(2e-4, total_steps=10, decay_steps=4)
    rates = [float(schedule(step)) for step in (0, 6, 8, 10, 12)]
    np.testing.assert_allclose(rates, [2e-4, 2e-4, 1e-4, 0.0, 0.0], atol=1e-12)
    assert float(trainer_lib.LinearDecay(2e-4, 10, 0)(9)) == pytest.approx(2e-4)


def test_resumed_run_equals_uninterrupted_run(pair_folder, tmp_path):
    straight = run_state(train_folder(pair_folder, tmp_path / 'straight', steps=4))
    train_folder(pair_folder, tmp_path / 'resumed', steps=2)
    assert sorted(os.listdir(tmp_path / 'resumed' / 'checkpoints'))[-1] == 'ckpt-2.index'
    resumed = run_state(train_folder(pair_folder, tmp_path / 'resumed', steps=4))
    assert straight['step'] == resumed['step'] == 4
    assert any(key.endswith('/state') for key in straight)  # Dropout RNG states are compared.
    assert any(key.endswith('/momentum') for key in straight)  # So are Adam's moments.
    assert_same_state(straight, resumed)


def test_resume_with_a_different_config_is_refused(pair_folder, tmp_path):
    train_folder(pair_folder, tmp_path, steps=1)
    index = tmp_path / 'checkpoints' / 'ckpt-1.index'
    before = index.read_bytes()
    with pytest.raises(UserError, match='different config.*l1_weight'):
        train_folder(pair_folder, tmp_path, steps=2, l1_weight=10.0)
    assert index.read_bytes() == before
    assert not (tmp_path / 'checkpoints' / 'ckpt-2.index').exists()


def test_non_finite_loss_stops_without_saving(pair_folder, tmp_path, monkeypatch):
    train_folder(pair_folder, tmp_path, steps=2, checkpoint_every=1)

    healthy = losses.generator_loss

    def diverged(*args):
        return tuple(value * float('nan') for value in healthy(*args))

    monkeypatch.setattr(losses, 'generator_loss', diverged)
    with pytest.raises(errors.TrainingError, match='non-finite loss at step 3.*ckpt-2'):
        train_folder(pair_folder, tmp_path, steps=4, checkpoint_every=1)
    assert tf.train.latest_checkpoint(str(tmp_path / 'checkpoints')).endswith('ckpt-2')
    monkeypatch.undo()
    resumed = train_folder(pair_folder, tmp_path, steps=4, checkpoint_every=1,
                           keep_checkpoints=2)
    assert all(np.isfinite(np.asarray(v)).all() for v in resumed.generator.variables)
    # keep_checkpoints=2: the older ones are deleted, the newest two stay.
    assert sorted(name for name in os.listdir(tmp_path / 'checkpoints')
                  if name.endswith('.index')) == ['ckpt-3.index', 'ckpt-4.index']


DETERMINISM_SCRIPT = '''
import io, sys
sys.path.insert(0, 'tests')
from conftest import tiny_config
from p2p_tf.training import pix2pix
trainer = pix2pix.train(tiny_config(dataset='folder', steps=3), sys.argv[1], sys.argv[2],
                         stream=io.StringIO())
print(repr([float(abs(v.numpy()).sum()) for v in trainer.generator.trainable_variables]))
'''


def read_scalars(workdir, tag):
    from tensorboard.backend.event_processing import event_accumulator
    accumulator = event_accumulator.EventAccumulator(str(workdir / 'logs' / 'train'),
                                                     size_guidance={'tensors': 0})
    accumulator.Reload()
    return [float(tf.make_ndarray(event.tensor_proto)) for event in accumulator.Tensors(tag)]


def test_same_seed_gives_identical_runs(pair_folder, tmp_path):
    """Two fresh processes with TF_DETERMINISTIC_OPS=1 give identical losses and weights."""
    outputs = []
    for name in ('first', 'second'):
        result = subprocess.run(
            [sys.executable, '-c', DETERMINISM_SCRIPT, str(tmp_path / name), str(pair_folder)],
            capture_output=True, text=True, cwd=str(REPO), timeout=300,
            env=dict(os.environ, TF_DETERMINISTIC_OPS='1'))
        assert result.returncode == 0, result.stderr[-2000:]
        outputs.append(result.stdout.strip().splitlines()[-1])
    assert outputs[0] == outputs[1]
    first = read_scalars(tmp_path / 'first', 'loss/gen_total')
    assert len(first) == 3 and first == read_scalars(tmp_path / 'second', 'loss/gen_total')


def test_sigterm_saves_a_checkpoint_and_the_run_resumes(pair_folder, tmp_path):
    command = [sys.executable, '-m', 'p2p_tf.train', '--config=configs/tiny.py',
               '--dataset=folder', f'--data_dir={pair_folder}', f'--workdir={tmp_path}',
               '--config.steps=100000', '--config.log_every=1', '--config.checkpoint_every=100000']
    process = subprocess.Popen(command, cwd=str(REPO), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        for line in process.stdout:
            if line.split('/')[0].split() == ['step', '3'] or time.time() > deadline:
                break
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130, stderr[-2000:]
    assert 'Traceback' not in stderr
    saved = tf.train.latest_checkpoint(str(tmp_path / 'checkpoints'))
    assert saved is not None
    saved_step = int(saved.rsplit('-', 1)[1])
    assert saved_step >= 3 and f'at step {saved_step}; saved' in stdout
    resumed = train_folder(pair_folder, tmp_path, steps=saved_step + 1, log_every=1,
                           checkpoint_every=100000)
    assert int(resumed.step) == saved_step + 1


def test_a_truncated_image_is_named(pair_folder, tmp_path):
    bad = pair_folder / 'train' / '7.jpg'
    noise = np.random.default_rng(0).integers(0, 256, (40, 80, 3), dtype=np.uint8)
    Image.fromarray(noise).save(bad, quality=95)
    data = bad.read_bytes()
    bad.write_bytes(data[:len(data) // 2])  # The header survives; the data does not.
    with pytest.raises(UserError, match=f'cannot decode image {bad}'):
        train_folder(pair_folder, tmp_path / 'run', steps=1)


def test_grayscale_input_to_color_output(pair_folder, tmp_path):
    trainer = train_folder(pair_folder, tmp_path, steps=1, input_channels=1, sample_every=1)
    assert trainer.generator.input_shape[-1] == 1 and trainer.generator.output_shape[-1] == 3
    assert trainer.discriminator.input_shape[0][-1] == 1


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_on_a_terminal_and_lines_elsewhere(monkeypatch):
    clock = iter([100.0, 104.0, 104.0])
    monkeypatch.setattr('time.perf_counter', lambda: next(clock))
    monkeypatch.setenv('COLUMNS', '80')
    terminal = FakeTerminal()
    bar = Progress(total_steps=10, batch_size=2, log_every=5, stream=terminal)
    bar.update(5, {'gen_l1': 0.5, 'disc': 0.75})  # The first step shown starts the clock.
    bar.update(9, {'gen_l1': 0.25, 'disc': 0.5})  # 4 steps of 2 images in 4 s; 1 step left.
    bar.bar.refresh()
    redraws = [text for text in terminal.getvalue().split('\r') if text.strip()]
    assert redraws[-1].startswith('9/10 |')
    assert redraws[-1].rstrip().endswith('| gen_l1=0.2500 disc=0.5000 2.00 img/s ETA 00:01')
    assert all(len(text.rstrip('\n')) <= 80 for text in redraws)

    log = io.StringIO()
    lines = Progress(total_steps=10, batch_size=2, log_every=5, stream=log)
    monkeypatch.setattr('time.perf_counter', lambda: 0.0)
    for step in range(1, 11):
        lines.update(step, {'gen_l1': 0.25})
    assert [line.split()[1] for line in log.getvalue().splitlines()] == ['5/10', '10/10']
    assert '\r' not in log.getvalue()


def test_logged_losses_are_means_over_the_log_interval(pair_folder, tmp_path, monkeypatch):
    seen = []
    original = trainer_lib.Trainer.train_step

    def recording_step(self, inputs, targets):
        values = original(self, inputs, targets)
        seen.append(float(values['gen_l1']))
        return values

    monkeypatch.setattr(trainer_lib.Trainer, 'train_step', recording_step)
    train_folder(pair_folder, tmp_path, steps=4, log_every=2)
    logged = read_scalars(tmp_path, 'loss/gen_l1')
    np.testing.assert_allclose(logged, [np.mean(seen[:2]), np.mean(seen[2:])], rtol=1e-6)


def test_an_unreadable_training_image_is_skipped_with_a_warning(pair_folder, tmp_path):
    bad = pair_folder / 'train' / '7.png'
    bad.write_bytes(b'not an image at all')
    log = io.StringIO()
    trainer = pix2pix.train(tiny_config(dataset='folder', steps=1), str(tmp_path),
                             str(pair_folder), stream=log)
    assert int(trainer.step) == 1
    assert f'warning: skipping unreadable image {bad}: ' in log.getvalue()
    assert 'training folder (AtoB, 6 pairs)' in log.getvalue()
    assert read_scalars(tmp_path, 'data/skipped_unreadable_images') == [1.0]


@pytest.mark.parametrize('columns', [80, 50])
def test_the_bar_of_a_training_command_fits_its_terminal(pair_folder, tmp_path, columns):
    """In a pseudo-terminal of `columns` columns no redraw is wider than the terminal, so
    none wraps; the losses that matter most come first."""
    import fcntl
    import pty
    import struct
    import termios
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack('HHHH', 24, columns, 0, 0))
    process = subprocess.Popen(
        [sys.executable, '-m', 'p2p_tf.train', '--config=configs/tiny.py', '--dataset=folder',
         f'--data_dir={pair_folder}', f'--workdir={tmp_path / "run"}', '--config.steps=30',
         # Only the bar is looked at: no periodic samples, evaluation or checkpoints between.
         '--config.sample_every=1000', '--config.eval_every=0', '--config.checkpoint_every=1000'],
        cwd=str(REPO), stdin=follower, stdout=follower, stderr=subprocess.PIPE,
        env=dict(os.environ, COLUMNS=str(columns)))
    os.close(follower)
    output = b''
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # The terminal closes when the process ends.
            break
        if not chunk:
            break
        output += chunk
    assert process.wait(timeout=120) == 0, process.stderr.read()[-2000:]
    text = re.sub(r'\x1b\[[0-9;]*[A-Za-z]', '', output.decode(errors='replace'))
    redraws = [part for line in text.split('\n') for part in line.split('\r') if part.strip()]
    bars = [part for part in redraws if '|' in part and '/30' in part]
    assert bars and bars[-1].lstrip().startswith('30/30 |')
    assert 'gen_l1=' in bars[-1]
    assert max(len(part) for part in redraws if part in bars) <= columns
