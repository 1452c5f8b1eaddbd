"""Image files and side-by-side strips for logs, samples and translated outputs."""

import os

import tensorflow as tf

from p2p_tf.datasets import preprocessing


def side_by_side(*images):
    """[batch, H, W, C_i] float in [-1, 1] (C_i 1 or 3) -> [batch, H, sum W, 3], joined left to
    right; 1-channel images are shown as gray RGB."""
    return tf.concat([tf.image.grayscale_to_rgb(image) if image.shape[-1] == 1 else image
                      for image in images], axis=2)


def write_png(image, path):
    """Writes float [-1, 1] or uint8 [H, W, C] to a PNG file, creating the folder."""
    image = tf.convert_to_tensor(image)
    if image.dtype != tf.uint8:
        image = preprocessing.to_uint8(image)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tf.io.write_file(path, tf.io.encode_png(image))
