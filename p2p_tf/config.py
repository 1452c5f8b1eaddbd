"""The run configuration: paper defaults, per-dataset facts, and how a run's config is resolved.

A config flows one way: `get_config()` (the paper's defaults) -> a config file from `configs/`
(optional) -> command-line overrides (`--config.l1_weight=50`) -> `resolve()`, which fills the
fields left at `AUTO` from the dataset's facts (direction, epochs, batch size from the paper's
appendix 6.2) and checks the result. The resolved config is written into the workdir, where
`translate` and later `export` read it back.
"""

import difflib
import importlib.util
import math
import os

import ml_collections

from p2p_tf import image_sizes
from p2p_tf.errors import UserError

# Fields set to AUTO take the dataset's value from DATASET_FACTS when the config is resolved.
AUTO = 'auto'
AUTO_NUMBER = 0

# The split names of a dataset folder or archive, in order; held-out pairs (for samples and
# evaluation) come from the first of EVAL_SPLITS that a dataset has.
SPLITS = ('train', 'val', 'test')
EVAL_SPLITS = ('val', 'test')

# Facts from the pix2pix paper (appendix 6.2) and the authors' reference code: the translation
# direction inside the side-by-side A|B files, and the paper's epochs and batch size.
DATASET_FACTS = {
    'facades': dict(direction='BtoA', epochs=200, batch_size=1),
    'cityscapes': dict(direction='BtoA', epochs=200, batch_size=1),
    'maps': dict(direction='AtoB', epochs=200, batch_size=1),
    'edges2shoes': dict(direction='AtoB', epochs=15, batch_size=4),
    'edges2handbags': dict(direction='AtoB', epochs=15, batch_size=4),
    'night2day': dict(direction='AtoB', epochs=17, batch_size=4),
    # Not in the paper: outline -> filled digit, built from TFDS mnist
    # (p2p_tf/datasets/mnist_pairs.py). One pass over its 60,000 pairs is 60,000 steps of batch 1,
    # in step count close to the paper's facades run (80,000), on an easier task at a quarter of the
    # pixels.
    'mnist_pairs': dict(direction='AtoB', epochs=1, batch_size=1),
}
# The datasets of the pix2pix authors' archives, read through the TFDS builder `pix2pix`.
PIX2PIX_DATASETS = ('facades', 'cityscapes', 'maps', 'edges2shoes', 'edges2handbags',
                    'night2day')
# Built once from TFDS mnist as side-by-side 128x128 pairs (configs/mnist_pairs.py sets the size).
MNIST_PAIRS_DATASET = 'mnist_pairs'
# A folder of the user's own side-by-side pairs (`--dataset=folder --data_dir=PATH`).
FOLDER_DATASET = 'folder'
FOLDER_FACTS = dict(direction='AtoB', epochs=200, batch_size=1)

# Value types of data files, as numpy names them (value_ranges.py says how each scales).
DATA_TYPES = ('uint8', 'uint16', 'uint32', 'int8', 'int16', 'int32', 'float16', 'float32',
              'float64')

# The values of the options beyond the paper (p2p_tf/nets/models.py and losses.py say what
# each does); the first of each is the paper's.
GAN_LOSSES = ('vanilla', 'lsgan', 'hinge')
UPSAMPLINGS = ('transpose', 'resize_conv', 'resize_conv_bilinear')
NORMS = ('batch', 'instance')
UPDATE_ORDERS = ('simultaneous', 'alternating')
NUM_DISCRIMINATORS = (1, 2, 3)

# Receptive field of the PatchGAN -> number of stride-2 layers (paper Sec. 4.4, Fig. 6).
# 1 is the paper's PixelGAN (1x1 convolutions only).
PATCH_SIZES = {1: 0, 16: 1, 34: 2, 70: 3, 142: 4, 286: 5}

