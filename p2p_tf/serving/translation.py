"""Translating images of any size with a trained generator: restored from a training run's
checkpoint, or loaded from a SavedModel export (`Translator`), in paper or eval mode
(p2p_tf/nets/generation.py says what each does)."""

import contextlib
import copy
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
    if not tile_size or max(height, width) <= tile_size:
        padded, window = preprocessing.pad_to_multiple(
            preprocessing.to_unit_range(image)[tf.newaxis], multiple)
        return np.asarray(preprocessing.to_uint8(preprocessing.crop_padding(run(padded),
                                                                            window))[0])
    if tile_size % multiple:
        raise UserError(f'tile_size must be a multiple of {multiple}, got {tile_size}')
    # A large image stays uint8 (padded once); only the rows of one row of tiles are held in
    # float, and finished rows go to the uint8 output: memory is the tile's work plus about
    # two bytes per pixel of input and output.
    padded, (top, left) = mirror_pad(np.asarray(image), multiple)
    output = None
    for first, band in translated_bands(run, padded[np.newaxis], tile_size, tile_overlap):
        if output is None:
            output = np.empty([height, width, band.shape[-1]], np.uint8)
        # The band's rows of the image, converted as preprocessing.to_uint8 converts (half to
        # even), in place.
        start, stop = max(first, top), min(first + len(band), top + height)
        if start >= stop:
            continue
        rows = band[start - first:stop - first, left:left + width]
        rows += 1.0
        rows *= 127.5
        np.round(rows, out=rows)
        np.clip(rows, 0, 255, out=rows)
        output[start - top:stop - top] = rows
    return output


