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

from p2p_tf import image_sizes, workdirs
from p2p_tf.datasets import array_files, image_files, input_pipeline, preprocessing, value_ranges
from p2p_tf.errors import UserError, op_error_reason
from p2p_tf.nets import generation, images
from p2p_tf.serving import tiling

FITS = ('pad', 'resize')


def check_fit(fit):
    if fit not in FITS:
        raise UserError(f'fit must be one of {FITS}, got {fit!r}')


def translate_image(run, image: np.ndarray, image_size, fit: str = 'pad',
                    tile_size: int = 1024, tile_overlap: int = 128,
                    scalings=(value_ranges.UINT8, value_ranges.UINT8)) -> np.ndarray:
    """[H, W, C_in] of any size -> [H, W, C_out]: uint8 by default; scalings: the
    value_ranges.Scaling of the input's and of the output's values (type and range).

    run: float32 [1, h, w, C_in] in [-1, 1] -> [1, h, w, C_out], for h and w multiples of
    2**depth (depth = log2 of image_size's shorter side), e.g.
    `lambda x: generation.generate(generator, x, mode)`.
    fit='pad': mirror-pad to a multiple of 2**depth, translate at the image's own scale and
    crop back; an image with a side longer than tile_size is translated in overlapping tiles
    of tile_size, blended with linear ramps over tile_overlap pixels, so memory is bounded by
    the tile (tile_size=0: never tile).
    fit='resize': resize to image_size (a number or 'HxW'), translate, resize back (the training
    scale, whatever the input's scale).
    """
    check_fit(fit)
    source_scale, output_scale = scalings
    height, width = image.shape[:2]

    def to_unit(pixels):
        return preprocessing.to_unit_range(pixels, source_scale.value_range)

    def from_unit(outputs):
        return preprocessing.from_unit_range(outputs, output_scale.dtype,
                                             output_scale.value_range)

    if fit == 'resize':
        shape = image_sizes.parse_size(image_size)
        output = from_unit(run(to_unit(preprocessing.resize(image, shape))[tf.newaxis])[0])
        return np.asarray(preprocessing.resize(output, (height, width))).astype(
            output_scale.dtype)
    multiple = 2 ** image_sizes.unet_depth(image_size)
    if not tile_size or max(height, width) <= tile_size:
        padded, window = preprocessing.pad_to_multiple(to_unit(image)[tf.newaxis], multiple)
        return np.asarray(from_unit(preprocessing.crop_padding(run(padded), window))[0])
    if tile_size % multiple:
        raise UserError(f'tile_size must be a multiple of {multiple}, got {tile_size}')
    # A large image stays in its stored type (padded once); only the rows of one row of tiles
    # are held in float, and finished rows go to the output: memory is the tile's work plus
    # the input and output at their own types.
    padded, (top, left) = tiling.mirror_pad(np.asarray(image), multiple)
    output = None
    for first, band in tiling.translated_bands(run, padded[np.newaxis], tile_size,
                                               tile_overlap, to_unit):
        if output is None:
            output = np.empty([height, width, band.shape[-1]], output_scale.dtype)
        # The band's rows of the image, converted as preprocessing.from_unit_range converts
        # (half to even), in place.
        start, stop = max(first, top), min(first + len(band), top + height)
        if start >= stop:
            continue
        value_ranges.from_unit_numpy(band[start - first:stop - first, left:left + width],
                                     output_scale, out=output[start - top:stop - top])
    return output


class ChannelMismatch(UserError):
    """An input's channel count differs from the model's and conversion was not asked for."""


def match_channels(image, channels, convert=False):
    """uint8 [H, W, C] -> [H, W, channels]. A different channel count is an error unless
    convert=True: then RGB(A) becomes gray with the luma weights, gray becomes RGB by
    repetition, and alpha is dropped."""
    have = image.shape[-1]
    if have == channels:
        return image
    if have > 4 or channels not in value_ranges.CONVERTED_CHANNELS:
        raise ChannelMismatch(f'the file has {have} band(s) and the model takes {channels}')
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


