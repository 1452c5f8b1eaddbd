"""What a run folder holds, and how to find things in it. The one place that knows the layout:

    WORKDIR/config.json            the resolved config (read back by every later command)
    WORKDIR/checkpoints/ckpt-STEP  training checkpoints (tf.train.CheckpointManager)
    WORKDIR/best/ckpt-STEP         the checkpoint with the best evaluation score so far
    WORKDIR/best/best.json         its step, split and scores
    WORKDIR/logs/train, logs/eval  TensorBoard summaries
    WORKDIR/eval/...               reports of `python -m p2p_tf.evaluate`

The FCN-score segmenter's folder (fcn_dir) has the same config.json and checkpoints/.
"""

import json
import os
import re

import ml_collections
import tensorflow as tf

from p2p_tf import config as config_lib
from p2p_tf.datasets import label_maps
from p2p_tf.errors import UserError
from p2p_tf.nets import models

CONFIG_FILENAME = 'config.json'
CHECKPOINTS = 'checkpoints'
BEST = 'best'  # The folder of the best checkpoint, and `checkpoint='best'` naming it.
BEST_RECORD = 'best.json'
LOGS = 'logs'
EVAL = 'eval'
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
    defaults = config_lib.get_config() if defaults is None else defaults
    return ml_collections.ConfigDict({**defaults.to_dict(), **read_json(path)})


def read_scorer_config(fcn_dir: str) -> ml_collections.ConfigDict:
    """The resolved config a FCN-score segmenter saved in fcn_dir, or a UserError if there is
    none. Fields added to the project after it was trained take their (resolved) defaults."""
    from_file = os.path.join(fcn_dir, CONFIG_FILENAME)
    if not os.path.isfile(from_file):
        raise UserError(f'no FCN scorer in {fcn_dir} (no {CONFIG_FILENAME}); train one with '
                        f'`python -m p2p_tf.fcn_score train --fcn_dir={fcn_dir}`')
    return config_lib.resolve_scorer(ml_collections.ConfigDict(read_json(from_file)),
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
    status = tf.train.Checkpoint(generator=generator).restore(path)
    status.expect_partial().assert_existing_objects_matched()
    return generator, config
