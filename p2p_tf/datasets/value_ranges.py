"""The value types and ranges of a run's data: how the stored values of each side (input and
target) map to the networks' [-1, 1], found in the files when a run starts and recorded in
its config.

uint8 and uint16 values scale by their type's range (0-255, 0-65535) unless a range is given;
any other type (floats, signed integers) needs one: `--config.input_range=LOW,HIGH` (and
`target_range`). LOW maps to -1, HIGH to 1, and values outside are clipped. The resolved types
and ranges go into config.json and every export, and `translate` writes its outputs back in
the target's type and range.

Each side's files must agree: one value type, and (where a band count cannot be converted:
arrays, and images when the model takes other than 1 or 3 channels) one band count equal to
the model's. A file that breaks this is a one-line error naming it.
"""

import collections
import typing

import ml_collections
import numpy as np

from p2p_tf import config as config_lib
from p2p_tf.datasets import array_files, image_files
from p2p_tf.errors import UserError

TYPE_RANGES = {'uint8': (0.0, 255.0), 'uint16': (0.0, 65535.0)}
# The config fields of each side: (channels, range, dtype).
SIDE_FIELDS = {'input': ('input_channels', 'input_range', 'input_dtype'),
               'target': ('output_channels', 'target_range', 'target_dtype')}
# Channel counts that any image file converts to (gray <-> RGB, alpha dropped), as before
# other counts were possible.
CONVERTED_CHANNELS = (1, 3)


class Scaling(typing.NamedTuple):
    """One side's stored values: numpy dtype name, and the range [low, high] mapped to
    [-1, 1]."""
    dtype: str
    low: float
    high: float

    @property
    def value_range(self):
        return self.low, self.high

    @property
    def pipeline_dtype(self):
        """The type the input pipeline decodes this side to: uint8 or uint16 as stored,
        float32 for every other type."""
        return self.dtype if self.dtype in TYPE_RANGES else 'float32'

    @property
    def is_type_range(self):
        """Whether the range is the whole range of an unsigned type (scaled as such)."""
        return TYPE_RANGES.get(self.dtype) == self.value_range


# 8-bit images in [0, 255].
UINT8 = Scaling('uint8', *TYPE_RANGES['uint8'])


def range_text(low, high):
    """(0.0, 255.0) -> '0,255': the form of the range fields."""
    return ','.join(str(int(v)) if float(v).is_integer() else repr(float(v)) for v in (low, high))


def recorded_fields(input_scaling, target_scaling):
    """The value fields of a config or an export's metadata for the two sides' Scalings:
    {input_dtype, input_range, target_dtype, target_range}."""
    return {f'{side}_{name}': value
            for side, scaling in (('input', input_scaling), ('target', target_scaling))
            for name, value in (('dtype', scaling.dtype),
                                ('range', range_text(*scaling.value_range)))}


# What the value fields of a run on 8-bit images hold (and held, before they were recorded).
EIGHT_BIT_FIELDS = recorded_fields(UINT8, UINT8)


def side_scaling(config, side):
    """The Scaling of side 'input' or 'target' of a config (a run's, or an export's metadata):
    AUTO type (a run from before these fields) is uint8, AUTO range the type's."""
    _, range_field, dtype_field = SIDE_FIELDS[side]
    dtype = config.get(dtype_field, config_lib.AUTO)
    dtype = UINT8.dtype if dtype == config_lib.AUTO else dtype
    value_range = config.get(range_field, config_lib.AUTO)
    if value_range == config_lib.AUTO:
        if dtype not in TYPE_RANGES:
            raise UserError(f'{range_field} is needed for {dtype} data')
        return Scaling(dtype, *TYPE_RANGES[dtype])
    return Scaling(dtype, *config_lib.parse_range(value_range, range_field))


def file_scaling(scaling, dtype):
    """The Scaling for translating a file of numpy type `dtype` into a side scaled by
    `scaling`: an 8- or 16-bit file into a model whose side uses its type's whole range is
    scaled by the file's own type (an 8-bit PNG into a 16-bit model); otherwise the values
    mean what they meant in training."""
    if scaling.is_type_range and dtype in TYPE_RANGES:
        return Scaling(dtype, *TYPE_RANGES[dtype])
    return Scaling(dtype, scaling.low, scaling.high)


def side_files(examples, direction):
    """{'input': paths, 'target': paths} of (a, b) examples (b '' for a side-by-side file,
    which holds both sides)."""
    a_files = [a for a, _ in examples]
    b_files = [b or a for a, b in examples]
    return dict(zip(('input', 'target'),
                    (a_files, b_files) if direction == 'AtoB' else (b_files, a_files)))