def output_extension(path, output_scale=value_ranges.UINT8, channels=3):
    """The file type of the translation of input `path` by a model whose outputs have
    `channels` bands of values as `output_scale` says: the input's family (.npy for .npy, the
    same TIFF extension for a TIFF); PNG for images, 8- or 16-bit by the output's type, or
    .npy where a PNG cannot hold the output (more than 4 bands, types other than uint8 and
    uint16)."""
    extension = os.path.splitext(path)[1].lower()
    if extension in array_files.ARRAY_EXTENSIONS:
        return extension
    if channels <= 4 and output_scale.dtype in value_ranges.TYPE_RANGES:
        return '.png'
    return array_files.NPY_EXTENSION


def output_path(output_dir, path, extension='.png'):
    return os.path.join(output_dir, os.path.splitext(os.path.basename(path))[0] + extension)


def write_output(image, path):
    """Writes a translation to `path` in the file type its extension names."""
    if array_files.is_array_file(path):
        array_files.write(image, path)
    else:
        images.write_png(image, path)


def planned_outputs(files, output_dir, overwrite=False, extension=lambda path: '.png'):
    """{input path: its output path in output_dir}, or a UserError before anything is written:
    when an output would replace one of the inputs, when two inputs would have one output
    (x.jpg and x.png), or when outputs exist already and not `overwrite`. extension(path):
    the file type of the output of the input `path`."""
    outputs = {path: output_path(output_dir, path, extension(path)) for path in files}
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
    """A trained generator that translates images and arrays of any size and aspect ratio.

        translator = Translator('runs/facades')  # a workdir, WORKDIR/checkpoints/ckpt-N,
                                                 # or a SavedModel from p2p_tf.export
        outputs = translator([image_a, image_b])  # [H, W, C] arrays, any sizes
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

    @property
    def output_scale(self):
        """value_ranges.Scaling of the outputs: the training targets' type and range."""
        return value_ranges.side_scaling(self.config, 'target')

    def translate(self, image, seed=None):
        """[H, W, C] -> [H, W, output_channels] in the training targets' type and range (uint8
        for 8-bit data). The input's values mean what they meant in training (an 8- or 16-bit
        image of a model trained on either is scaled by its own type: value_ranges.
        file_scaling). seed (paper mode, `seedable`): draw the dropout noise from this seed, so
        the same seed gives the same output."""
        image = match_channels(np.asarray(image), self.config.input_channels,
                               self.convert_channels)
        source_scale = value_ranges.file_scaling(
            value_ranges.side_scaling(self.config, 'input'), image.dtype.name)
        noise = contextlib.nullcontext()
        if seed is not None and self.mode == 'paper':
            if not self.seedable:
                raise UserError(f'{self.source} is an export: its paper-mode outputs cannot be '
                                'drawn from a seed')
            noise = generation.seeded_dropout(self.generator, seed)
        with noise:
            return translate_image(self.run, image, self.config.image_size, self.fit,
                                   self.tile_size, self.tile_overlap,
                                   (source_scale, self.output_scale))

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
        strip [H, 3W, 3] at the run's evaluation size H x W (by default its image_size)."""
        image_files.check_pairs([path], min_side=1)
        (source, target), = input_pipeline.eval_dataset([path], self.config).take(1)
        return images.side_by_side(source, self.run(source), target)[0]

    def translate_files(self, input_path, output_dir, paired=False, warn=None, overwrite=False):
        """Translates an image or array file or a folder of them into `output_dir`, each
        output in its input's file family (output_extension: .npy, TIFF, or PNG for images;
        strips are PNGs). Returns (written paths, [(skipped path, reason), ...]).

        paired=False: each file is a source image of any size. paired=True: each file is a
        side-by-side pair and the output an input | output | target strip. A file that cannot
        be translated (unreadable, empty, too small, another channel count) is skipped and
        reported through warn(message) (default: print to stderr); the others are still
        translated. Nothing is translated when an output would replace one of the inputs, or
        an existing file unless `overwrite` (UserError).
        """
        warn = warn or (lambda message: print(message, file=sys.stderr, flush=True))
        files = input_files(input_path)
        def extension(path):
            return '.png' if paired else output_extension(path, self.output_scale,
                                                          self.config.output_channels)
        outputs = planned_outputs(files, output_dir, overwrite, extension)
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
            write_output(output, outputs[path])
            written.append(outputs[path])
        return written, skipped
