"""The run configuration: paper defaults, per-dataset facts, and how a run's config is resolved.

A config flows one way: `get_config()` (the paper's defaults) -> a config file from `configs/`
(optional) -> command-line overrides (`--config.l1_weight=50`) -> `resolve()`, which fills the
fields left at `AUTO` from the dataset's facts (direction, epochs, batch size from the paper's
appendix 6.2) and checks the result. The resolved config is written into the workdir, where
`translate` and later `export` read it back.
"""

import difflib
import importlib.util
import json
import math
import os

import ml_collections

from p2p_tf.errors import UserError

# Fields set to AUTO take the dataset's value from DATASET_FACTS when the config is resolved.
AUTO = 'auto'
AUTO_NUMBER = 0

# Facts from the pix2pix paper (appendix 6.2) and the authors' reference code: the translation
# direction inside the side-by-side A|B files, and the paper's epochs and batch size.
DATASET_FACTS = {
    'facades': dict(direction='BtoA', epochs=200, batch_size=1),
    'cityscapes': dict(direction='BtoA', epochs=200, batch_size=1),
    'maps': dict(direction='AtoB', epochs=200, batch_size=1),
    'edges2shoes': dict(direction='AtoB', epochs=15, batch_size=4),
    'edges2handbags': dict(direction='AtoB', epochs=15, batch_size=4),
    'night2day': dict(direction='AtoB', epochs=17, batch_size=4),
    # Not in the paper: outline -> filled digit, built from TFDS mnist (p2p_tf/mnist_pairs.py).
    # One pass over its 60,000 pairs is 60,000 steps of batch 1, in step count close to the
    # paper's facades run (80,000), on an easier task at a quarter of the pixels.
    'mnist_pairs': dict(direction='AtoB', epochs=1, batch_size=1),
}
# Built once from TFDS mnist as side-by-side 128x128 pairs (configs/mnist_pairs.py sets the size).
MNIST_PAIRS_DATASET = 'mnist_pairs'
# A folder of the user's own side-by-side pairs (`--dataset=folder --data_dir=PATH`).
FOLDER_DATASET = 'folder'
FOLDER_FACTS = dict(direction='AtoB', epochs=200, batch_size=1)

# Receptive field of the PatchGAN -> number of stride-2 layers (paper Sec. 4.4, Fig. 6).
# 1 is the paper's PixelGAN (1x1 convolutions only).
PATCH_SIZES = {1: 0, 16: 1, 34: 2, 70: 3, 142: 4, 286: 5}

# Speed settings (p2p_tf/performance.py resolves AUTO for the machine at hand).
PRECISIONS = ('float32', 'mixed_bfloat16', 'mixed_float16')
XLA_SETTINGS = ('on', 'off')
SYNC_BATCH_NORM_SETTINGS = ('on', 'off')
# tf.distribute strategies of `train --strategy` (p2p_tf/distribution.py).
STRATEGIES = (AUTO, 'default', 'mirrored', 'multi_worker', 'tpu')

# best_metric value that keeps no best checkpoint.
NO_BEST_METRIC = 'none'