# Speed settings (p2p_tf/training/performance.py resolves AUTO for the machine at hand).
PRECISIONS = ('float32', 'mixed_bfloat16', 'mixed_float16')
XLA_SETTINGS = ('on', 'off')
CONVOLUTION_PASS_SETTINGS = ('on', 'off')
SYNC_BATCH_NORM_SETTINGS = ('on', 'off')
# tf.distribute strategies of `train --strategy` (p2p_tf/training/distribution.py).
STRATEGIES = (AUTO, 'default', 'mirrored', 'multi_worker', 'tpu')

# Image metrics of evaluation (p2p_tf/evaluation/metrics.py computes them), and whether a
# higher value is better; best_metric names one of them, or NO_BEST_METRIC to keep no best
# checkpoint.
METRIC_NAMES = ('l1', 'psnr', 'ssim')
HIGHER_IS_BETTER = {'l1': False, 'psnr': True, 'ssim': True}
NO_BEST_METRIC = 'none'


def get_config():
    """The paper's defaults (Isola et al. 2017, Sec. 3 and appendix 6) for labels -> facades.
    The FCN-score segmenter's are in scorer_config.py."""
    config = ml_collections.ConfigDict()

    config.dataset = 'facades'
    config.direction = AUTO  # 'AtoB' or 'BtoA'; AUTO: the dataset's reference direction.
    config.train_split = 'train'
    config.sample_split = AUTO  # Images for TensorBoard grids; AUTO: 'val', else 'test'.
    # For a folder with no train/ split: the share of its pairs held out (seeded) for samples.
    config.val_fraction = 0.1
    # Bands of input and output: any number >= 1 (PNG/JPEG hold 1-4; .npy and TIFF any).
    config.input_channels = 3
    config.output_channels = 3
    # Stored values -> [-1, 1] (p2p_tf/datasets/value_ranges.py): 'LOW,HIGH', or AUTO: the
    # type's range, for uint8 and uint16 only. The types are found in the files when a run
    # starts and recorded (AUTO: uint8, as for runs from before these fields).
    config.input_range = AUTO
    config.target_range = AUTO
    config.input_dtype = AUTO
    config.target_dtype = AUTO

    # Random jitter (paper appendix 6.2): resize to load_size, random crop to image_size, mirror.
    # Either takes one number (a square) or 'HxW' (rectangular training, e.g. image_size
    # '256x512' with load_size '286x572'; a square load_size crops HxW windows from square
    # images). The U-Net's depth follows the shorter side of image_size, a power of two; the
    # longer side must be a multiple of it.
    config.load_size = untyped(286)
    config.image_size = untyped(256)
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
    # Options from pix2pixHD (Wang et al. 2018) and its successors, the paper's setting by
    # default (docs/training.md#beyond-the-paper). The PatchGAN at 1-3 scales (full, 1/2, 1/4
    # resolution; losses averaged):
    config.num_discriminators = 1
    # L1 between D's features on real and generated pairs, added to G's loss (pix2pixHD: 10).
    config.feature_matching_weight = 0.0
    config.gan_loss = 'vanilla'  # One of GAN_LOSSES: the paper's, 'lsgan' or 'hinge'.
    config.upsample = 'transpose'  # One of UPSAMPLINGS: the paper's, or resize then 3x3 conv.
    config.norm = 'batch'  # 'batch' (the paper) or 'instance' (each example's own statistics).
    # 'simultaneous': G and D updated from one forward pass (the TensorFlow tutorial);
    # 'alternating': a D step, then a G step through the updated D (paper Sec. 3.3).
    config.update_order = 'simultaneous'

    # Objective and optimisation (paper Sec. 3.3).
    config.l1_weight = 100.0
    # Weight of the cGAN term; 0 with l1_weight 100 is the paper's "L1 only" ablation (Table 1).
    config.gan_weight = 1.0
    config.learning_rate = 2e-4
    config.beta_1 = 0.5
    config.beta_2 = 0.999
    # The global batch, split evenly over the replicas of a tf.distribute strategy
    # (p2p_tf/training/distribution.py); 0: the paper's batch size for the dataset.
    config.batch_size = AUTO_NUMBER
    config.epochs = float(AUTO_NUMBER)  # 0: the paper's epochs for the dataset.
    # Linear decay of the learning rate to zero over this many extra epochs after `epochs`
    # (the reference code's n_epochs_decay). The paper trains at a constant rate.
    config.decay_epochs = 0.0
    config.steps = 0  # > 0: train exactly this many steps instead of (epochs + decay_epochs).
    config.seed = 0
    # Fine-tuning (`train --init_from`): a new run's generator starts from the weights of
    # another run (its workdir or one of its checkpoints) or of a paper-mode export; the
    # resolved checkpoint is recorded here. '' trains from scratch. init_discriminator also
    # takes the source's discriminator when it has one.
    config.init_from = ''
    config.init_discriminator = False

    # Logging and checkpoints, in steps.
    config.log_every = 100
    config.sample_every = 1000
    config.num_samples = 4
    config.checkpoint_every = 1000
    config.keep_checkpoints = 3

    # Evaluation on held-out pairs during training (p2p_tf/evaluation/scoring.py): L1, PSNR and SSIM
    # every eval_every steps and at the last step, logged to WORKDIR/logs/eval; 0: never.
    config.eval_every = 1000
    config.eval_split = AUTO  # AUTO: 'val', else 'test'; a dataset with neither is not evaluated.
    config.eval_images = 0  # 0: every image of eval_split; N: its first N.
    # The size held-out pairs are resized to for evaluation and samples, N or 'HxW' with sides
    # multiples of 2**depth (the generator is fully convolutional, so a run on crops can be
    # judged on whole images); 0: image_size.
    config.eval_size = untyped(image_sizes.SAME_AS_IMAGE)
    # The metric whose best value so far is kept as a checkpoint in WORKDIR/best (one of
    # METRIC_NAMES: 'l1', 'psnr' or 'ssim'), or NO_BEST_METRIC to keep none.
    config.best_metric = 'l1'

    # BatchNorm statistics over the global batch of all replicas ('on'), or each replica's own
    # ('off'); AUTO: on when a replica sees a batch of 1 (p2p_tf/training/distribution.py says why).
    # Identical with one replica.
    config.sync_batch_norm = AUTO

    # Speed: none of these changes the model or the objective (docs/speed.md).
    config.precision = AUTO  # One of PRECISIONS; AUTO: mixed on GPUs and bfloat16 CPUs.
    config.xla = AUTO  # 'on' or 'off'; AUTO: on for GPUs only.
    config.fused_adam = True  # Adam's update as one fused kernel (same arithmetic).
    # BatchNorm's training-mode calls as one fused kernel each (same arithmetic).
    config.fused_batch_norm = True
    # How convolutions compute their passes in training (p2p_tf/nets/convolution_passes.py;
    # same values): kernel gradients as one matmul each, and the transposed passes on small
    # maps as weight-stationary products. 'on' or 'off'; AUTO: on for CPUs, where each
    # measured faster, off for GPUs and TPUs.
    config.matmul_weight_gradients = untyped(AUTO)
    config.fast_transposed_passes = AUTO
    return config


