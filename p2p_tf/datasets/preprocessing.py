"""Per-example image ops of the input pipeline: split a side-by-side pair, resize, jitter, scale.

Every op works eagerly and inside `tf.data.Dataset.map`. Images keep their stored type (uint8,
uint16; float32 for other data) until `to_unit_range` maps them to float32 in [-1, 1].
Randomness is stateless: the crop and flip of an example are a function of its seed alone, so
a resumed run sees exactly the jitter of an uninterrupted one.
"""

import tensorflow as tf


def decode_image(contents, channels=3, dtype=tf.uint8):
    """An encoded PNG, JPEG, BMP or GIF -> [H, W, channels] of dtype (uint8, or uint16 for a
    16-bit PNG). 1 and 3 channels are converted from any image (to_channels); other counts
    are the file's own (a 4-channel PNG for 4), checked."""
    if channels in (1, 3):
        return to_channels(tf.io.decode_image(contents, channels=3, dtype=dtype,
                                              expand_animations=False), channels)
    image = tf.io.decode_image(contents, channels=4 if channels == 4 else 0, dtype=dtype,
                               expand_animations=False)
    return tf.ensure_shape(image, [None, None, channels])


def decode_pair(contents, input_channels=3, target_channels=3, direction='AtoB',
                dtype=tf.uint8):
    """Encoded side-by-side image (A left, B right) -> (input, target) [H, W/2, C] each, of
    dtype (uint8, or uint16 for a 16-bit PNG).

    Channel conversion is explicit: the file is decoded as RGB (RGBA when a side takes 4
    channels) and a 1-channel side is converted with the standard luma weights. Sides of
    other channel counts are the file's own (a gray + alpha PNG for 2), checked.
    """
    converted = {input_channels, target_channels} <= {1, 3, 4}
    channels = (4 if 4 in (input_channels, target_channels) else 3) if converted else 0
    image = tf.io.decode_image(contents, channels=channels, dtype=dtype,
                               expand_animations=False)
    half = tf.shape(image)[1] // 2
    a, b = image[:, :half], image[:, half:2 * half]
    source, target = (a, b) if direction == 'AtoB' else (b, a)
    if not converted:
        return (tf.ensure_shape(source, [None, None, input_channels]),
                tf.ensure_shape(target, [None, None, target_channels]))
    return to_channels(source, input_channels), to_channels(target, target_channels)


def to_channels(image, channels):
    """RGB or RGBA [H, W, 3 or 4] -> [H, W, channels] for channels 1, 3 or 4 (alpha dropped
    for 1 and 3)."""
    if channels == image.shape[-1]:
        return image
    if channels == 1:
        return tf.image.rgb_to_grayscale(image[..., :3])
    if channels == 3:
        return image[..., :3]
    raise ValueError(f'cannot convert {image.shape[-1]} channels to {channels}')


def resize(image, size):
    """[..., H, W, C] -> [..., size, size, C] (or [..., height, width, C] for size=(height,
    width)); bilinear, antialiased when shrinking. Integer images stay in their type (rounded,
    clipped to its range), others become float32."""
    # Bilinear rather than the tutorial's nearest neighbour: enlarging 256 -> 286 by repeating
    # rows leaves a regular stripe pattern that the discriminator can learn to look for.
    size = [size, size] if isinstance(size, int) else list(size)
    dtype = tf.as_dtype(image.dtype)
    resized = tf.image.resize(image, size, method='bilinear', antialias=True)
    if not dtype.is_integer:
        return resized
    return tf.cast(tf.clip_by_value(tf.round(resized), dtype.min, dtype.max), dtype)


