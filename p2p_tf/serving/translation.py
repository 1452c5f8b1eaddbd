"""Translating images of any size with a trained generator: restored from a training run's
checkpoint, or loaded from a SavedModel export (`Translator`), in paper or eval mode
(p2p_tf/nets/generation.py says what each does)."""

import os
import sys

import ml_collections
import numpy as np
import tensorflow as tf

from p2p_tf import config as config_lib
from p2p_tf import workdirs
from p2p_tf.datasets import image_files, input_pipeline, preprocessing
from p2p_tf.errors import UserError, op_error_reason
from p2p_tf.nets import generation, images

FITS = ('pad', 'resize')


def check_fit(fit):
    if fit not in FITS:
        raise UserError(f'fit must be one of {FITS}, got {fit!r}')


def translate_image(run, image: np.ndarray, image_size: int, fit: str = 'pad',
                    tile_size: int = 1024, tile_overlap: int = 128) -> np.ndarray:
    """uint8 [H, W, C_in] of any size -> uint8 [H, W, C_out].

    run: float32 [1, h, w, C_in] in [-1, 1] -> [1, h, w, C_out], for h and w multiples of
    2**depth (depth = log2(image_size)), e.g. `lambda x: generation.generate(generator, x, mode)`.
    fit='pad': mirror-pad to a multiple of 2**depth, translate at the image's own scale and
    crop back; an image with a side longer than tile_size is translated in overlapping tiles
    of tile_size, blended with linear ramps over tile_overlap pixels, so memory is bounded by
    the tile (tile_size=0: never tile).
    fit='resize': resize to image_size x image_size, translate, resize back (the training
    scale, whatever the input's scale).
    """
    check_fit(fit)
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
        files = image_files.list_images(path)
        if not files:
            raise UserError(f'no images in {path}')
        return files
    raise UserError(f'input {path} does not exist')


def output_path(output_dir, path):
    return os.path.join(output_dir, os.path.splitext(os.path.basename(path))[0] + '.png')


def planned_outputs(files, output_dir, overwrite=False):
    """{input path: its output path in output_dir}, or a UserError before anything is written:
    when an output would replace one of the inputs, when two inputs would have one output
    (x.jpg and x.png), or when outputs exist already and not `overwrite`."""
    outputs = {path: output_path(output_dir, path) for path in files}
    inputs = {os.path.realpath(path): path for path in files}
    by_output = {}
    for path, output in outputs.items():
        real = os.path.realpath(output)
        if real in inputs:
            raise UserError(f'the output {output} would replace the input {inputs[real]}; '
                            'choose another --output folder')
        if real in by_output:
            raise UserError(f'{by_output[real]} and {path} would both be written to {output}; '
                            'translate them into different folders')
        by_output[real] = path
    existing = [output for output in outputs.values() if os.path.lexists(output)]
    if existing and not overwrite:
        raise UserError(f'{len(existing)} output file(s) already exist in {output_dir} (e.g. '
                        f'{existing[0]}); pass --overwrite to replace them')
    return outputs


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
        check_fit(fit)
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
            self.mode = generation.check_mode(mode or 'paper')
            self.generator, self.config = workdirs.load_generator(source, checkpoint)
            self.run = lambda inputs: generation.generate(self.generator, inputs, self.mode)

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
        image_files.check_pairs([path], min_side=1)
        (source, target), = input_pipeline.eval_dataset([path], self.config).take(1)
        return images.side_by_side(source, self.run(source), target)[0]

    def translate_files(self, input_path, output_dir, paired=False, warn=None, overwrite=False):
        """Translates an image file or a folder of them into PNGs in `output_dir`. Returns
        (written paths, [(skipped path, reason), ...]).

        paired=False: each file is a source image of any size. paired=True: each file is a
        side-by-side pair and the output an input | output | target strip. A file that cannot
        be translated (unreadable, empty, too small, another channel count) is skipped and
        reported through warn(message) (default: print to stderr); the others are still
        translated. Nothing is translated when an output would replace one of the inputs, or
        an existing file unless `overwrite` (UserError).
        """
        warn = warn or (lambda message: print(message, file=sys.stderr, flush=True))
        files = input_files(input_path)
        outputs = planned_outputs(files, output_dir, overwrite)
        os.makedirs(output_dir, exist_ok=True)
        written, skipped = [], []
        for path in files:
            try:
                output = (self.translate_pair(path) if paired
                          else self.translate(image_files.read_image(path)))
            except (tf.errors.OpError, UserError) as e:
                reason = op_error_reason(e) if isinstance(e, tf.errors.OpError) else str(e)
                warn(f'warning: skipping {path}: {reason}')
                skipped.append((path, reason))
                continue
            images.write_png(output, outputs[path])
            written.append(outputs[path])
        return written, skipped
