"""Translating a large image in overlapping tiles: each output pixel is the weighted mean of
the tiles covering it (linear ramps over the overlap), and only one row of tiles is held in
float at a time, so memory is bounded by the tile (translation.translate_image uses it)."""

import numpy as np

from p2p_tf.datasets import preprocessing
from p2p_tf.errors import UserError


def mirror_pad(image, multiple):
    """[H, W, C] -> (mirror-padded [H', W', C] with H', W' multiples of `multiple`,
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


def translated_bands(run, padded, tile_size, overlap, to_unit=None):
    """Translates [1, H, W, C] (H, W multiples of 2**depth; stored values that to_unit maps
    to float32 in [-1, 1]; without it, uint8 or float32 in [-1, 1]) tile by tile and yields
    (first row, float32 [rows, W, C_out] in [-1, 1]) bands of finished rows, top to bottom:
    each output pixel is the weighted mean of the tiles covering it. Only the rows the
    current row of tiles covers are held in float."""
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
            if to_unit:
                tile = to_unit(tile)
            elif tile.dtype == np.uint8:
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
