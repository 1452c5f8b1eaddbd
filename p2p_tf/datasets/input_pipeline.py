"""tf.data pipelines: paired images -> batches of (input, target) float32 in [-1, 1].

Each side is decoded in its stored type (8- or 16-bit images, .npy and TIFF arrays of any band
count) and scaled by its value range (value_ranges.py) before the jitter.

The examples are image files, or the records of a pix2pix dataset's TFDS builder read by index
(tfds_builder.py). Training order and jitter are a pure function of (seed, example number):
each epoch visits the examples in a seeded permutation, and example k of the run gets the crop
and flip of seed (seed, k). A run resumed at step s starts at example s * batch_size and sees
exactly what an uninterrupted run would have seen, with no iterator state in the checkpoint.
"""

import numpy as np
import tensorflow as tf

from p2p_tf import image_sizes
from p2p_tf.datasets import array_files, image_files, preprocessing, value_ranges

AUTOTUNE = tf.data.AUTOTUNE


def without_autotune_thread(dataset):
    """The dataset with tf.data's autotuning model switched off: deleting an iterator (the end
    of a run) waits for that model's background thread, which was seen to sleep 35-42 s before
    it noticed, in 3 of 8 short training runs here. AUTOTUNE parallelism then stays at the
    number of cores; on 2 cores the pipeline still delivers about 1,000x what training
    consumes (docs/speed.md)."""
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)


def is_array_contents(encoded):
    """Whether encoded file bytes (a string tensor) are a .npy array or a TIFF."""
    magics = (array_files.NPY_MAGIC,) + array_files.TIFF_MAGICS
    return tf.reduce_any([tf.equal(tf.strings.substr(encoded, 0, len(magic)), magic)
                          for magic in magics])


def decode_side(encoded, channels, dtype=tf.uint8):
    """One side's encoded file -> [H, W, channels] of dtype (uint8, uint16 or float32; a
    value_ranges.Scaling's pipeline_dtype): PNG and JPEG through TensorFlow's decoders, .npy
    and TIFF arrays through numpy, cast to dtype (value_ranges.resolve checked that each
    side's files share one type)."""
    dtype = tf.as_dtype(dtype)

    def image():
        image_dtype = dtype if dtype in (tf.uint8, tf.uint16) else tf.uint8
        return tf.cast(preprocessing.decode_image(encoded, channels, image_dtype), dtype)

    def array():
        decoded = tf.numpy_function(
            lambda contents: array_files.decode(contents).astype(dtype.as_numpy_dtype),
            [encoded], dtype, stateful=False)
        return tf.ensure_shape(decoded, [None, None, channels])

    return tf.cond(is_array_contents(encoded), array, image)


def side_dtypes(config):
    """(input, target) types the pipeline decodes a config's sides to."""
    return tuple(value_ranges.side_scaling(config, side).pipeline_dtype
                 for side in ('input', 'target'))


def side_ranges(config):
    """(input, target) value ranges (low, high) of a config's sides, mapped to [-1, 1]."""
    return tuple(value_ranges.side_scaling(config, side).value_range
                 for side in ('input', 'target'))


def decode_example(encoded_a, encoded_b, input_channels, target_channels, direction,
                   dtypes=('uint8', 'uint8')):
    """One example's encoded files -> (input, target) [H, W, C] at the files' own size, of
    `dtypes` (side_dtypes of the run's config).

    encoded_a, encoded_b: a side-by-side image and '', or the files of sides A and B.
    """
    def side_by_side():
        source, target = preprocessing.decode_pair(encoded_a, input_channels, target_channels,
                                                   direction, dtypes[0])
        return source, tf.cast(target, dtypes[1])

    def separate():
        source, target = ((encoded_a, encoded_b) if direction == 'AtoB'
                          else (encoded_b, encoded_a))
        return (decode_side(source, input_channels, dtypes[0]),
                decode_side(target, target_channels, dtypes[1]))

    return tf.cond(tf.strings.length(encoded_b) > 0, separate, side_by_side)


def load_resized(encoded_a, encoded_b, size, config):
    """decode_example of a config's sides, then both images resized to size ((height, width)
    or a number for a square) in their stored type; no jitter."""
    source, target = decode_example(encoded_a, encoded_b, config.input_channels,
                                    config.output_channels, config.direction,
                                    side_dtypes(config))
    return preprocessing.resize(source, size), preprocessing.resize(target, size)


def to_unit_ranges(source, target, config):
    """(input, target) stored values -> float32 in [-1, 1], by the config's value ranges."""
    input_range, target_range = side_ranges(config)
    return (preprocessing.to_unit_range(source, input_range),
            preprocessing.to_unit_range(target, target_range))


