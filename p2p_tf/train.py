"""Train pix2pix: `python -m p2p_tf.train --dataset=facades --workdir=runs/facades`.

Options: `--config=configs/NAME.py` picks a config file (default: the paper's defaults in
p2p_tf/config.py), `--config.FIELD=VALUE` overrides any field, `--data_dir` points at a local
copy of the data. Running again with the same workdir resumes.
"""

import os

from p2p_tf import cli  # noqa: I001  (first: it quiets TensorFlow's start-up logging)

from absl import flags

_CONFIG = cli.define_config_file(
    'config', os.path.join(os.path.dirname(__file__), 'config.py'),
    'Config file with a get_config() (e.g. configs/tiny.py); fields can be overridden with '
    '--config.FIELD=VALUE.')
_WORKDIR = flags.DEFINE_string('workdir', None, 'Folder for checkpoints, logs and the config.',
                               required=True)
_DATASET = flags.DEFINE_string('dataset', None, 'Dataset name (overrides config.dataset): '
                               'facades, cityscapes, maps, edges2shoes, edges2handbags, '
                               'night2day, mnist_pairs, or folder.')
_DATA_DIR = flags.DEFINE_string('data_dir', None, 'Folder with a local copy of the dataset '
                                '(NAME/ or NAME.tar.gz); default $P2P_TF_DATA_DIR.')


def main():
    from p2p_tf import training
    config = _CONFIG.value
    if _DATASET.value:
        config.dataset = _DATASET.value
    training.train(config, _WORKDIR.value, _DATA_DIR.value)


def run():
    cli.run(main)


if __name__ == '__main__':
    run()
