"""The FCN-score segmenter's config (p2p_tf/nets/segmenter.py, p2p_tf/evaluation/fcn_score.py):
its defaults, also the default config file of `python -m p2p_tf.fcn_score`, and how a scorer
config is resolved and checked. The pix2pix runs' own config is config.py.
"""

import ml_collections

from p2p_tf import config as config_lib
from p2p_tf import image_sizes
from p2p_tf.errors import UserError

# Largest colour distance of a label pixel from its palette colour (luma levels, chroma
# counted at a tenth: p2p_tf/datasets/label_maps.py); farther pixels are off-palette. No pixel
# of the 606 facades label halves is farther than 25.2 (JPEG artefacts at edges), so real
# facades report none. Within the palette's luma range (black, greys, pure green) every colour
# is closer than this: there JPEG blends of two palette colours land too, so only colours like
# white are caught.
OFF_PALETTE_TOLERANCE = 28.0


def get_config():
    """The FCN-score segmenter's defaults for facades, 128x128 (also the default config file of
    `python -m p2p_tf.fcn_score`; configs/fcn/facades.py returns them)."""
    config = ml_collections.ConfigDict()
    config.dataset = 'facades'
    # A palette of p2p_tf/datasets/label_maps.py; AUTO: the dataset's name.
    config.palette = config_lib.AUTO
    # Direction of labels -> photo inside the side-by-side files (BtoA: labels on the right),
    # as for pix2pix runs; AUTO: the dataset's (config.DATASET_FACTS).
    config.direction = config_lib.AUTO
    config.train_split = 'train'
    config.off_palette_tolerance = OFF_PALETTE_TOLERANCE

    config.image_size = 128  # Photos are segmented at image_size x image_size.
    # Training photos and class maps are resized to load_size and cropped at random to
    # image_size, the random jitter of pix2pix (paper appendix 6.2: 286 -> 256); 0: that
    # ratio, image_size * 286 // 256. It raised class IoU on facades val from 0.31 to 0.32.
    config.load_size = config_lib.AUTO_NUMBER
    # U-Net poolings (after a stride-2 stem); image_size must be a multiple of 2**(levels + 1).
    config.levels = 4
    config.filters = 16  # Filters of the first level, doubled per level up to 8x.

    config.steps = 2000
    config.batch_size = 8
    config.learning_rate = 2e-3
    config.seed = 0
    config.log_every = 100
    config.checkpoint_every = 500
    return config


def resolve(config, palettes):
    """A copy of the scorer's `config` with AUTO fields filled in, checked: UserError names the
    first field that cannot work. palettes: the names of the known label palettes."""
    defaults = get_config()
    config_lib.check_known_fields(config, defaults, 'scorer config')
    config = ml_collections.ConfigDict({**defaults.to_dict(), **config.to_dict()})
    if config.palette == config_lib.AUTO:
        config.palette = config.dataset
    if config.palette not in palettes:
        raise UserError(f'no label colour palette for {config.palette!r} (palettes: '
                        f'{", ".join(palettes)}); for a dataset whose label maps use one of '
                        'them, set --config.palette')
    if config.direction == config_lib.AUTO:
        config.direction = config_lib.dataset_facts(config.dataset)['direction']
    if config.load_size == config_lib.AUTO_NUMBER:
        config.load_size = config.image_size * 286 // 256
    if config.direction not in ('AtoB', 'BtoA'):
        raise UserError(f"direction must be 'AtoB' or 'BtoA', got {config.direction!r}")
    for name in ('levels', 'filters', 'steps', 'batch_size', 'log_every', 'checkpoint_every'):
        if config[name] < 1:
            raise UserError(f'{name} must be positive, got {config[name]}')
    multiple = 2 ** (config.levels + 1)
    if config.image_size < multiple or config.image_size % multiple:
        raise UserError(f'image_size must be a multiple of 2**(levels + 1) = {multiple}, got '
                        f'{config.image_size}')
    image_sizes.check_crop_fits(config)
    if config.learning_rate <= 0 or config.off_palette_tolerance <= 0:
        raise UserError('learning_rate and off_palette_tolerance must be positive')
    return config