def get_config():
    """The paper's defaults (Isola et al. 2017, Sec. 3 and appendix 6) for labels -> facades."""
    config = ml_collections.ConfigDict()

    config.dataset = 'facades'
    config.direction = AUTO  # 'AtoB' or 'BtoA'; AUTO: the dataset's reference direction.
    config.train_split = 'train'
    config.sample_split = AUTO  # Images for TensorBoard grids; AUTO: 'val', else 'test'.
    # For a folder with no train/ split: the share of its pairs held out (seeded) for samples.
    config.val_fraction = 0.1
    config.input_channels = 3
    config.output_channels = 3

    # Random jitter (paper appendix 6.2): resize to load_size, random crop to image_size, mirror.
    config.load_size = 286
    config.image_size = 256
    config.random_flip = True
    # Off by default (not in the paper); for data with no up direction, e.g. aerial photos.
    config.random_vertical_flip = False
    config.random_rotate90 = False
    # Decoded, resized pairs are kept in memory when they take at most this many megabytes.
    config.cache_megabytes = 2048

    # Architecture (paper appendix 6.1). The U-Net depth is log2(image_size).
    config.generator_filters = 64
    config.discriminator_filters = 64
    config.patch_size = 70  # PatchGAN receptive field: one of PATCH_SIZES.
    config.dropout_rate = 0.5

    # Objective and optimisation (paper Sec. 3.3).
    config.l1_weight = 100.0
    # Weight of the cGAN term; 0 with l1_weight 100 is the paper's "L1 only" ablation (Table 1).
    config.gan_weight = 1.0
    config.learning_rate = 2e-4
    config.beta_1 = 0.5
    config.beta_2 = 0.999
    # The global batch, split evenly over the replicas of a tf.distribute strategy
    # (p2p_tf/distribution.py); 0: the paper's batch size for the dataset.
    config.batch_size = AUTO_NUMBER
    config.epochs = float(AUTO_NUMBER)  # 0: the paper's epochs for the dataset.
    # Linear decay of the learning rate to zero over this many extra epochs after `epochs`
    # (the reference code's n_epochs_decay). The paper trains at a constant rate.
    config.decay_epochs = 0.0
    config.steps = 0  # > 0: train exactly this many steps instead of (epochs + decay_epochs).
    config.seed = 0

    # Logging and checkpoints, in steps.
    config.log_every = 100
    config.sample_every = 1000
    config.num_samples = 4
    config.checkpoint_every = 1000
    config.keep_checkpoints = 3

    # Evaluation on held-out pairs during training (p2p_tf/evaluation.py): L1, PSNR and SSIM
    # every eval_every steps and at the last step, logged to WORKDIR/logs/eval; 0: never.
    config.eval_every = 1000
    config.eval_split = AUTO  # AUTO: 'val', else 'test'; a dataset with neither is not evaluated.
    config.eval_images = 0  # 0: every image of eval_split; N: its first N.
    # The metric whose best value so far is kept as a checkpoint in WORKDIR/best (metrics.py
    # METRIC_NAMES: 'l1', 'psnr' or 'ssim'), or NO_BEST_METRIC to keep none.
    config.best_metric = 'l1'

    # BatchNorm statistics over the global batch of all replicas ('on'), or each replica's own
    # ('off'); AUTO: on when a replica sees a batch of 1 (p2p_tf/distribution.py says why).
    # Identical with one replica.
    config.sync_batch_norm = AUTO

    # Speed: none of these changes the model or the objective (README, "Speed").
    config.precision = AUTO  # One of PRECISIONS; AUTO: mixed on GPUs and bfloat16 CPUs.
    config.xla = AUTO  # 'on' or 'off'; AUTO: on for GPUs only.
    config.fused_adam = True  # Adam's update as one fused kernel (same arithmetic).
    # Convolution kernel gradients as one matmul each (p2p_tf/layers.py; same values).
    config.matmul_weight_gradients = True
    return config


