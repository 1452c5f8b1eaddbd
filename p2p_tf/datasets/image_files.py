"""Image files: which files are images, the order they are listed in, how one is read, and the
checks of headers and pixels that training, evaluation and the data tools share.

Headers are read with Pillow (fast, no TensorFlow); pixels with TensorFlow's decoder, the one
the input pipeline uses, so a file that reads here reads in training.
"""

import os

import numpy as np
from PIL import Image

from p2p_tf.errors import UserError, op_error_reason

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.gif')


def list_images(folder):
    """The image files directly in `folder` (by extension), in natural order."""
    names = (f for f in os.listdir(folder) if f.lower().endswith(IMAGE_EXTENSIONS))
    return sorted((os.path.join(folder, f) for f in names), key=natural_key)


def natural_key(path):
    """Sort key that puts 2.jpg before 10.jpg."""
    stem = os.path.splitext(os.path.basename(path))[0]
    return (0, int(stem), '') if stem.isdigit() else (1, 0, stem)


def read_header(path):
    """((width, height), Pillow mode) from an image file's header, without decoding the pixels;
    a UserError naming the file if it cannot be read."""
    try:
        with Image.open(path) as image:
            return image.size, image.mode
    except (OSError, SyntaxError, ValueError) as e:
        raise UserError(f'cannot read image {path}: {e}') from None


def image_size(path):
    """(width, height) from an image file's header, or a UserError naming the file."""
    return read_header(path)[0]


def check_pairs(paths, min_side):
    """Reads each file's header; raises UserError naming the first file that is not a readable
    side-by-side pair (width = 2 x height) with halves of at least min_side pixels."""
    for path in paths:
        width, height = image_size(path)
        if width != 2 * height:
            raise UserError(f'{path} is {width}x{height}: a side-by-side pair must be twice as '
                            'wide as it is high')
        if height < min_side:
            raise UserError(f'{path} has {height}x{height} halves, smaller than the '
                            f'{min_side}x{min_side} crop; lower --config.image_size')


def readable_examples(examples):
    """Splits examples into (those whose files all open, [(path, reason), ...] of the others),
    reading headers only."""
    readable, unreadable = [], []
    for example in examples:
        for path in (path for path in example if path):
            try:
                image_size(path)
            except UserError as e:
                unreadable.append((path, str(e).split(': ', 1)[1]))
                break
        else:
            readable.append(example)
    return readable, unreadable


def check_examples(examples, min_side):
    """check_pairs for side-by-side examples; for separate (a, b) images, that both read and
    have sides of at least min_side. Raises UserError naming the first bad file."""
    check_pairs([a for a, b in examples if not b], min_side)
    for path in (path for a, b in examples if b for path in (a, b)):
        width, height = image_size(path)
        if min(width, height) < min_side:
            raise UserError(f'{path} is {width}x{height}, smaller than the '
                            f'{min_side}x{min_side} crop; lower --config.image_size')


def find_undecodable(paths):
    """Decodes each file fully; returns (path, reason) for the first that fails, else None.

    Used after the input pipeline failed, to name the file (a header can be fine while the
    data is truncated).
    """
    import tensorflow as tf
    for path in paths:
        try:
            tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        except tf.errors.OpError as e:
            return path, op_error_reason(e)
    return None


def undecodable_example(examples):
    """find_undecodable over the files of `examples` ((a, b) path pairs); None for a TFDS data
    source, whose records all decoded when the builder prepared them."""
    if not isinstance(examples, list):
        return None
    return find_undecodable([path for pair in examples for path in pair if path])


def read_image(path):
    """Image file -> uint8 numpy [H, W, C] with the file's own channel count (1-4)."""
    import tensorflow as tf
    contents = tf.io.read_file(path)
    return np.asarray(tf.io.decode_image(contents, expand_animations=False))
