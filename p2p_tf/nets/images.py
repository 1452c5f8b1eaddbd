"""Image files and side-by-side strips for logs, samples and translated outputs."""

import os

import tensorflow as tf

from p2p_tf.datasets import preprocessing


def shown_bands(image):
    """[..., C] -> the bands an RGB picture shows, [..., 3]: the first three of C >= 3, or
    the first one, as gray, of C = 1 or 2."""
    if image.shape[-1] >= 3:
        return image[..., :3]
    return tf.image.grayscale_to_rgb(image[..., :1])


def side_by_side(*images):
    """[batch, H, W, C_i] float in [-1, 1] (any C_i) -> [batch, H, sum W, 3], joined left to
    right, each shown by its shown_bands."""
    return tf.concat([shown_bands(image) for image in images], axis=2)


def write_png(image, path):
    """Writes float [-1, 1] (as 8-bit), uint8 or uint16 [H, W, C] (C 1-4) to a PNG file,
    creating the folder."""
    image = tf.convert_to_tensor(image)
    if image.dtype not in (tf.uint8, tf.uint16):
        image = preprocessing.to_uint8(image)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tf.io.write_file(path, tf.io.encode_png(image))
