"""The paper's FCN-score of a labels -> photo run (Sec. 4.2), in two steps:

    python -m p2p_tf.fcn_score train --dataset=facades --data_dir=../shared/datasets \
        --fcn_dir=runs/fcn_facades
    python -m p2p_tf.fcn_score evaluate --fcn_dir=runs/fcn_facades --workdir=runs/facades \
        [--split=val] [--checkpoint=PATH] [--json=scores.json]

`train` fits the segmenter to the dataset's real photos (config: --config=configs/fcn/facades.py or
the defaults, get_config() in p2p_tf/scorer_config.py, fields overridden with
--config.FIELD=VALUE; run again to resume). `evaluate` prints the paper's Table 1 layout with the
run's row and the ground-truth row (the real photos).
"""

import json
import os

from absl import flags

from p2p_tf import cli  # Before TensorFlow loads: it quiets its start-up logging.

COMMANDS = ('train', 'evaluate')

_CONFIG = cli.define_config_file(
    'config', os.path.join(os.path.dirname(__file__), 'scorer_config.py'),
    "The scorer's config file (e.g. configs/fcn/facades.py); fields can be overridden with "
    '--config.FIELD=VALUE. train only: evaluate uses the config saved in --fcn_dir.')
_FCN_DIR = flags.DEFINE_string('fcn_dir', None, "Folder of the scorer's config and checkpoint.",
                               required=True)
_DATASET = flags.DEFINE_string('dataset', None, 'train: dataset name (overrides '
                               'config.dataset); it needs a label colour palette.')
_DATA_DIR = flags.DEFINE_string('data_dir', None, 'Folder with a local copy of the dataset '
                                '(NAME/ or NAME.tar.gz), or the folder of --dataset=folder.')
_WORKDIR = flags.DEFINE_string('workdir', None, 'evaluate: workdir of a labels -> photo '
                               'training run (or one of its checkpoints).')
_CHECKPOINT = flags.DEFINE_string('checkpoint', None, 'evaluate: a checkpoint of the run '
                                  '(default: latest).')
_SPLIT = flags.DEFINE_string('split', 'val', 'evaluate: the split whose label maps are '
                             'translated and whose photos are the ground truth.')
_MODE = flags.DEFINE_enum('mode', 'paper', ['paper', 'eval'], 'evaluate: paper (dropout and '
                          'batch statistics, seeded) or eval (Keras inference mode).')
_JSON = flags.DEFINE_string('json', None, 'evaluate: also write the scores to this JSON file.')

# The flags each command reads; giving another is an error rather than silently ignored.
COMMAND_FLAGS = {'train': ('config', 'dataset', 'data_dir', 'fcn_dir'),
                 'evaluate': ('fcn_dir', 'data_dir', 'workdir', 'checkpoint', 'split', 'mode',
                              'json')}


def check_flags(command):
    from p2p_tf.errors import UserError
    own = set().union(*COMMAND_FLAGS.values())
    given = [name for name in flags.FLAGS
             if (name in own or name.startswith('config.')) and flags.FLAGS[name].present]
    foreign = [name for name in given if name.split('.')[0] not in COMMAND_FLAGS[command]]
    if foreign:
        raise UserError(f'--{foreign[0]} does not apply to {command}')
    if command == 'evaluate' and not _WORKDIR.value:
        raise UserError('evaluate needs --workdir, the run to score')


def main(command):
    from p2p_tf.errors import UserError
    from p2p_tf.evaluation import fcn_score
    from p2p_tf.training import scorer_training
    check_flags(command)
    if command == 'train':
        config = _CONFIG.value
        if _DATASET.value:
            config.dataset = _DATASET.value
        scorer_training.train_scorer(config, _FCN_DIR.value, _DATA_DIR.value)
        print(f'the scorer is in {_FCN_DIR.value}')
        return
    report = fcn_score.fcn_report(_FCN_DIR.value, _WORKDIR.value, _SPLIT.value,
                                  _DATA_DIR.value, _CHECKPOINT.value, _MODE.value)
    print(fcn_score.format_report(report))
    if _JSON.value:
        try:
            with open(_JSON.value, 'w') as f:
                json.dump(report, f, indent=2)
                f.write('\n')
        except OSError as e:
            raise UserError(f'cannot write {_JSON.value}: {e.strerror}') from None
        print(f'wrote {_JSON.value}')


def run():
    cli.run(main, COMMANDS)


if __name__ == '__main__':
    run()
