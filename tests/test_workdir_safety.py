"""Nothing lost to a mistake or a fault: one training process per workdir, resuming past a
damaged checkpoint, a full disk during a save."""

import io
import json
import os
import socket
import subprocess
import sys

import pytest
import tensorflow as tf

from p2p_tf import workdirs
from p2p_tf.errors import UserError
from p2p_tf.serving import translation
from p2p_tf.training import pix2pix

from conftest import REPO, run_command, tiny_config
from test_training import assert_same_state, run_state, train_folder


def dead_pid():
    """The pid of a process of this host that has exited."""
    process = subprocess.Popen([sys.executable, '-c', 'pass'])
    process.wait()
    return process.pid


def test_a_second_training_process_is_refused_and_a_stale_lock_taken_over(pair_folder,
                                                                          tmp_path, capsys):
    workdir = tmp_path / 'run'
    workdir.mkdir()
    lock = workdir / workdirs.LOCK
    lock.write_text(json.dumps(dict(pid=os.getpid(), host=socket.gethostname())))
    with pytest.raises(UserError, match=f'is being trained by process {os.getpid()} on '
                                        f'{socket.gethostname()}'):
        train_folder(pair_folder, workdir, steps=1)
    assert not (workdir / 'checkpoints').exists() and not (workdir / 'config.json').exists()
    stale = dead_pid()
    lock.write_text(json.dumps(dict(pid=stale, host=socket.gethostname())))
    trainer = train_folder(pair_folder, workdir, steps=1)
    assert int(trainer.step) == 1
    assert f'taking over {lock}, left by process {stale}' in capsys.readouterr().err
    assert not lock.exists()  # Released at the end.


def test_two_train_commands_on_one_workdir(pair_folder, tmp_path):
    """The second of two concurrent `train` commands ends with one line naming the first."""
    workdir = tmp_path / 'run'
    first = subprocess.Popen(
        [sys.executable, '-m', 'p2p_tf.train', '--config=configs/tiny.py', '--dataset=folder',
         f'--data_dir={pair_folder}', f'--workdir={workdir}', '--config.steps=100000'],
        cwd=str(REPO), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in first.stdout:  # The first holds the lock once it trains.
            if line.startswith('step '):
                break
        second = run_command('p2p_tf.train', '--config=configs/tiny.py', '--dataset=folder',
                             f'--data_dir={pair_folder}', f'--workdir={workdir}')
    finally:
        first.kill()
        first.wait()
    assert second.returncode == 2
    last = second.stderr.strip().splitlines()[-1]
    assert last.startswith('p2p_tf.train: error: ') and f'process {first.pid}' in last


def damage(checkpoint):
    """Cuts a checkpoint's data file in half, as a full disk or an interrupted copy leaves it."""
    data, = [name for name in os.listdir(os.path.dirname(checkpoint))
             if name.startswith(os.path.basename(checkpoint) + '.data-')]
    path = os.path.join(os.path.dirname(checkpoint), data)
    with open(path, 'r+b') as f:
        f.truncate(os.path.getsize(path) // 2)


def test_resuming_falls_back_past_a_damaged_checkpoint(pair_folder, tmp_path):
    straight = run_state(train_folder(pair_folder, tmp_path / 'straight', steps=4))
    workdir = tmp_path / 'run'
    train_folder(pair_folder, workdir, steps=3, checkpoint_every=1, keep_checkpoints=5)
    checkpoints = workdir / 'checkpoints'
    damage(str(checkpoints / 'ckpt-3'))
    out = io.StringIO()
    resumed = pix2pix.train(tiny_config(dataset='folder', steps=4, checkpoint_every=1,
                                        keep_checkpoints=5),
                            str(workdir), str(pair_folder), stream=out)
    log = out.getvalue()
    assert f'warning: cannot restore checkpoint {checkpoints / "ckpt-3"}' in log
    assert f'moved it to {checkpoints / "damaged"}' in log
    assert f'resumed from {checkpoints / "ckpt-2"} at step 2' in log
    assert_same_state(straight, run_state(resumed))  # Steps 3 and 4 were trained again.
    kept = sorted(os.listdir(checkpoints / 'damaged'))
    assert kept[0] == 'ckpt-3.data-00000-of-00001' and kept[1] == 'ckpt-3.index'


def test_no_checkpoint_that_restores_is_one_error_naming_them(pair_folder, tmp_path):
    workdir = tmp_path / 'run'
    train_folder(pair_folder, workdir, steps=2, checkpoint_every=1)
    for step in (1, 2):
        damage(str(workdir / 'checkpoints' / f'ckpt-{step}'))
    with pytest.raises(UserError, match='none of the checkpoints in .* restores .*ckpt-2.*ckpt-1'):
        train_folder(pair_folder, workdir, steps=4)


def test_reading_a_damaged_checkpoint_is_one_line(pair_folder, tmp_path):
    workdir = tmp_path / 'run'
    train_folder(pair_folder, workdir, steps=1)
    damage(str(workdir / 'checkpoints' / 'ckpt-1'))
    with pytest.raises(UserError, match='cannot restore checkpoint .*ckpt-1 .*damaged'):
        translation.Translator(str(workdir))
    result = run_command('p2p_tf.export', f'--workdir={workdir}',
                         f'--export_dir={tmp_path / "export"}')
    assert result.returncode == 2 and 'Traceback' not in result.stderr
    assert 'cannot restore checkpoint' in result.stderr.strip().splitlines()[-1]


def test_a_full_disk_during_a_save_is_one_line_and_keeps_the_checkpoints(pair_folder, tmp_path,
                                                                          monkeypatch):
    workdir = tmp_path / 'run'
    train_folder(pair_folder, workdir, steps=2, checkpoint_every=1, keep_checkpoints=5)
    before = sorted(os.listdir(workdir / 'checkpoints'))

    def full(self, checkpoint_number):
        # As TensorFlow's save leaves it when the disk fills: a partial _temp folder.
        os.makedirs(os.path.join(self.directory, f'ckpt-{checkpoint_number}_temp', 'part'))
        raise tf.errors.ResourceExhaustedError(None, None, 'No space left on device')
    monkeypatch.setattr(tf.train.CheckpointManager, 'save', full)
    with pytest.raises(UserError, match=f'the disk is full: cannot save a checkpoint in '
                                        f'{workdir / "checkpoints"}.*intact'):
        train_folder(pair_folder, workdir, steps=4, checkpoint_every=1, keep_checkpoints=5)
    assert sorted(os.listdir(workdir / 'checkpoints')) == before
    assert not (workdir / workdirs.LOCK).exists()