def mirror_pad(image, multiple):
    """uint8 [H, W, C] -> (mirror-padded [H', W', C] with H', W' multiples of `multiple`,
    (top, left) offsets of the image in it): preprocessing.pad_to_multiple on numpy."""
    offsets, indices = [], []
    for size in image.shape[:2]:
        extra = (multiple - size % multiple) % multiple
        offsets.append(extra // 2)
        indices.append(np.asarray(preprocessing.reflect_indices(size, extra // 2,
                                                                extra - extra // 2)))
    return np.take(np.take(image, indices[0], axis=0), indices[1], axis=1), tuple(offsets)


def tile_starts(length, tile, overlap):
    """Start offsets of tiles of `tile` pixels covering [0, length), overlapping by at least
    `overlap` pixels, spread evenly."""
    if length <= tile:
        return [0]
    count = -(-(length - overlap) // (tile - overlap))
    return [round(i * (length - tile) / (count - 1)) for i in range(count)]


def ramp(length, width):
    """[length] weights rising linearly over `width` pixels from each end (never 0)."""
    distance = np.minimum(np.arange(length) + 0.5, length - np.arange(length) - 0.5)
    return np.clip(distance / max(width, 1), 1e-3, 1.0).astype(np.float32)


def blend_window(height, width, overlap):
    """[height, width, 1] weights of a tile: ramps over `overlap` pixels from each edge."""
    return (ramp(height, overlap)[:, None] * ramp(width, overlap)[None, :])[..., None]


def translated_bands(run, padded, tile_size, overlap):
    """Translates [1, H, W, C] (H, W multiples of 2**depth; float32 in [-1, 1] or uint8) tile
    by tile and yields (first row, float32 [rows, W, C_out] in [-1, 1]) bands of finished
    rows, top to bottom: each output pixel is the weighted mean of the tiles covering it.
    Only the rows the current row of tiles covers are held in float."""
    _, height, width, _ = padded.shape
    if overlap >= tile_size:
        raise UserError(f'tile_overlap ({overlap}) must be smaller than tile_size ({tile_size})')
    tops, lefts = tile_starts(height, tile_size, overlap), tile_starts(width, tile_size, overlap)
    tile_height, tile_width = min(tile_size, height), min(tile_size, width)
    # The tiles form a grid, so the summed weights are a product of one sum per axis.
    rows, columns = np.zeros(height, np.float32), np.zeros(width, np.float32)
    for top in tops:
        rows[top:top + tile_height] += ramp(tile_height, overlap)
    for left in lefts:
        columns[left:left + tile_width] += ramp(tile_width, overlap)
    band, band_top = None, 0  # Weighted sums of rows band_top .. band_top + tile_height.
    for top in tops:
        if band is not None:  # Rows above this row of tiles are finished; keep the rest.
            done = top - band_top
            yield band_top, finished(band[:done], rows[band_top:top], columns)
            band = np.concatenate([band[done:], np.zeros_like(band[:done])])
            band_top = top
        for left in lefts:
            tile = padded[:, top:top + tile_size, left:left + tile_size]
            if tile.dtype == np.uint8:
                tile = preprocessing.to_unit_range(tile)
            output = np.asarray(run(tile))[0]
            if band is None:
                band = np.zeros([tile_height, width, output.shape[-1]], np.float32)
            band[:, left:left + tile_width] += output * blend_window(tile_height, tile_width,
                                                                     overlap)
    yield band_top, finished(band, rows[band_top:band_top + tile_height], columns)


def finished(sums, row_weights, column_weights):
    """Weighted sums [rows, W, C] -> weighted means, divided in place."""
    sums /= row_weights[:, None, None]
    sums /= column_weights[None, :, None]
    return sums


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


def other_mode_refused(export_dir, exported, wanted):
    """The error for translating an export in a mode other than the one it was made in."""
    return UserError(f'{export_dir} was exported in {exported} mode; export again with '
                     f'--mode={wanted} to translate in {wanted} mode')


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
        self.source = source
        if workdirs.is_export(source):
            loaded = tf.saved_model.load(source)
            metadata = {name: value.numpy().decode() if value.dtype == tf.string
                        else int(value) for name, value in loaded.signatures['metadata']().items()}
            if mode not in (None, metadata['mode']):
                raise other_mode_refused(source, metadata['mode'], mode)
            self.mode, self.step, self.generator = metadata['mode'], metadata['step'], None
            self.config = ml_collections.ConfigDict(metadata)
            self.signature = loaded.signatures['translate_float']
        else:
            self.mode = generation.check_mode(mode or 'paper')
            workdir, path = workdirs.find_checkpoint(source, checkpoint)
            self.step = workdirs.checkpoint_step(path)
            self.generator, self.config = workdirs.load_generator(workdir, path)
            self.traced = {}

    def traced_generator(self):
        """The generator in this mode as one tf.function for every image size (about a
        quarter faster than calling it eagerly at 256x256 here); traced once per mode."""
        if self.mode not in self.traced:
            channels = self.config.input_channels
            generator, mode = self.generator, self.mode
            self.traced[mode] = tf.function(
                lambda inputs: generation.generate(generator, inputs, mode),
                input_signature=[tf.TensorSpec([None, None, None, channels], tf.float32)],
                autograph=False)
        return self.traced[self.mode]

    @property
    def modes(self):
        """The modes this translator can switch to (in_mode): both for a checkpoint, the one
        it was exported in for an export."""
        return generation.MODES if self.generator is not None else (self.mode,)

    @property
    def seedable(self):
        """Whether paper-mode outputs can be drawn from a given seed (`translate(seed=...)`):
        for checkpoints; an export's graph draws its own dropout noise."""
        return self.generator is not None and self.mode == 'paper'

    def in_mode(self, mode):
        """This translator in another mode, sharing its weights (nothing is loaded again)."""
        if mode not in self.modes:
            raise other_mode_refused(self.source, self.mode, mode)
        other = copy.copy(self)
        other.mode = mode
        return other

    def run(self, inputs):
        """float32 [1, H, W, C_in] in [-1, 1], H and W multiples of 2**depth -> [1, H, W,
        C_out]."""
        if self.generator is None:
            return self.signature(images=inputs)['translated']
        return self.traced_generator()(tf.convert_to_tensor(inputs, tf.float32))

    def translate(self, image, seed=None):
        """uint8 [H, W, C] -> uint8 [H, W, output_channels]. seed (paper mode, `seedable`):
        draw the dropout noise from this seed, so the same seed gives the same output."""
        image = match_channels(np.asarray(image), self.config.input_channels,
                               self.convert_channels)
        noise = contextlib.nullcontext()
        if seed is not None and self.mode == 'paper':
            if not self.seedable:
                raise UserError(f'{self.source} is an export: its paper-mode outputs cannot be '
                                'drawn from a seed')
            noise = generation.seeded_dropout(self.generator, seed)
        with noise:
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