def random_jitter(source, target, seed, crop_size, flip=True, vertical_flip=False,
                  rotate90=False):
    """The same random crop_size crop ((height, width), or a number for a square), and the
    same random mirroring, of source and target; optionally also the same random vertical flip
    and rotation by a multiple of 90 degrees (for aerial, microscopy and other data without an
    up direction; square crops only).

    source, target: [H, W, C1], [H, W, C2] with the same H and W; seed: int [2] tensor.
    """
    height, width = (crop_size, crop_size) if isinstance(crop_size, int) else crop_size
    crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    channels = tf.shape(source)[-1]
    stacked = tf.concat([source, target], axis=-1)
    cropped = tf.image.stateless_random_crop(
        stacked, [height, width, tf.shape(stacked)[-1]], seed=crop_seed)
    if flip:
        cropped = tf.image.stateless_random_flip_left_right(cropped, seed=flip_seed)
    if vertical_flip or rotate90:
        # Seeds of their own, derived so that turning these on leaves crops and mirrors as
        # they were (a run's data stays the same with the defaults).
        vertical_seed, rotate_seed = tf.unstack(
            tf.random.experimental.stateless_split(flip_seed, 2))
        if vertical_flip:
            cropped = tf.image.stateless_random_flip_up_down(cropped, seed=vertical_seed)
        if rotate90:
            turns = tf.random.stateless_uniform([], rotate_seed, 0, 4, dtype=tf.int32)
            cropped = tf.image.rot90(cropped, k=turns)
    return cropped[..., :channels], cropped[..., channels:]


def to_unit_range(image, value_range=(0.0, 255.0)):
    """Stored values [..., C] -> float32 in [-1, 1]: value_range's low -> -1, high -> 1,
    values outside clipped (value_ranges.py says where a side's range comes from; uint8 in
    [0, 255] by default)."""
    low, high = value_range
    unit = (tf.cast(image, tf.float32) - low) / ((high - low) / 2) - 1.0
    return tf.clip_by_value(unit, -1.0, 1.0)


def from_unit_range(image, dtype=tf.uint8, value_range=(0.0, 255.0)):
    """float [..., C] in [-1, 1] -> values of dtype in value_range (to_unit_range undone):
    rounded (half to even) for integer types, clipped to the range."""
    low, high = value_range
    values = (image + 1.0) * ((high - low) / 2)
    if low:
        values += low
    dtype = tf.as_dtype(dtype)
    if dtype.is_integer:
        values = tf.round(values)
    return tf.cast(tf.clip_by_value(values, low, high), dtype)


def to_uint8(image):
    """float [..., C] in [-1, 1] -> uint8 in [0, 255], rounded and clipped."""
    return from_unit_range(image)


def reflect_indices(size, before, after):
    """Indices into [0, size) of a mirror padding (no edge repeat) of `before` and `after`
    extra positions; unlike tf.pad's REFLECT mode, the padding may exceed the size."""
    period = tf.maximum(2 * (size - 1), 1)
    # Shifted by whole periods to be non-negative: the ONNX conversion of floormod truncates
    # like C's %, which differs from floormod on negative numbers.
    positions = tf.range(-before, size + after) + period * (before // period + 1)
    folded = tf.math.floormod(positions, period)
    return tf.minimum(tf.where(folded < size, folded, period - folded), size - 1)


def pad_to_multiple(images, multiple):
    """Mirror-pads [batch, H, W, C] images on all sides, split evenly, so H and W become
    multiples of `multiple`. Returns (padded, (top, left, H, W)) for `crop_padding`. Works on
    dynamic shapes inside a tf.function."""
    shape = tf.shape(images)
    height, width = shape[1], shape[2]
    pad_height = (multiple - height % multiple) % multiple
    pad_width = (multiple - width % multiple) % multiple
    top, left = pad_height // 2, pad_width // 2
    images = tf.gather(images, reflect_indices(height, top, pad_height - top), axis=1)
    images = tf.gather(images, reflect_indices(width, left, pad_width - left), axis=2)
    return images, (top, left, height, width)


def crop_padding(images, window):
    """Undoes `pad_to_multiple`: [batch, H', W', C] -> [batch, H, W, C]."""
    top, left, height, width = window
    return images[:, top:top + height, left:left + width]
