"""Multi-band array files: numpy `.npy` arrays [H, W, N] and (Geo)TIFF files of any band
count and value type, read and written with numpy (TIFF through tifffile, the `tiff` extra).

Everything here works on whole files or their bytes and needs no TensorFlow: the input
pipeline decodes these files inside `tf.numpy_function` (input_pipeline.decode_side), where
TensorFlow's own decoders read PNG and JPEG.
"""

import io
import os
import typing

import numpy as np

from p2p_tf.errors import UserError

NPY_EXTENSION = '.npy'
TIFF_EXTENSIONS = ('.tif', '.tiff')
ARRAY_EXTENSIONS = (NPY_EXTENSION,) + TIFF_EXTENSIONS
# The first bytes of each format (numpy's format spec; TIFF 6.0, little and big endian, and
# BigTIFF).
NPY_MAGIC = b'\x93NUMPY'
TIFF_MAGICS = (b'II*\x00', b'MM\x00*', b'II+\x00', b'MM\x00+')


class ArrayHeader(typing.NamedTuple):
    """What a file's header says: (width, height), band count, numpy dtype name."""
    size: tuple
    bands: int
    dtype: str


def is_array_file(path):
    return os.fspath(path).lower().endswith(ARRAY_EXTENSIONS)


def is_array_bytes(contents):
    """Whether encoded file bytes are a .npy array or a TIFF (by their first bytes)."""
    return contents[:6] == NPY_MAGIC or contents[:4] in TIFF_MAGICS


def tifffile():
    try:
        import tifffile
    except ImportError:
        raise UserError('reading and writing TIFF files needs tifffile: pip install '
                        '"p2p_tf[tiff]" (or pip install tifffile)') from None
    return tifffile


def bands_last(array, axes):
    """A TIFF series' array with axes (tifffile's letters, e.g. 'SYX' for planar bands,
    'YXS' for interleaved ones) -> [H, W, bands]: every axis other than Y and X (samples,
    pages, channels) becomes a band."""
    if 'Y' not in axes or 'X' not in axes:
        raise ValueError(f'the TIFF has no image axes (its axes are {axes})')
    order = [axes.index('Y'), axes.index('X')]
    order += [i for i in range(array.ndim) if i not in order]
    array = np.transpose(array, order)
    return array.reshape(array.shape[:2] + (-1,))


def band_shape(shape):
    """The [H, W, bands] shape of an array of `shape`: [H, W] has one band; anything but
    [H, W] and [H, W, N] is a ValueError."""
    if len(shape) not in (2, 3):
        raise ValueError(f'the array has shape {tuple(shape)}; an image array is [H, W] or '
                         '[H, W, bands]')
    return tuple(shape) + (1,) * (3 - len(shape))


def as_bands(array):
    """[H, W] -> [H, W, 1]; [H, W, N] as it is; anything else is a ValueError."""
    return array.reshape(band_shape(array.shape))


def read_header(path):
    """ArrayHeader of a .npy or TIFF file without reading its pixels; a UserError naming the
    file if it cannot be read."""
    try:
        if os.fspath(path).lower().endswith(NPY_EXTENSION):
            # Memory-mapped: only the header is read.
            array = np.load(path, mmap_mode='r', allow_pickle=False)
            shape, dtype = band_shape(array.shape), array.dtype
        else:
            with tifffile().TiffFile(path) as tiff:
                series = tiff.series[0]
                shape = bands_last(np.broadcast_to(np.zeros((), np.uint8), series.shape),
                                   series.axes).shape
                dtype = series.dtype
    except (OSError, ValueError) as e:
        raise UserError(f'cannot read array {path}: {e}') from None
    return ArrayHeader((shape[1], shape[0]), shape[2], np.dtype(dtype).name)


def decode(contents):
    """The bytes of a .npy or TIFF file -> numpy [H, W, bands] in the file's dtype."""
    if contents[:6] == NPY_MAGIC:
        return as_bands(np.load(io.BytesIO(contents), allow_pickle=False))
    with tifffile().TiffFile(io.BytesIO(contents)) as tiff:
        series = tiff.series[0]
        return bands_last(series.asarray(), series.axes)


def read(path):
    """A .npy or TIFF file -> numpy [H, W, bands] in the file's dtype; a UserError naming the
    file if it cannot be read."""
    try:
        with open(path, 'rb') as f:
            return decode(f.read())
    except (OSError, ValueError, EOFError) as e:
        raise UserError(f'cannot read array {path}: {e}') from None


def write(array, path):
    """Writes numpy [H, W, bands] as a .npy array or a TIFF (by the extension), with one
    sample per band interleaved (TIFF's contiguous planar configuration)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    array = as_bands(np.asarray(array))
    if os.fspath(path).lower().endswith(NPY_EXTENSION):
        np.save(path, array, allow_pickle=False)
        return
    # RGB only for 3-band 8- and 16-bit data, which viewers show as a colour image; any other
    # band count is written as bands of one grey sample each.
    rgb = array.shape[-1] == 3 and array.dtype in (np.uint8, np.uint16)
    tifffile().imwrite(path, array, photometric='rgb' if rgb else 'minisblack',
                       planarconfig='contig')