def file_value_type(path, channels):
    """(band count or None when it need not match, numpy dtype name) of one file from its
    header: PNG/JPEG read as `channels` in CONVERTED_CHANNELS need only their bit depth."""
    if not array_files.is_array_file(path) and channels in CONVERTED_CHANNELS:
        return None, 'uint16' if image_files.png_bit_depth(path) == 16 else 'uint8'
    header = image_files.band_header(path)
    return header.bands, header.dtype


def side_value_type(paths, channels, side):
    """The numpy dtype name shared by one side's files; a UserError naming the first file
    whose type, or band count, differs from the rest, or the band count if it is not the
    model's `channels`."""
    channel_field, range_field, _ = SIDE_FIELDS[side]
    found = {path: file_value_type(path, channels) for path in dict.fromkeys(paths)}
    for position, what in ((0, 'band(s)'), (1, 'values')):
        counts = collections.Counter(kind[position] for kind in found.values()
                                     if kind[position] is not None)
        if not counts:
            continue
        usual = counts.most_common(1)[0][0]
        odd = next((path for path, kind in found.items()
                    if kind[position] not in (None, usual)), None)
        if odd:
            raise UserError(f'{odd} has {found[odd][position]} {what} where the other '
                            f'{side} files have {usual}')
        if position == 0 and usual != channels:
            raise UserError(f'the {side} files have {usual} band(s) but {channel_field} is '
                            f'{channels}; set --config.{channel_field}={usual}')
    return found[paths[0]][1]


def check_side_by_side(examples):
    for path, partner in examples:
        if not partner and array_files.is_array_file(path):
            raise UserError(f'{path}: arrays are not read as side-by-side pairs; put inputs '
                            'and targets in A/ and B/ folders or a CSV manifest')


def resolve(config, *example_sets):
    """A copy of a resolved config with each side's dtype found in the files of the
    `example_sets` (lists of (a, b) path pairs, or TFDS data sources of the pix2pix datasets,
    all 8-bit) and its range filled in; a UserError (see side_value_type) when the files
    disagree, a recorded type differs from theirs, or a type without a range of its own has no
    range given."""
    config = ml_collections.ConfigDict(config.to_dict())
    files = None
    if all(isinstance(examples, (list, tuple)) for examples in example_sets):
        examples = [example for examples in example_sets for example in examples]
        check_side_by_side(examples)
        files = side_files(examples, config.direction)
    for side, (channel_field, range_field, dtype_field) in SIDE_FIELDS.items():
        dtype = (side_value_type(files[side], config[channel_field], side) if files
                 else 'uint8')
        if config[dtype_field] not in (config_lib.AUTO, dtype):
            raise UserError(f'the {side} files hold {dtype} values but {dtype_field} is '
                            f'{config[dtype_field]}')
        config[dtype_field] = dtype
        if config[range_field] == config_lib.AUTO:
            if dtype not in TYPE_RANGES:
                raise UserError(f'the {side} files hold {dtype} values: give their range '
                                f'with --config.{range_field}=LOW,HIGH (LOW maps to -1, HIGH '
                                'to 1)')
            config[range_field] = range_text(*TYPE_RANGES[dtype])
        else:
            config[range_field] = range_text(
                *config_lib.parse_range(config[range_field], range_field))
    return config


def to_unit_numpy(values, scaling):
    """numpy values stored as `scaling` says -> float32 in [-1, 1], clipped (the arithmetic
    of preprocessing.to_unit_range)."""
    half = np.float32((scaling.high - scaling.low) / 2)
    unit = (np.asarray(values, np.float32) - np.float32(scaling.low)) / half - np.float32(1)
    return np.clip(unit, -1, 1)


def from_unit_numpy(unit, scaling, out=None):
    """float32 numpy in [-1, 1] -> values in `scaling`'s dtype and range, rounded (half to
    even) for integer types, clipped to the range; into `out` when given. Works in place on
    `unit` (the arithmetic of preprocessing.from_unit_range)."""
    unit += np.float32(1)
    unit *= np.float32((scaling.high - scaling.low) / 2)
    if scaling.low:
        unit += np.float32(scaling.low)
    if np.issubdtype(np.dtype(scaling.dtype), np.integer):
        np.round(unit, out=unit)
    np.clip(unit, scaling.low, scaling.high, out=unit)
    if out is None:
        return unit.astype(scaling.dtype)
    out[...] = unit
    return out
