"""Translating images with a trained generator restored from a training run's checkpoint.

Two inference modes:
- 'paper' (default): dropout stays on and BatchNorm uses the statistics of the batch being
  translated, as the paper does at test time (Sec. 3.2, 4.1) and the TensorFlow tutorial does.
  Outputs vary slightly between calls. The model's stored BatchNorm averages are left unchanged.
- 'eval': the Keras inference mode, deterministic: no dropout, BatchNorm moving averages.
"""

import os

import numpy as np
import tensorflow as tf

from p2p_tf import config as config_lib
from p2p_tf import datasets, images, input_pipeline, models, preprocessing
from p2p_tf.errors import UserError, op_error_reason

MODES = ('paper', 'eval')


def latest_checkpoint(workdir):
    """Path of the newest checkpoint of a training run, or a UserError naming where it looked."""
    folder = os.path.join(workdir, 'checkpoints')
    path = tf.train.latest_checkpoint(folder)
    if not path:
        raise UserError(f'no checkpoint in {folder} (nor a config in {workdir} to go with one)'
                        if not os.path.isdir(workdir) else f'no checkpoint in {folder}')
    return path


def load_generator(workdir, checkpoint=None):
    """Rebuilds the generator of the run in `workdir` from its config.json and restores its
    weights from `checkpoint` (default: the latest). Returns (generator, config)."""
    if not os.path.isdir(workdir):
        raise UserError(f'workdir {workdir} does not exist')
    path = checkpoint or latest_checkpoint(workdir)
    config = config_lib.load(workdir)
    generator = models.generator_from_config(config)
    status = tf.train.Checkpoint(generator=generator).restore(path)
    status.expect_partial().assert_existing_objects_matched()
    return generator, config


def generate(generator, inputs, mode='paper'):
    """[batch, H, W, C_in] float32 in [-1, 1] -> [batch, H, W, C_out] in [-1, 1].

    H and W must be multiples of 2**depth of the generator (256 for the paper's net).
    """
    if mode not in MODES:
        raise UserError(f'mode must be one of {MODES}, got {mode!r}')
    if mode == 'eval':
        return generator(inputs, training=False)
    # A training-mode call also moves BatchNorm's averages; put them back afterwards so that
    # paper-mode calls never change what an eval-mode call returns.
    averages = [v for v in generator.non_trainable_variables if 'moving_' in v.path]
    saved = [v.numpy() for v in averages]
    outputs = generator(inputs, training=True)
    for variable, value in zip(averages, saved):
        variable.assign(value)
    return outputs


def translate_array(generator, image, image_size, mode='paper'):
    """uint8 [H, W, C_in] -> uint8 [H, W, C_out]: resized to image_size and back."""
    height, width = image.shape[:2]
    resized = preprocessing.to_unit_range(preprocessing.resize(image, image_size))
    output = preprocessing.to_uint8(generate(generator, resized[tf.newaxis], mode)[0])
    if (height, width) != (image_size, image_size):
        output = tf.image.resize(output, [height, width], method='bilinear', antialias=True)
        output = tf.cast(tf.clip_by_value(tf.round(output), 0, 255), tf.uint8)
    return np.asarray(output)


def input_files(path):
    """An image file, or the image files in a folder (sorted)."""
    if os.path.isfile(path):
        return [path]
    if os.path.isdir(path):
        files = sorted((os.path.join(path, f) for f in os.listdir(path)
                        if f.lower().endswith(datasets.IMAGE_EXTENSIONS)), key=datasets.natural_key)
        if not files:
            raise UserError(f'no images in {path}')
        return files
    raise UserError(f'input {path} does not exist')


def output_path(output_dir, path):
    return os.path.join(output_dir, os.path.splitext(os.path.basename(path))[0] + '.png')


def translate_files(workdir, input_path, output_dir, paired=False, mode='paper',
                    checkpoint=None):
    """Translates an image or a folder of images with the run in `workdir`; returns the
    written paths.

    paired=False: each file is a source image (any size; translated at the training size and
    resized back). paired=True: each file is a side-by-side pair in the dataset's layout and the
    output is an input | output | target strip at the training size.
    """
    generator, config = load_generator(workdir, checkpoint)
    files = input_files(input_path)
    if paired:
        datasets.check_pairs(files, min_side=1)
    os.makedirs(output_dir, exist_ok=True)
    written = []
    for path in files:
        # A file whose header is fine (check_pairs) can still fail to decode, e.g. when truncated.
        try:
            if paired:
                (source, target), = input_pipeline.eval_dataset([path], config).take(1)
            else:
                image = images.read_image(path, config.input_channels)
        except tf.errors.OpError as e:
            raise UserError(f'cannot decode image {path}: {op_error_reason(e)}') from None
        if paired:
            strip = images.side_by_side(source, generate(generator, source, mode), target)[0]
            images.write_png(strip, output_path(output_dir, path))
        else:
            images.write_png(translate_array(generator, image, config.image_size, mode),
                             output_path(output_dir, path))
        written.append(output_path(output_dir, path))
    return written
