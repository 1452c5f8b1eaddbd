"""Train pix2pix: `python -m p2p_tf.train --dataset=facades --workdir=runs/facades`.

Options: `--config=configs/NAME.py` picks a config file (default: the paper's defaults in
p2p_tf/config.py), `--config.FIELD=VALUE` overrides any field, `--data_dir` points at a local
copy of the data. Running again with the same workdir resumes. `--strategy` picks the devices
(p2p_tf/training/distribution.py): several GPUs, several machines through TF_CONFIG, or a TPU.
"""

import os

from absl import flags

from p2p_tf import cli  # Before TensorFlow loads: it quiets its start-up logging.
from p2p_tf import config as config_lib
from p2p_tf.training import peer_watchdog

_CONFIG = cli.define_config_file(
    'config', os.path.join(os.path.dirname(__file__), 'config.py'),
    'Config file with a get_config() (e.g. configs/tiny.py); fields can be overridden with '
    '--config.FIELD=VALUE.')
_WORKDIR = flags.DEFINE_string('workdir', None, 'Folder for checkpoints, logs and the config.',
                               required=True)
_DATASET = flags.DEFINE_string(
    'dataset', None, 'Dataset name (overrides config.dataset): '
    f'{", ".join(config_lib.DATASET_FACTS)}, or {config_lib.FOLDER_DATASET}.')
_DATA_DIR = flags.DEFINE_string('data_dir', None, 'Folder with a local copy of the dataset '
                                '(NAME/ or NAME.tar.gz); default $P2P_TF_DATA_DIR.')
_STRATEGY = flags.DEFINE_enum(
    'strategy', config_lib.AUTO, config_lib.STRATEGIES,
    'tf.distribute strategy: auto (mirrored when more than one GPU is visible, else default), '
    'default (one device), mirrored (all GPUs of this machine), multi_worker (the machines '
    'TF_CONFIG names), tpu.')
_TPU = flags.DEFINE_string('tpu', None, 'With --strategy=tpu: the TPU name or grpc:// address '
                           '(default: the one the environment names).')
_INIT_FROM = flags.DEFINE_string(
    'init_from', None, 'Fine-tune: start the generator from the weights of another run (its '
    'workdir or a checkpoint) or of a paper-mode export; a new run, at step 0 with fresh '
    'optimizers (--config.init_discriminator=true also takes its discriminator). Ignored, with '
    'a warning, when the workdir already has checkpoints.')
_PEER_TIMEOUT = flags.DEFINE_float(
    'peer_timeout', peer_watchdog.DEFAULT_TIMEOUT_SECONDS,
    'With --strategy=multi_worker: seconds to wait for every worker of TF_CONFIG to join.')


def main():
    config = _CONFIG.value
    if _DATASET.value:
        config.dataset = _DATASET.value
    if _INIT_FROM.value:
        config.init_from = _INIT_FROM.value
    # The checks that need no TensorFlow come before it loads, so a mistyped option or
    # dataset is answered at once; train() resolves the rest for the strategy.
    config = config_lib.resolve(config)
    from p2p_tf.training import distribution, pix2pix
    # The strategy comes first: multi-worker collectives must be set up before TensorFlow
    # starts its runtime.
    strategy = distribution.create_strategy(
        _STRATEGY.value, global_batch=config.batch_size, tpu=_TPU.value,
        peer_timeout=_PEER_TIMEOUT.value)
    pix2pix.train(config, _WORKDIR.value, _DATA_DIR.value, strategy=strategy)


def run():
    cli.run(main)


if __name__ == '__main__':
    run()
