"""`--dataset=mnist_pairs`: 128x128 outline -> filled-digit pairs built from TFDS `mnist`.

A small translation task for users with little compute. The input (A) is the 2-pixel outline of
a handwritten digit, white on black; the target (B) is the same digit filled in orange and
shaded: brighter towards the top (light from above) and towards the middle of each stroke (a
blurred copy of the digit's mask, so the strokes look rounded), on black. The generator has to
tell the inside of an outline from the outside and paint it with a smooth shade that depends on
the position in the image and in the stroke: a real, if small, image-to-image translation that
trains at 128x128 on 60,000 pairs.

The pairs are written once as side-by-side PNG files (A left, B right, 256x128) into
`train/` (the 60,000 MNIST training digits) and `val/` (the first 1,000 MNIST test digits), and
then read like any other named dataset. TFDS downloads MNIST (11 MB) on first use.
"""

import os
import shutil
import tempfile

import tensorflow as tf

from p2p_tf.errors import UserError

SIZE = 128
OUTLINE_WIDTH = 2  # Pixels, at 128x128.
COLOUR = (1.0, 0.6, 0.2)  # The filled digit's RGB colour at full light.
# Lowest light level: every pixel of the digit keeps at least this share of COLOUR, so the
# target is nonzero exactly on the digit.
AMBIENT = 0.3
BLUR_SIGMA = 3.0  # Pixels; about half a stroke's width at 128x128.


def digit_mask(image):
    """The digit's pixels: uint8 [28, 28, 1] -> float32 [128, 128, 1] of 0 and 1."""
    digit = tf.image.resize(tf.cast(image, tf.float32) / 255.0, [SIZE, SIZE], 'bilinear')
    return tf.cast(digit > 0.5, tf.float32)


def outline_of(mask):
    """Mask pixels within OUTLINE_WIDTH pixels (chessboard distance) of the background:
    mask minus its erosion. The area outside the image counts as background, so the outline is
    closed where the mask touches the edge. float32 [H, W, 1] of 0 and 1 -> the same."""
    window = 2 * OUTLINE_WIDTH + 1
    padded = tf.pad(mask, [[OUTLINE_WIDTH, OUTLINE_WIDTH]] * 2 + [[0, 0]])
    eroded = -tf.nn.max_pool2d(-padded[tf.newaxis], window, 1, 'VALID')[0]
    return mask - eroded


def gaussian_blur(image, sigma):
    """[H, W, 1] float32 -> the same, blurred with a separable Gaussian (zero outside)."""
    radius = int(3 * sigma)
    x = tf.range(-radius, radius + 1, dtype=tf.float32)
    kernel = tf.exp(-0.5 * (x / sigma) ** 2)
    kernel /= tf.reduce_sum(kernel)
    blurred = tf.nn.conv2d(image[tf.newaxis], tf.reshape(kernel, [-1, 1, 1, 1]), 1, 'SAME')
    return tf.nn.conv2d(blurred, tf.reshape(kernel, [1, -1, 1, 1]), 1, 'SAME')[0]


def digit_pair(image):
    """An MNIST digit, uint8 [28, 28, 1] in [0, 255] -> (outline, filled), each uint8
    [128, 128, 3]: the outline white on black, and the digit filled with COLOUR, shaded from
    the top and towards each stroke's middle, on black. Pure TF: works inside Dataset.map."""
    mask = digit_mask(image)
    outline = tf.tile(outline_of(mask), [1, 1, 3])
    from_top = tf.linspace(1.0, 0.0, SIZE)[:, tf.newaxis, tf.newaxis]
    light = 0.5 * from_top + 0.5 * gaussian_blur(mask, BLUR_SIGMA)  # In [0, 1].
    filled = mask * (AMBIENT + (1 - AMBIENT) * light) * tf.constant(COLOUR)
    return (tf.cast(tf.round(255 * outline), tf.uint8),
            tf.cast(tf.round(255 * tf.clip_by_value(filled, 0.0, 1.0)), tf.uint8))


def encoded_pair(example):
    """A TFDS mnist example -> the PNG bytes of its side-by-side pair (A left, B right)."""
    outline, filled = digit_pair(example['image'])
    return tf.image.encode_png(tf.concat([outline, filled], axis=1))


def build(destination, train_count=None, val_count=1000, data_dir=None):
    """Writes `destination/train/N.png` (the first train_count MNIST training digits, all if
    None) and `destination/val/N.png` (the first val_count test digits), N = 1, 2, ..., as
    256x128 side-by-side pairs; returns `destination`. Does nothing if it exists already. The
    files are written into a staging folder that is renamed into place, so an interrupted build
    leaves nothing behind. data_dir: TFDS's data folder (default ~/tensorflow_datasets)."""
    import tensorflow_datasets as tfds  # Only this dataset needs TFDS.
    if os.path.isdir(destination):
        return destination
    parent = os.path.dirname(os.path.abspath(destination))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(dir=parent, prefix='.mnist_pairs-')
    try:
        for split, tfds_split, count in (('train', 'train', train_count),
                                         ('val', 'test', val_count)):
            folder = os.path.join(staging, split)
            os.makedirs(folder)
            try:
                digits = tfds.load('mnist', split=tfds_split, data_dir=data_dir,
                                   shuffle_files=False)
            except Exception as e:  # noqa: BLE001  (TFDS raises many kinds; the user needs one line)
                raise UserError(
                    f'could not get MNIST through TensorFlow Datasets ({type(e).__name__}: '
                    f'{str(e).splitlines()[0] if str(e) else ""}); offline, put a built '
                    'mnist_pairs/ folder in --data_dir, or MNIST in TFDS\'s data dir') from None
            if count is not None:
                digits = digits.take(count)
            encoded = digits.map(encoded_pair, num_parallel_calls=tf.data.AUTOTUNE,
                                 deterministic=True)
            number = 0
            for batch in encoded.batch(256).prefetch(2).as_numpy_iterator():
                for png in batch:
                    number += 1
                    with open(os.path.join(folder, f'{number}.png'), 'wb') as f:
                        f.write(png)
        os.replace(staging, destination)
    finally:
        if os.path.isdir(staging):
            shutil.rmtree(staging)
    return destination
