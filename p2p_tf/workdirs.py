"""What a run folder holds, and how to find things in it. The one place that knows the layout:

    WORKDIR/config.json            the resolved config (read back by every later command)
    WORKDIR/checkpoints/ckpt-STEP  training checkpoints (tf.train.CheckpointManager)
    WORKDIR/best/ckpt-STEP         the checkpoint with the best evaluation score so far
    WORKDIR/best/best.json         its step, split and scores
    WORKDIR/logs/train, logs/eval  TensorBoard summaries
    WORKDIR/eval/...               reports of `python -m p2p_tf.evaluate`
    WORKDIR/train.lock             the pid and host of the training process writing it
    WORKDIR/checkpoints/damaged/   checkpoints that failed to restore, set aside (never deleted)

The FCN-score segmenter's folder (fcn_dir) has the same config.json and checkpoints/.
"""

import errno
import json
import os
import re
import shutil
import socket

import ml_collections
import tensorflow as tf

from p2p_tf import config as config_lib
from p2p_tf import scorer_config
from p2p_tf.datasets import label_maps, value_ranges
from p2p_tf.errors import UserError
from p2p_tf.nets import models

CONFIG_FILENAME = 'config.json'
CHECKPOINTS = 'checkpoints'
BEST = 'best'  # The folder of the best checkpoint, and `checkpoint='best'` naming it.
BEST_RECORD = 'best.json'
LOGS = 'logs'
EVAL = 'eval'
LOCK = 'train.lock'
DAMAGED = 'damaged'
# An export folder's own description of itself (p2p_tf/serving/export.py writes it).
EXPORT_METADATA = os.path.join('assets.extra', 'p2p_tf_metadata.json')


def is_export(path: str) -> bool:
    """Whether `path` is a SavedModel folder (an export), rather than a run or checkpoint."""
    return os.path.isfile(os.path.join(path, 'saved_model.pb'))
# The checkpoint variable holding the training step (training/trainer.py names it `step`).
STEP_KEY = 'step/.ATTRIBUTES/VARIABLE_VALUE'


def checkpoints_dir(workdir: str) -> str:
    return os.path.join(workdir, CHECKPOINTS)


def best_dir(workdir: str) -> str:
    return os.path.join(workdir, BEST)


def logs_dir(workdir: str, name: str) -> str:
    """WORKDIR/logs/NAME: 'train' or 'eval' summaries."""
    return os.path.join(workdir, LOGS, name)


def write_config(config: ml_collections.ConfigDict, workdir: str) -> None:
    """Writes the resolved config to `workdir/config.json` (atomically)."""
    path = os.path.join(workdir, CONFIG_FILENAME)
    with open(path + '.tmp', 'w') as f:
        f.write(config.to_json(indent=2, sort_keys=True) + '\n')
    os.replace(path + '.tmp', path)


def write_json(path: str, value) -> None:
    """Writes `value` as indented JSON to `path` atomically: readers see the old file or the
    new one, never a half-written one."""
    with open(path + '.tmp', 'w') as f:
        json.dump(value, f, indent=2)
        f.write('\n')
    os.replace(path + '.tmp', path)


def read_json(path: str) -> dict:
    """A JSON file of a run folder; a file that is not valid JSON (cut short, hand-edited) is
    a UserError naming it and where it breaks."""
    with open(path) as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as e:
            raise UserError(f'{path} is not valid JSON ({e.msg} at line {e.lineno}, column '
                            f'{e.colno}); fix or restore it') from None


def read_config(workdir: str, defaults=None) -> ml_collections.ConfigDict:
    """The config a run wrote into `workdir`. Fields added to the project after that run take
    their `defaults` (default: the training defaults), which keep the behaviour it had."""
    path = os.path.join(workdir, CONFIG_FILENAME)
    if not os.path.exists(path):
        raise UserError(f'no {CONFIG_FILENAME} in {workdir}: is it the workdir of a training run?')
    recorded = read_json(path)
    if defaults is None:
        # A run from before the value types and ranges were recorded read 8-bit images.
        defaults = ml_collections.ConfigDict(
            {**config_lib.get_config().to_dict(), **value_ranges.EIGHT_BIT_FIELDS})
    return ml_collections.ConfigDict({**defaults.to_dict(), **recorded})


def read_scorer_config(fcn_dir: str) -> ml_collections.ConfigDict:
    """The resolved config a FCN-score segmenter saved in fcn_dir, or a UserError if there is
    none. Fields added to the project after it was trained take their (resolved) defaults."""
    from_file = os.path.join(fcn_dir, CONFIG_FILENAME)
    if not os.path.isfile(from_file):
        raise UserError(f'no FCN scorer in {fcn_dir} (no {CONFIG_FILENAME}); train one with '
                        f'`python -m p2p_tf.fcn_score train --fcn_dir={fcn_dir}`')
    return scorer_config.resolve(ml_collections.ConfigDict(read_json(from_file)),
                                     label_maps.PALETTES)


