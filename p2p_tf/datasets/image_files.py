"""Image files: which files hold images, the order they are listed in, how one is read, and the
checks of headers and pixels that training, evaluation and the data tools share.

PNG, JPEG, BMP and GIF images hold 1-4 channels of 8 bits (PNG also 16); `.npy` and TIFF
arrays (array_files.py) any number of bands of any type. Image headers are read with Pillow
(fast, no TensorFlow); image pixels with TensorFlow's decoder, the one the input pipeline
uses, so a file that reads here reads in training.
"""

import os

import numpy as np
from PIL import Image, ImageOps

from p2p_tf.datasets import array_files
from p2p_tf.errors import UserError, op_error_reason

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.gif')
# Every file a dataset folder or `translate` reads.
PIXEL_EXTENSIONS = IMAGE_EXTENSIONS + array_files.ARRAY_EXTENSIONS


def list_images(folder, extensions=PIXEL_EXTENSIONS):
    """The image and array files directly in `folder` (by extension), in natural order."""
    names = (f for f in os.listdir(folder) if f.lower().endswith(extensions))
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
    """(width, height) from an image or array file's header, or a UserError naming the
    file."""
    if array_files.is_array_file(path):
        return array_files.read_header(path).size
    return read_header(path)[0]


def png_bit_depth(path):
    """The bits per sample of a PNG file (from its IHDR chunk: 1, 2, 4, 8 or 16), or None for
    a file that is not a PNG."""
    with open(path, 'rb') as f:
        start = f.read(25)
    if len(start) < 25 or start[:8] != b'\x89PNG\r\n\x1a\n' or start[12:16] != b'IHDR':
        return None
    return start[24]


def band_header(path):
    """array_files.ArrayHeader ((width, height), bands, dtype name) of an image or array file
    from its header: images hold uint8 values, a 16-bit PNG uint16; their bands are those
    TensorFlow decodes (a palette image as RGB). A UserError names a file that cannot be read."""
    if array_files.is_array_file(path):
        return array_files.read_header(path)
    size, mode = read_header(path)
    bands = 3 if mode == 'P' else Image.getmodebands(mode)
    return array_files.ArrayHeader(size, bands,
                                   'uint16' if png_bit_depth(path) == 16 else 'uint8')


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
            if array_files.is_array_file(path):
                array_files.read(path)
            else:
                tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        except tf.errors.OpError as e:
            return path, op_error_reason(e)
        except UserError as e:
            return path, str(e).split(': ', 1)[1]
    return None


def undecodable_example(examples):
    """find_undecodable over the files of `examples` ((a, b) path pairs); None for a TFDS data
    source, whose records all decoded when the builder prepared them."""
    if not isinstance(examples, list):
        return None
    return find_undecodable([path for pair in examples for path in pair if path])


def read_image(path):
    """Image or array file -> numpy [H, W, C] with the file's own channel count: uint8 (1-4
    channels) for images, uint16 for 16-bit PNGs, upright as a viewer shows it (the EXIF
    orientation applied); an array file's bands in its own dtype (array_files.read)."""
    if array_files.is_array_file(path):
        return array_files.read(path)
    import tensorflow as tf
    contents = tf.io.read_file(path)
    if png_bit_depth(path) == 16:
        pixels = np.asarray(tf.io.decode_png(contents, dtype=tf.uint16))
    else:
        pixels = np.asarray(tf.io.decode_image(contents, expand_animations=False))
    return np.ascontiguousarray(upright(pixels, orientation(path)))
