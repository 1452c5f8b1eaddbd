"""Image files: which files are images, the order they are listed in, how one is read, and the
checks of headers and pixels that training, evaluation and the data tools share.

Headers are read with Pillow (fast, no TensorFlow); pixels with TensorFlow's decoder, the one
the input pipeline uses, so a file that reads here reads in training.
"""

import os

import numpy as np
from PIL import Image, ImageOps

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


# EXIF orientation tag (0x0112): how a viewer turns the stored pixels upright. 1 is upright;
# 5-8 swap width and height (every phone photo taken in portrait is one of them).
ORIENTATION_TAG = 0x0112
UPRIGHT = 1


def read_header(path):
    """((width, height) as a viewer shows the image, Pillow mode) from an image file's header,
    without decoding the pixels; a UserError naming the file if it cannot be read."""
    try:
        with Image.open(path) as image:
            width, height = image.size
            if file_orientation(image) in (5, 6, 7, 8):
                width, height = height, width
            return (width, height), image.mode
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise UserError(f'cannot read image {path}: {e}') from None


def file_orientation(image):
    """The EXIF orientation (1-8) of an open Pillow image; 1 when it has none. Read from the
    header only: a PNG whose EXIF chunk comes after its pixels counts as upright, since
    finding it would decode the whole file (and a header check must not)."""
    if image.format == 'PNG' and 'exif' not in image.info:
        return UPRIGHT
    orientation = image.getexif().get(ORIENTATION_TAG, UPRIGHT)
    return orientation if orientation in range(1, 9) else UPRIGHT


def orientation(path):
    """The EXIF orientation (1-8) of an image file; 1 when it has none or cannot be read."""
    try:
        with Image.open(path) as image:
            return file_orientation(image)
    except (OSError, SyntaxError, ValueError):
        return UPRIGHT


def upright(pixels, orientation):
    """numpy [H, W, ...] as stored -> as a viewer shows it, for an EXIF orientation 1-8."""
    if orientation in (5, 7):  # Transposed, then turned like 1 (5) or 3 (7).
        pixels, orientation = np.swapaxes(pixels, 0, 1), 1 if orientation == 5 else 3
    turns = {3: 2, 6: -1, 8: 1}  # Counter-clockwise quarter turns.
    if orientation in turns:
        return np.rot90(pixels, turns[orientation])
    if orientation in (2, 4):
        return np.flip(pixels, axis=1 if orientation == 2 else 0)
    return pixels


def upright_png(path):
    """The bytes of a PNG of the file's pixels, turned upright (for the tf.data pipeline)."""
    import io
    with Image.open(path) as image:
        image = ImageOps.exif_transpose(image)
        buffer = io.BytesIO()
        image.save(buffer, format='PNG')
    return buffer.getvalue()


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
    """Image file -> uint8 numpy [H, W, C] with the file's own channel count (1-4), upright as
    a viewer shows it (the EXIF orientation applied)."""
    import tensorflow as tf
    contents = tf.io.read_file(path)
    pixels = np.asarray(tf.io.decode_image(contents, expand_animations=False))
    return np.ascontiguousarray(upright(pixels, orientation(path)))
