"""Translating images of any size with a trained generator: restored from a training run's
checkpoint, or loaded from a SavedModel export (`Translator`).

Two inference modes:
- 'paper' (default): dropout stays on and BatchNorm uses the statistics of the batch being
  translated, as the paper does at test time (Sec. 3.2, 4.1) and the TensorFlow tutorial does.
  Outputs vary slightly between calls. The model's stored BatchNorm averages are left unchanged.
- 'eval': the Keras inference mode, deterministic: no dropout, BatchNorm moving averages.
"""

import contextlib
import os
import sys

import ml_collections
import numpy as np
import tensorflow as tf

from p2p_tf import config as config_lib
from p2p_tf import datasets, images, input_pipeline, models, preprocessing
from p2p_tf.errors import UserError, op_error_reason

MODES = ('paper', 'eval')
# `checkpoint='best'` names the newest checkpoint in WORKDIR/best, where training's periodic
# evaluation keeps the one with the best score (training.py).
BEST = 'best'
BEST_FOLDER = 'best'


def latest_checkpoint(workdir):
    """Path of the newest checkpoint of a training run, or a UserError naming where it looked."""
    folder = os.path.join(workdir, 'checkpoints')
    path = tf.train.latest_checkpoint(folder)
    if not path:
        raise UserError(f'no checkpoint in {folder} (nor a config in {workdir} to go with one)'
                        if not os.path.isdir(workdir) else f'no checkpoint in {folder}')
    return path


def find_checkpoint(workdir, checkpoint=None):
    """(workdir, checkpoint path) of a training run.

    workdir: the run's workdir, or one of its checkpoints (WORKDIR/checkpoints/ckpt-N);
    checkpoint: a checkpoint to use instead of the latest, or BEST for the best one.
    """
    if os.path.exists(workdir + '.index'):
        workdir, checkpoint = os.path.dirname(os.path.dirname(workdir)), workdir
    if not os.path.isdir(workdir):
        raise UserError(f'workdir {workdir} does not exist')
    if checkpoint == BEST:
        folder = os.path.join(workdir, BEST_FOLDER)
        path = tf.train.latest_checkpoint(folder)
        if not path:
            raise UserError(f'no best checkpoint in {folder}: training keeps one when '
                            'eval_every > 0, the data has a val or test split and best_metric '
                            'is not none')
        return workdir, path
    if checkpoint and not os.path.exists(checkpoint + '.index'):
        raise UserError(f'no checkpoint {checkpoint} (expected {checkpoint}.index)')
    return workdir, checkpoint or latest_checkpoint(workdir)


def load_generator(workdir, checkpoint=None):
    """Rebuilds the generator of a training run from its config.json and restores its weights
    (arguments as `find_checkpoint`). Returns (generator, config)."""
    workdir, path = find_checkpoint(workdir, checkpoint)
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
    # A plain training-mode call would also move BatchNorm's averages, so paper-mode calls
    # would change what later eval-mode calls return. The stateless call leaves the model's
    # variables alone; only the dropout RNG states are advanced, so calls keep varying.
    outputs, non_trainable = generator.stateless_call(
        [v.value for v in generator.trainable_variables],
        [v.value for v in generator.non_trainable_variables], inputs, training=True)
    for variable, value in zip(generator.non_trainable_variables, non_trainable):
        if 'seed_generator_state' in variable.path:
            variable.assign(value)
    return outputs


def rng_states(model):
    """The dropout layers' seed-generator states, int64 [2] variables each. tf.train.Checkpoint
    does not reach them through the Keras model, so training's checkpoint names them
    explicitly."""
    return [variable for variable in model.variables if 'seed_generator_state' in variable.path]


@contextlib.contextmanager
def seeded_dropout(model, seed):
    """Within the block, the dropout of paper-mode calls draws from states derived from `seed`
    alone, so the same calls give the same outputs every time; afterwards the states are put
    back, leaving every variable of the model as it was."""
    states = rng_states(model)
    saved = [np.asarray(state) for state in states]
    # One stream per dropout layer, as Keras' SeedGenerator states are: [seed, counter].
    starts = np.random.default_rng(seed).integers(0, 2 ** 31 - 1, size=len(states))
    for state, start in zip(states, starts):
        state.assign(np.array([start, 0], dtype=state.dtype))
    try:
        yield
    finally:
        for state, value in zip(states, saved):
            state.assign(value)


def generate_any_size(generator, inputs, multiple, mode='paper'):
    """[batch, H, W, C_in] float32 in [-1, 1], any H and W -> [batch, H, W, C_out]: mirror-pads
    to multiples of `multiple` (2**depth), generates and crops back. Works in a tf.function."""
    padded, window = preprocessing.pad_to_multiple(inputs, multiple)
    return preprocessing.crop_padding(generate(generator, padded, mode), window)


