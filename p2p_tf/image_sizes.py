"""Image sizes of a run's config: image_size, load_size and eval_size, each one number (a
square) or 'HxW' (docs/training.md#rectangular-training), parsed, spelled one way and checked.

The U-Net's depth follows the shorter side of image_size (unet_depth); every size the
generator sees must have sides that are multiples of 2**depth.
"""

import math

from p2p_tf.errors import UserError

# Fields holding a size: one number or 'HxW' (parse_size).
SIZE_FIELDS = ('image_size', 'load_size', 'eval_size')
# eval_size's value for "the image_size".
SAME_AS_IMAGE = 0
# The smallest side the U-Net is built for (5 stride-2 layers).
MIN_IMAGE_SIDE = 32


def check(config):
    """Raises UserError naming the first size field of a resolved config that cannot work,
    with a value that would."""
    check_image_size(config)
    check_crop_fits(config)
    check_eval_size(config)


def parse_size(value, name='image_size'):
    """A size field's value -> (height, width) >= 1: a number (a square), 'HxW' or (H, W); a
    UserError naming the field otherwise."""
    parts = value.lower().split('x') if isinstance(value, str) else (
        list(value) if isinstance(value, (list, tuple)) else [value])
    try:
        shape = [int(part) for part in parts]
        exact = all(not isinstance(part, (bool, float)) or part == int(part) for part in parts)
    except (TypeError, ValueError):
        shape, exact = [], False
    if len(shape) == 1:
        shape *= 2
    if len(shape) != 2 or not exact or min(shape) < 1:
        raise UserError(f'{name} must be a number or HxW (e.g. 256 or 256x512), got {value!r}')
    return tuple(shape)


def size_text(value):
    """(256, 512) or '256x512' -> '256x512'; a square as '256x256'."""
    height, width = parse_size(value)
    return f'{height}x{width}'


def canonical_size(value, name='image_size'):
    """A size in the form a resolved config holds it: a number for a square, else 'HxW'."""
    height, width = parse_size(value, name)
    return height if height == width else f'{height}x{width}'


def image_shape(config):
    """(height, width) of the training crops."""
    return parse_size(config.image_size, 'image_size')


def load_shape(config):
    """(height, width) training pairs are resized to before the random crop."""
    return parse_size(config.load_size, 'load_size')


def eval_shape(config):
    """(height, width) held-out pairs are resized to for evaluation and samples."""
    # An export's config (its metadata) has no eval_size.
    eval_size = config.get('eval_size', SAME_AS_IMAGE)
    if eval_size == SAME_AS_IMAGE:
        return image_shape(config)
    return parse_size(eval_size, 'eval_size')


def check_image_size(config):
    height, width = image_shape(config)
    multiple = 2 ** unet_depth((height, width))
    if min(height, width) < MIN_IMAGE_SIDE or height % multiple or width % multiple:
        short = max(MIN_IMAGE_SIDE, multiple)
        raise UserError(
            f'image_size must be a power of two >= {MIN_IMAGE_SIDE}, or HxW with a power of two '
            f'as the shorter side and a multiple of it as the longer (the U-Net\'s depth follows '
            f'the shorter side), e.g. {short} or {short}x{2 * short}; got '
            f'{size_text(config.image_size) if height != width else height}')
    if config.random_rotate90 and height != width:
        raise UserError(f'random_rotate90 needs a square image_size (a quarter turn of a '
                        f'{height}x{width} crop is {width}x{height}); set '
                        f'--config.random_rotate90=false or image_size={min(height, width)}')


def check_eval_size(config):
    multiple = 2 ** unet_depth(image_shape(config))
    height, width = eval_shape(config)
    if height % multiple or width % multiple:
        raise UserError(f'eval_size must be 0 (image_size) or have sides that are multiples '
                        f'of {multiple} (the U-Net\'s 2**depth for image_size '
                        f'{config.image_size}), e.g. {2 * multiple}; got {config.eval_size!r}')


def check_crop_fits(config):
    (height, width), (load_height, load_width) = image_shape(config), load_shape(config)
    if load_height < height or load_width < width:
        # The paper's ratio of 286 to 256, as a suggestion.
        suggestion = canonical_size((-(-height * 286 // 256), -(-width * 286 // 256)))
        raise UserError(f'load_size ({config.load_size}) is smaller than image_size '
                        f'({config.image_size}): the random crop would not fit; e.g. '
                        f'--config.load_size={suggestion}')


def unet_depth(image_size):
    """Number of stride-2 encoder layers of the U-Net for crops of `image_size` (a number or
    'HxW'): log2 of the shorter side."""
    return int(math.floor(math.log2(max(min(parse_size(image_size)), 1))))