def untyped(value):
    """The default of a field that takes values of more than one type (a size: a number or
    'HxW'; matmul_weight_gradients: auto, on, off, or true and false as old runs recorded it),
    from a config file, an override or Python: ml_collections otherwise locks a field to its
    first value's type."""
    return ml_collections.FieldReference(value, field_type=object)


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


def check_known_fields(config, defaults, what='config'):
    """Raises UserError naming the first field of `config` that `defaults` lacks, with the
    closest known field as a suggestion."""
    unknown = sorted(set(config) - set(defaults))
    if unknown:
        suggestions = difflib.get_close_matches(unknown[0], list(defaults), n=1)
        hint = f' (did you mean {suggestions[0]!r}?)' if suggestions else ''
        raise UserError(f'unknown {what} field {unknown[0]!r}{hint}')


def resolve(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """Returns a copy of `config` with AUTO fields filled from the dataset's facts, checked.

    This is the first of the two stages of resolving a run's config and needs no TensorFlow,
    so a command answers a mistyped option before TensorFlow loads; the second stage fixes
    the fields that depend on the devices (p2p_tf/training/devices.py). Resolving a resolved
    config returns an equal one.
    """
    check_known_fields(config, get_config())
    values = config.to_dict()
    # A run from before matmul_weight_gradients was a setting recorded it as true or false.
    if isinstance(values['matmul_weight_gradients'], bool):
        values['matmul_weight_gradients'] = 'on' if values['matmul_weight_gradients'] else 'off'
    # One spelling per size (256, not '256x256' or [256, 256]), so that equal runs compare
    # equal and a square run's config.json reads as it always has.
    for name in image_sizes.SIZE_FIELDS:
        if values[name] != image_sizes.SAME_AS_IMAGE:  # eval_size's 0 stays 0 (image_size).
            values[name] = image_sizes.canonical_size(values[name], name)
        values[name] = untyped(values[name])
    config = ml_collections.ConfigDict(values)
    facts = dataset_facts(config.dataset)
    if config.direction == AUTO:
        config.direction = facts['direction']
    if config.batch_size == AUTO_NUMBER:
        config.batch_size = facts['batch_size']
    if config.epochs == AUTO_NUMBER:
        config.epochs = float(facts['epochs'])
    check(config)
    return config


# The values for which each numeric field means something (not the useful ones): field ->
# (lowest, whether it is allowed, highest or None, whether it is allowed). The *_every fields
# take 0 for never, except log_every.
RANGES = {
    'val_fraction': (0, False, 1, False), 'cache_megabytes': (0, True, None, False),
    'generator_filters': (1, True, None, False), 'discriminator_filters': (1, True, None, False),
    'dropout_rate': (0, True, 1, False), 'l1_weight': (0, True, None, False),
    'gan_weight': (0, True, None, False), 'learning_rate': (0, False, None, False),
    'beta_1': (0, True, 1, False), 'beta_2': (0, True, 1, False),
    'batch_size': (1, True, None, False), 'epochs': (0, True, None, False),
    'decay_epochs': (0, True, None, False), 'steps': (0, True, None, False),
    'seed': (0, True, None, False), 'log_every': (1, True, None, False),
    'sample_every': (0, True, None, False), 'num_samples': (1, True, None, False),
    'checkpoint_every': (0, True, None, False), 'keep_checkpoints': (1, True, None, False),
    'eval_every': (0, True, None, False), 'eval_images': (0, True, None, False),
    'feature_matching_weight': (0, True, None, False),
}
CHOICES = {
    'direction': ('AtoB', 'BtoA'), 'patch_size': tuple(PATCH_SIZES),
    'input_dtype': (AUTO,) + DATA_TYPES, 'target_dtype': (AUTO,) + DATA_TYPES,
    'precision': (AUTO,) + PRECISIONS,
    'sync_batch_norm': (AUTO,) + SYNC_BATCH_NORM_SETTINGS, 'xla': (AUTO,) + XLA_SETTINGS,
    'matmul_weight_gradients': (AUTO,) + CONVOLUTION_PASS_SETTINGS,
    'fast_transposed_passes': (AUTO,) + CONVOLUTION_PASS_SETTINGS,
    'best_metric': METRIC_NAMES + (NO_BEST_METRIC,), 'gan_loss': GAN_LOSSES,
    'upsample': UPSAMPLINGS, 'norm': NORMS, 'update_order': UPDATE_ORDERS,
    'num_discriminators': NUM_DISCRIMINATORS,
}
FLAGS = ('random_flip', 'random_vertical_flip', 'random_rotate90', 'fused_adam',
         'fused_batch_norm', 'init_discriminator')
SPLIT_FIELDS = ('train_split', 'sample_split', 'eval_split')


def range_text(low, low_allowed, high, high_allowed):
    """'> 0', '>= 1' or 'in [0, 1)'."""
    if high is None:
        return f'{">=" if low_allowed else ">"} {low}'
    return f'in {"[" if low_allowed else "("}{low}, {high}{"]" if high_allowed else ")"}'


def in_range(value, low, low_allowed, high, high_allowed):
    # Written so that NaN, which compares false with everything, is out of every range.
    above = value >= low if low_allowed else value > low
    below = high is None or (value <= high if high_allowed else value < high)
    return above and below


def check(config):
    """Raises UserError naming the first field of a resolved config that cannot work: the
    field, its value and the values it takes."""
    dataset_facts(config.dataset)
    for name, bounds in RANGES.items():
        value = config[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not in_range(
                value, *bounds):
            raise UserError(f'{name} must be {range_text(*bounds)}, got {value!r}')
    for name, choices in CHOICES.items():
        if config[name] not in choices:
            raise UserError(f'{name} must be one of {", ".join(map(str, choices))}, got '
                            f'{config[name]!r}')
    counts = ('input_channels', 'output_channels')
    for name in (name for name in counts if type(config[name]) is not int or config[name] < 1):
        raise UserError(f'{name} must be a whole number >= 1, got {config[name]!r}')
    for name in (name for name in ('input_range', 'target_range') if config[name] != AUTO):
        parse_range(config[name], name)
    for name in FLAGS:
        if not isinstance(config[name], bool):
            raise UserError(f'{name} must be true or false, got {config[name]!r}')
    if not isinstance(config.init_from, str):
        raise UserError(f'init_from must be a path (or empty), got {config.init_from!r}')
    for name in SPLIT_FIELDS:
        if not config[name] or not isinstance(config[name], str):
            raise UserError(f'{name} must be a split name or auto, got {config[name]!r}')
    image_sizes.check(config)
    check_discriminators_fit(config)


def check_discriminators_fit(config):
    """A UserError unless the PatchGAN's smallest scale still sees at least one patch: with L
    stride-2 layers, a side of 3 * 2**L pixels (the two stride-1 4x4 convs take 2 more)."""
    layers = PATCH_SIZES[config.patch_size]
    side = min(image_sizes.image_shape(config))
    fitting = [n for n in NUM_DISCRIMINATORS
               if -(-side // 2 ** (n - 1)) >= (3 * 2 ** layers if layers else 1)]
    if not fitting:
        raise UserError(f'patch_size {config.patch_size} needs image_size >= {3 * 2 ** layers}, '
                        f'got {config.image_size}')
    if config.num_discriminators not in fitting:
        raise UserError(f'num_discriminators must be at most {max(fitting)} for image_size '
                        f'{config.image_size} and patch_size {config.patch_size} (its smallest '
                        f'scale would hold no patch), got {config.num_discriminators}')


def parse_range(text, name):
    """'LOW,HIGH' -> (low, high) floats with low < high; a UserError naming the field
    `name` otherwise."""
    try:
        low, high = (float(part) for part in str(text).split(','))
    except ValueError:
        low = high = math.nan
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise UserError(f'{name} must be LOW,HIGH with LOW < HIGH (e.g. 0,10000), or auto; '
                        f'got {text!r}')
    return low, high


def schedule_steps(config, train_size):
    """(total steps, learning-rate decay steps) of a resolved config on `train_size` pairs."""
    steps_per_epoch = math.ceil(train_size / config.batch_size)
    decay_steps = int(round(config.decay_epochs * steps_per_epoch))
    if config.steps:
        return config.steps, min(decay_steps, config.steps)
    total = int(round((config.epochs + config.decay_epochs) * steps_per_epoch))
    return max(total, 1), decay_steps