FITS = ('pad', 'resize')


def translate_image(run, image, image_size, fit='pad', tile_size=1024, tile_overlap=128):
    """uint8 [H, W, C_in] of any size -> uint8 [H, W, C_out].

    run: float32 [1, h, w, C_in] in [-1, 1] -> [1, h, w, C_out], for h and w multiples of
    2**depth (depth = log2(image_size)), e.g. `lambda x: generate(generator, x, mode)`.
    fit='pad': mirror-pad to a multiple of 2**depth, translate at the image's own scale and
    crop back; an image with a side longer than tile_size is translated in overlapping tiles
    of tile_size, blended with linear ramps over tile_overlap pixels, so memory is bounded by
    the tile (tile_size=0: never tile).
    fit='resize': resize to image_size x image_size, translate, resize back (the training
    scale, whatever the input's scale).
    """
    if fit not in FITS:
        raise UserError(f'fit must be one of {FITS}, got {fit!r}')
    height, width = image.shape[:2]
    if fit == 'resize':
        source = preprocessing.to_unit_range(preprocessing.resize(image, image_size))
        output = preprocessing.to_uint8(run(source[tf.newaxis])[0])
        return np.asarray(preprocessing.resize(output, (height, width)))
    multiple = 2 ** config_lib.unet_depth(image_size)
    padded, window = preprocessing.pad_to_multiple(
        preprocessing.to_unit_range(image)[tf.newaxis], multiple)
    if tile_size and max(height, width) > tile_size:
        if tile_size % multiple:
            raise UserError(f'tile_size must be a multiple of {multiple}, got {tile_size}')
        output = translate_tiles(run, padded, tile_size, tile_overlap)
    else:
        output = run(padded)
    return np.asarray(preprocessing.to_uint8(preprocessing.crop_padding(output, window))[0])