def prepare(config, workdir, resumable_changes, read_previous=read_config, what='run',
            flag='workdir'):
    """Creates `workdir`, checks that it can be written, refuses one that holds a `what` whose
    config differs from `config` in a field outside `resumable_changes`, and writes `config`
    there. read_previous(workdir): the config saved there; flag: the option naming the
    folder, for the error messages."""
    try:
        os.makedirs(workdir, exist_ok=True)
        probe = os.path.join(workdir, '.write_test')
        with open(probe, 'w'):
            pass
        os.remove(probe)
    except OSError as e:
        raise UserError(f'cannot write to {flag} {workdir}: {e.strerror}') from None
    if os.path.exists(os.path.join(workdir, CONFIG_FILENAME)):
        previous = read_previous(workdir)
        changed = sorted(key for key in set(previous) | set(config)
                         if key not in resumable_changes and previous.get(key) != config.get(key))
        if changed:
            details = ', '.join(f'{k}: {previous.get(k)!r} -> {config.get(k)!r}' for k in changed)
            raise UserError(f'{workdir} holds a {what} with a different config ({details}); '
                            f'use another --{flag} or the same options')
    write_config(config, workdir)


def latest_checkpoint(workdir: str) -> str:
    """Path of the newest checkpoint of a training run, or a UserError naming where it looked."""
    folder = checkpoints_dir(workdir)
    path = tf.train.latest_checkpoint(folder)
    if not path:
        raise UserError(f'no checkpoint in {folder} (nor a config in {workdir} to go with one)'
                        if not os.path.isdir(workdir) else f'no checkpoint in {folder}')
    return path


def find_checkpoint(workdir: str, checkpoint: str | None = None) -> tuple[str, str]:
    """(workdir, checkpoint path) of a training run.

    workdir: the run's workdir, or one of its checkpoints (WORKDIR/checkpoints/ckpt-N);
    checkpoint: a checkpoint to use instead of the latest, or BEST for the best one.
    """
    workdir = os.fspath(workdir)
    if os.path.exists(workdir + '.index'):
        workdir, checkpoint = os.path.dirname(os.path.dirname(workdir)), workdir
    if not os.path.isdir(workdir):
        raise UserError(f'workdir {workdir} does not exist')
    if checkpoint == BEST:
        folder = best_dir(workdir)
        path = tf.train.latest_checkpoint(folder)
        if not path:
            raise UserError(f'no best checkpoint in {folder}: training keeps one when '
                            'eval_every > 0, the data has a val or test split and best_metric '
                            'is not none')
        return workdir, path
    if checkpoint and not os.path.exists(checkpoint + '.index'):
        raise UserError(f'no checkpoint {checkpoint} (expected {checkpoint}.index)')
    return workdir, checkpoint or latest_checkpoint(workdir)


def checkpoint_step(path: str) -> int:
    """The training step a checkpoint was saved at: its `step` variable, or else the number in
    its name (`ckpt-STEP`); -1 when neither is there."""
    reader = tf.train.load_checkpoint(path)
    if reader.has_tensor(STEP_KEY):
        return int(reader.get_tensor(STEP_KEY))
    match = re.search(r'-(\d+)$', path)
    return int(match.group(1)) if match else -1


def load_generator(workdir: str, checkpoint: str | None = None):
    """Rebuilds the generator of a training run from its config.json and restores its weights
    (arguments as `find_checkpoint`). Returns (generator, config)."""
    workdir, path = find_checkpoint(workdir, checkpoint)
    config = read_config(workdir)
    generator = models.generator_from_config(config)
    try:
        status = tf.train.Checkpoint(generator=generator).restore(path)
        status.expect_partial().assert_existing_objects_matched()
    except Exception as e:  # noqa: BLE001  (a damaged file fails in many ways)
        raise UserError(restore_error(path, e)) from None
    return generator, config


def restore_error(path: str, error: Exception) -> str:
    """Why a checkpoint did not restore, in words, for a one-line error."""
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return (f'cannot restore checkpoint {path} ({type(error).__name__}: {reason}); its files '
            'may be damaged (cut short by a full disk or an interrupted copy)')