def example_reader(examples):
    """(number of examples, read): read maps an example's index, an int64 scalar tensor, to its
    encoded images (a, b) for load_resized.

    examples: a list of side-by-side pair files or of (a, b) pairs (datasets.split_examples),
    read from disk; or a TFDS data source of pix2pix records holding the halves as PNG bytes
    (tfds_builder.training_examples), read by index.
    """
    if not isinstance(examples, (list, tuple)):
        def read_record(index):
            record = examples[int(index)]
            return record['image_a'], record['image_b']

        def read(index):
            encoded = tf.numpy_function(read_record, [index], (tf.string, tf.string),
                                        stateful=False)
            return tuple(tf.ensure_shape(image, []) for image in encoded)
        return len(examples), read

    pairs = [(example, '') if isinstance(example, str) else tuple(example)
             for example in examples]
    files_a, files_b = (tf.constant(column) for column in zip(*pairs))
    # Files with an EXIF orientation (phone photos) are read upright, as a viewer shows them:
    # re-encoded as PNG by Pillow, since TensorFlow's decoders ignore the tag. Others are read
    # as they are, so a dataset without the tag reads exactly as before.
    turned = {path for pair in pairs for path in pair
              if path and image_files.orientation(path) != image_files.UPRIGHT}

    def read_file(path):
        if not turned:
            return tf.io.read_file(path)
        return tf.cond(
            tf.reduce_any(tf.equal(path, tf.constant(sorted(turned)))),
            lambda: tf.ensure_shape(tf.numpy_function(
                lambda p: image_files.upright_png(np.asarray(p).item().decode()), [path], tf.string,
                stateful=False), []),
            lambda: tf.io.read_file(path))

    def read(index):
        path_b = tf.gather(files_b, index)
        encoded_b = tf.cond(tf.strings.length(path_b) > 0, lambda: read_file(path_b),
                            lambda: tf.constant(''))
        return read_file(tf.gather(files_a, index)), encoded_b
    return len(examples), read


def example_order(num_files, seed, start_example=0):
    """Dataset of (example number, file index) from start_example on, forever.

    Epoch e visits the files in the permutation seeded by (seed, e).
    """
    first_epoch = start_example // num_files

    def epoch_order(epoch):
        permutation = tf.random.experimental.stateless_shuffle(
            tf.range(num_files, dtype=tf.int64), seed=tf.stack([tf.cast(seed, tf.int64), epoch]))
        return tf.data.Dataset.from_tensor_slices(permutation)

    order = tf.data.Dataset.range(first_epoch, 2 ** 62).flat_map(epoch_order)
    order = order.skip(start_example - first_epoch * num_files)
    return tf.data.Dataset.zip(tf.data.Dataset.range(start_example, 2 ** 62), order)


def decoded_bytes(num_files, size, config):
    """Memory of num_files decoded pairs of a config's sides at size ((height, width))."""
    height, width = size
    itemsizes = [tf.as_dtype(dtype).size for dtype in side_dtypes(config)]
    return num_files * height * width * (config.input_channels * itemsizes[0]
                                         + config.output_channels * itemsizes[1])


def train_dataset(examples, config, start_example=0, cache=None, batch_size=None, shards=1,
                  shard=0):
    """Endless dataset of jittered (input, target) batches, float32 [batch, H, W, C] in [-1, 1]
    (H x W: the config's image_size).

    examples: as for example_reader; config: a resolved config; start_example: number of
    examples already consumed (step * batch_size) by the run being resumed; cache: force the
    in-memory cache of decoded, resized pairs on or off (None: on when it fits in
    config.cache_megabytes). batch_size (default config.batch_size), shards and shard: batches
    of this many of the examples numbered shard, shard + shards, ... (one worker's share of a
    distributed run, distribution.distribute_dataset); each example keeps its number, so its
    jitter is the same however the run is split.
    """
    count, read = example_reader(examples)
    load_shape, crop_shape = image_sizes.load_shape(config), image_sizes.image_shape(config)
    def load(index):
        return load_resized(*read(index), load_shape, config)
    if cache is None:
        cache = decoded_bytes(count, load_shape, config) <= (
            config.cache_megabytes * 2 ** 20)
    if cache:
        sources, targets = (tf.data.Dataset.range(count).map(load, AUTOTUNE)
                            .batch(count).get_single_element())
        def fetch(index):
            return (tf.gather(sources, index), tf.gather(targets, index))
    else:
        fetch = load

    def example(number, index):
        source, target = fetch(index)
        if source.dtype != target.dtype:
            # The jitter crops both sides as one stack, so of one type: float32 holds every
            # 8- and 16-bit value exactly. Sides of one type are jittered as stored, a quarter
            # of the bytes for 8-bit images.
            source, target = tf.cast(source, tf.float32), tf.cast(target, tf.float32)
        seed = tf.stack([tf.cast(config.seed, tf.int64), number])
        source, target = preprocessing.random_jitter(
            source, target, seed, crop_shape, config.random_flip,
            config.random_vertical_flip, config.random_rotate90)
        return to_unit_ranges(source, target, config)

    dataset = example_order(count, config.seed, start_example).shard(shards, shard)
    dataset = dataset.map(example, num_parallel_calls=AUTOTUNE, deterministic=True)
    return without_autotune_thread(
        dataset.batch(batch_size or config.batch_size, drop_remainder=True).prefetch(AUTOTUNE))


def eval_dataset(examples, config, batch_size=1):
    """Finite dataset of (input, target) resized to the config's eval_size (by default its
    image_size), no jitter, in order.

    examples: as for train_dataset.
    """
    count, read = example_reader(examples)
    shape = image_sizes.eval_shape(config)

    def example(index):
        return to_unit_ranges(*load_resized(*read(index), shape, config), config)

    dataset = tf.data.Dataset.range(count).map(example, AUTOTUNE)
    return without_autotune_thread(dataset.batch(batch_size).prefetch(AUTOTUNE))