def tile_starts(length, tile, overlap):
    """Start offsets of tiles of `tile` pixels covering [0, length), overlapping by at least
    `overlap` pixels, spread evenly."""
    if length <= tile:
        return [0]
    count = -(-(length - overlap) // (tile - overlap))
    return [round(i * (length - tile) / (count - 1)) for i in range(count)]


def blend_window(height, width, ramp):
    """[height, width, 1] weights rising linearly over `ramp` pixels from each edge."""
    def axis(length):
        distance = np.minimum(np.arange(length) + 0.5, length - np.arange(length) - 0.5)
        return np.clip(distance / max(ramp, 1), 1e-3, 1.0)
    return (axis(height)[:, None] * axis(width)[None, :])[..., None].astype(np.float32)


def translate_tiles(run, padded, tile_size, overlap):
    """[1, H, W, C] in [-1, 1] (H, W multiples of 2**depth) -> [1, H, W, C_out], translated
    tile by tile; each output pixel is the weighted mean of the tiles covering it."""
    _, height, width, _ = padded.shape
    if overlap >= tile_size:
        raise UserError(f'tile_overlap ({overlap}) must be smaller than tile_size ({tile_size})')
    total, weights = None, np.zeros([height, width, 1], np.float32)
    for top in tile_starts(height, tile_size, overlap):
        for left in tile_starts(width, tile_size, overlap):
            tile = padded[:, top:top + tile_size, left:left + tile_size]
            output = np.asarray(run(tile))[0]
            if total is None:
                total = np.zeros([height, width, output.shape[-1]], np.float32)
            window = blend_window(output.shape[0], output.shape[1], overlap)
            total[top:top + output.shape[0], left:left + output.shape[1]] += output * window
            weights[top:top + output.shape[0], left:left + output.shape[1]] += window
    return (total / weights)[np.newaxis]


class ChannelMismatch(UserError):
    """An input's channel count differs from the model's and conversion was not asked for."""


def match_channels(image, channels, convert=False):
    """uint8 [H, W, C] -> [H, W, channels]. A different channel count is an error unless
    convert=True: then RGB(A) becomes gray with the luma weights, gray becomes RGB by
    repetition, and alpha is dropped."""
    have = image.shape[-1]
    if have == channels:
        return image
    if not convert:
        raise ChannelMismatch(f'the image has {have} channel(s) and the model takes {channels}; '
                              'pass --convert_channels to convert it')
    if have in (2, 4):
        image, have = image[..., :have - 1], have - 1
    if have == channels:
        return image
    if channels == 1:
        return np.asarray(tf.image.rgb_to_grayscale(image))
    return np.repeat(image, channels, axis=-1)


def input_files(path):
    """An image file, or the image files in a folder (sorted)."""
    if os.path.isfile(path):
        return [path]
    if os.path.isdir(path):
        files = datasets.list_images(path)
        if not files:
            raise UserError(f'no images in {path}')
        return files
    raise UserError(f'input {path} does not exist')


def output_path(output_dir, path):
    return os.path.join(output_dir, os.path.splitext(os.path.basename(path))[0] + '.png')


def is_export(path):
    return os.path.isfile(os.path.join(path, 'saved_model.pb'))


class Translator:
    """A trained generator that translates uint8 images of any size and aspect ratio.

        translator = Translator('runs/facades')  # a workdir, WORKDIR/checkpoints/ckpt-N,
                                                 # or a SavedModel from p2p_tf.export
        outputs = translator([image_a, image_b])  # uint8 [H, W, C] arrays, any sizes
        translator.translate_files('labels/', 'translated/')

    mode: 'paper' or 'eval' (see the module docstring); None: 'paper' for checkpoints, the
    export's own mode for exports. fit, tile_size, tile_overlap: as `translate_image`.
    convert_channels: convert inputs with another channel count instead of refusing them.
    """

    def __init__(self, source, mode=None, fit='pad', tile_size=1024, tile_overlap=128,
                 convert_channels=False, checkpoint=None):
        if fit not in FITS:
            raise UserError(f'fit must be one of {FITS}, got {fit!r}')
        self.fit, self.tile_size, self.tile_overlap = fit, tile_size, tile_overlap
        self.convert_channels = convert_channels
        if not os.path.exists(source) and not os.path.exists(source + '.index'):
            raise UserError(f'{source} does not exist (give a training run\'s workdir, one of '
                            'its checkpoints, or an export)')
        if is_export(source):
            loaded = tf.saved_model.load(source)
            metadata = {name: value.numpy().decode() if value.dtype == tf.string
                        else int(value) for name, value in loaded.signatures['metadata']().items()}
            if mode not in (None, metadata['mode']):
                raise UserError(f'{source} was exported in {metadata["mode"]} mode; export '
                                f'again with --mode={mode} to translate in {mode} mode')
            self.mode = metadata['mode']
            self.config = ml_collections.ConfigDict(metadata)
            signature = loaded.signatures['translate_float']
            self.run = lambda inputs: signature(images=inputs)['translated']
        else:
            self.mode = mode or 'paper'
            if self.mode not in MODES:
                raise UserError(f'mode must be one of {MODES}, got {self.mode!r}')
            self.generator, self.config = load_generator(source, checkpoint)
            self.run = lambda inputs: generate(self.generator, inputs, self.mode)

    def translate(self, image):
        """uint8 [H, W, C] -> uint8 [H, W, output_channels]."""
        image = match_channels(np.asarray(image), self.config.input_channels,
                               self.convert_channels)
        return translate_image(self.run, image, self.config.image_size, self.fit,
                               self.tile_size, self.tile_overlap)

    def __call__(self, images):
        """A uint8 image [H, W, C], or a batch [N, H, W, C] / list of images of any sizes ->
        the translations, in the same form."""
        if isinstance(images, np.ndarray) and images.ndim == 4:
            return np.stack([self.translate(image) for image in images])
        if isinstance(images, (list, tuple)):
            return [self.translate(image) for image in images]
        return self.translate(images)

    def translate_pair(self, path):
        """A side-by-side pair file in the dataset's layout -> uint8 input | output | target
        strip [S, 3S, 3] at the training size S."""
        datasets.check_pairs([path], min_side=1)
        (source, target), = input_pipeline.eval_dataset([path], self.config).take(1)
        return images.side_by_side(source, self.run(source), target)[0]

    def translate_files(self, input_path, output_dir, paired=False, warn=None):
        """Translates an image file or a folder of them into PNGs in `output_dir`. Returns
        (written paths, [(skipped path, reason), ...]).

        paired=False: each file is a source image of any size. paired=True: each file is a
        side-by-side pair and the output an input | output | target strip. A file that cannot
        be read is skipped and reported through warn(message) (default: print to stderr); the
        others are still translated.
        """
        warn = warn or (lambda message: print(message, file=sys.stderr, flush=True))
        files = input_files(input_path)
        os.makedirs(output_dir, exist_ok=True)
        written, skipped = [], []
        for path in files:
            try:
                output = (self.translate_pair(path) if paired
                          else self.translate(images.read_image(path)))
            except ChannelMismatch as e:
                raise UserError(f'{path}: {e}') from None  # The next files would fail alike.
            except (tf.errors.OpError, UserError) as e:
                reason = op_error_reason(e) if isinstance(e, tf.errors.OpError) else str(e)
                warn(f'warning: skipping {path}: {reason}')
                skipped.append((path, reason))
                continue
            images.write_png(output, output_path(output_dir, path))
            written.append(output_path(output_dir, path))
        return written, skipped