def set_aside(path: str) -> str:
    """Moves the files of checkpoint `path` into checkpoints/damaged/; returns that folder."""
    folder = os.path.join(os.path.dirname(path), DAMAGED)
    os.makedirs(folder, exist_ok=True)
    prefix = os.path.basename(path)
    for name in os.listdir(os.path.dirname(path)):
        if name == prefix + '.index' or name.startswith(prefix + '.data-'):
            os.replace(os.path.join(os.path.dirname(path), name), os.path.join(folder, name))
    return folder


def restore_newest_good(checkpoint: tf.train.Checkpoint, folder: str, warn,
                        move: bool = True) -> str | None:
    """Restores the newest checkpoint in `folder` that restores, setting each newer one that
    fails aside (set_aside; only if `move`: the workers of a multi-worker run other than the
    chief leave the chief's files alone) with warn(message); returns its path, or None when
    the folder has none. A UserError names the damaged checkpoints when none restores."""
    state = tf.train.get_checkpoint_state(folder)
    if state is None:
        return None
    paths = [path if os.path.isabs(path) else os.path.join(folder, path)
             for path in state.all_model_checkpoint_paths] or [state.model_checkpoint_path]
    damaged = []
    for path in reversed(paths):
        try:
            checkpoint.restore(path).assert_existing_objects_matched()
        except Exception as e:  # noqa: BLE001  (a damaged file fails in many ways)
            damaged.append(path)
            moved = f'moved it to {set_aside(path)}' if move else 'skipping it'
            warn(f'warning: {restore_error(path, e)}; {moved} and trying the one before')
            continue
        kept = paths[:paths.index(path) + 1]
        if damaged and move:
            tf.compat.v1.train.update_checkpoint_state(folder, path,
                                                       all_model_checkpoint_paths=kept)
        return path
    raise UserError(f'none of the checkpoints in {folder} restores ({", ".join(damaged)}; moved '
                    f'to {os.path.join(folder, DAMAGED)}); start a new run in another workdir')


def process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # Someone else's process.
    return True


class TrainingLock:
    """The one writer of a workdir: WORKDIR/train.lock holds the pid and host of the training
    process. A second process gets a UserError naming them; a lock left by a process that no
    longer exists on this host is taken over with warn(message). Readers (translate,
    evaluate, export) never look at it: they read finished checkpoints only.

        with workdirs.TrainingLock(workdir, warn):
            ...  # train
    """

    def __init__(self, workdir: str, warn):
        self.path, self.warn = os.path.join(workdir, LOCK), warn
        self.owner = dict(pid=os.getpid(), host=socket.gethostname())

    def __enter__(self):
        try:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
        except OSError as e:
            raise UserError(f'cannot write to workdir {os.path.dirname(self.path)}: '
                            f'{e.strerror}') from None
        while True:
            try:
                descriptor = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                self.take_over_if_stale()
                continue
            with os.fdopen(descriptor, 'w') as f:
                json.dump(self.owner, f)
            return self

    def take_over_if_stale(self):
        try:
            with open(self.path) as f:
                holder = json.load(f)
        except FileNotFoundError:
            return  # Released meanwhile: try again.
        except (OSError, ValueError):
            holder = {}
        pid, host = holder.get('pid'), holder.get('host')
        if host == self.owner['host'] and isinstance(pid, int) and not process_exists(pid):
            self.warn(f'warning: taking over {self.path}, left by process {pid} on {host}, '
                      'which no longer runs')
            os.remove(self.path)
            return
        raise UserError(f'{os.path.dirname(self.path)} is being trained by process {pid} on '
                        f'{host} ({self.path}); wait for it, or use another --workdir (delete '
                        'the lock file only if that process is gone)')

    def __exit__(self, *exc):
        try:
            os.remove(self.path)
        except FileNotFoundError:
            pass


def remove_partial_save(folder: str, step: int) -> None:
    """Removes what a failed save of ckpt-STEP left (TensorFlow writes it into a _temp folder
    first), so that a full disk is not kept full by it."""
    for name in os.listdir(folder):
        if name.startswith(f'ckpt-{step}_temp'):
            shutil.rmtree(os.path.join(folder, name), ignore_errors=True)


def disk_full_message(folder: str, error: Exception) -> str | None:
    """The one line for a checkpoint save that failed because the disk is full, else None."""
    text = str(error)
    if isinstance(error, tf.errors.ResourceExhaustedError) or 'No space left' in text or (
            isinstance(error, OSError) and error.errno == errno.ENOSPC):
        free = shutil.disk_usage(folder).free if os.path.isdir(folder) else 0
        return (f'the disk is full: cannot save a checkpoint in {folder} ({free // 2**20} MB '
                'free); the earlier checkpoints are intact; free some space and run the same '
                'command again to resume')
    return None