def config_file_module(path):
    """The module of a config file (configs/*.py), executed, for files that define more than
    one get_config() (e.g. VARIANTS)."""
    if not os.path.isfile(path):
        raise UserError(f'no config file {path} (run from the repository root, or pass its '
                        'path)')
    spec = importlib.util.spec_from_file_location(os.path.splitext(os.path.basename(path))[0],
                                                  path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def dataset_facts(name):
    if name in DATASET_FACTS:
        return DATASET_FACTS[name]
    if name == FOLDER_DATASET:
        return FOLDER_FACTS
    known = ', '.join(sorted(DATASET_FACTS) + [FOLDER_DATASET])
    raise UserError(f'unknown dataset {name!r}; known datasets: {known}')


def resolve(config):
    """Returns a copy of `config` with AUTO fields filled from the dataset's facts, checked."""
    unknown = sorted(set(config) - set(get_config()))
    if unknown:
        suggestions = difflib.get_close_matches(unknown[0], list(get_config()), n=1)
        hint = f' (did you mean {suggestions[0]!r}?)' if suggestions else ''
        raise UserError(f'unknown config field {unknown[0]!r}{hint}')
    config = ml_collections.ConfigDict(config.to_dict())
    facts = dataset_facts(config.dataset)
    if config.direction == AUTO:
        config.direction = facts['direction']
    if config.batch_size == AUTO_NUMBER:
        config.batch_size = facts['batch_size']
    if config.epochs == AUTO_NUMBER:
        config.epochs = float(facts['epochs'])
    check(config)
    return config


def check(config):
    """Raises UserError naming the first field of a resolved config that cannot work."""
    if config.direction not in ('AtoB', 'BtoA'):
        raise UserError(f"direction must be 'AtoB' or 'BtoA', got {config.direction!r}")
    if config.image_size < 32 or 2 ** unet_depth(config.image_size) != config.image_size:
        raise UserError(f'image_size must be a power of two >= 32, got {config.image_size}')
    if config.load_size < config.image_size:
        raise UserError(f'load_size ({config.load_size}) is smaller than image_size '
                        f'({config.image_size}): the random crop would not fit')
    if config.patch_size not in PATCH_SIZES:
        raise UserError(f'patch_size must be one of {sorted(PATCH_SIZES)}, got {config.patch_size}')
    for name in ('input_channels', 'output_channels'):
        if config[name] not in (1, 3):
            raise UserError(f'{name} must be 1 or 3, got {config[name]}')
    for name in ('batch_size', 'log_every', 'sample_every', 'checkpoint_every',
                 'keep_checkpoints', 'generator_filters', 'discriminator_filters'):
        if config[name] < 1:
            raise UserError(f'{name} must be positive, got {config[name]}')
    if config.steps < 0 or config.epochs < 0 or config.decay_epochs < 0:
        raise UserError('steps, epochs and decay_epochs must not be negative')
    if not 0 < config.val_fraction < 1:
        raise UserError(f'val_fraction must be in (0, 1), got {config.val_fraction}')
    if not 0 <= config.dropout_rate < 1:
        raise UserError(f'dropout_rate must be in [0, 1), got {config.dropout_rate}')
    if config.precision not in PRECISIONS + (AUTO,):
        raise UserError(f'precision must be auto or one of {", ".join(PRECISIONS)}, got '
                        f'{config.precision!r}')
    if config.sync_batch_norm not in SYNC_BATCH_NORM_SETTINGS + (AUTO,):
        raise UserError(f"sync_batch_norm must be 'auto', 'on' or 'off', got "
                        f"{config.sync_batch_norm!r}")
    if config.xla not in XLA_SETTINGS + (AUTO,):
        raise UserError(f"xla must be 'auto', 'on' or 'off', got {config.xla!r}")
    if config.eval_every < 0 or config.eval_images < 0:
        raise UserError('eval_every and eval_images must not be negative')
    if not config.eval_split or not isinstance(config.eval_split, str):
        raise UserError(f'eval_split must be a split name or auto, got {config.eval_split!r}')
    from p2p_tf import metrics  # Imports TensorFlow, which importing this module does not.
    if config.best_metric not in metrics.METRIC_NAMES + (NO_BEST_METRIC,):
        raise UserError(f'best_metric must be one of {", ".join(metrics.METRIC_NAMES)} or '
                        f'{NO_BEST_METRIC}, got {config.best_metric!r}')


def unet_depth(image_size):
    """Number of stride-2 encoder layers of the U-Net for square crops of `image_size`."""
    return int(round(math.log2(image_size)))


def schedule_steps(config, train_size):
    """(total steps, learning-rate decay steps) of a resolved config on `train_size` pairs."""
    steps_per_epoch = math.ceil(train_size / config.batch_size)
    decay_steps = int(round(config.decay_epochs * steps_per_epoch))
    if config.steps:
        return config.steps, min(decay_steps, config.steps)
    total = int(round((config.epochs + config.decay_epochs) * steps_per_epoch))
    return max(total, 1), decay_steps


CONFIG_FILENAME = 'config.json'


def save(config, workdir):
    """Writes the resolved config to `workdir/config.json` (atomically)."""
    path = os.path.join(workdir, CONFIG_FILENAME)
    with open(path + '.tmp', 'w') as f:
        f.write(config.to_json(indent=2, sort_keys=True) + '\n')
    os.replace(path + '.tmp', path)


def load(workdir):
    """Reads the config a run wrote into `workdir`. Fields added to the project after that run
    take their defaults, which keep the behaviour the run had."""
    path = os.path.join(workdir, CONFIG_FILENAME)
    if not os.path.exists(path):
        raise UserError(f'no {CONFIG_FILENAME} in {workdir}: is it the workdir of a training run?')
    with open(path) as f:
        saved = json.load(f)
    return ml_collections.ConfigDict({**get_config().to_dict(), **saved})
