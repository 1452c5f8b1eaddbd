"""tf.data pipelines: paired files -> batches of (input, target) float32 in [-1, 1].

Training order and jitter are a pure function of (seed, example number): each epoch visits the
files in a seeded permutation, and example k of the run gets the crop and flip of seed
(seed, k). A run resumed at step s starts at example s * batch_size and sees exactly what an
uninterrupted run would have seen, with no iterator state in the checkpoint.
"""

import tensorflow as tf

from p2p_tf import preprocessing

AUTOTUNE = tf.data.AUTOTUNE


def load_resized(path, size, input_channels, target_channels, direction):
    """File path -> (input, target) uint8 [size, size, C], no jitter."""
    source, target = preprocessing.decode_pair(
        tf.io.read_file(path), input_channels, target_channels, direction)
    return preprocessing.resize(source, size), preprocessing.resize(target, size)


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


def decoded_bytes(num_files, size, input_channels, target_channels):
    return num_files * size * size * (input_channels + target_channels)


def train_dataset(paths, config, start_example=0, cache=None):
    """Endless dataset of jittered (input, target) batches, float32 [batch, S, S, C] in [-1, 1].

    paths: side-by-side pair files; config: a resolved config; start_example: number of
    examples already consumed (step * batch_size) by the run being resumed; cache: force the
    in-memory cache of decoded, resized pairs on or off (None: on when it fits in
    config.cache_megabytes).
    """
    load = lambda path: load_resized(path, config.load_size, config.input_channels,
                                     config.output_channels, config.direction)
    if cache is None:
        cache = decoded_bytes(len(paths), config.load_size, config.input_channels,
                              config.output_channels) <= config.cache_megabytes * 2 ** 20
    if cache:
        sources, targets = (tf.data.Dataset.from_tensor_slices(paths).map(load, AUTOTUNE)
                            .batch(len(paths)).get_single_element())
        fetch = lambda index: (tf.gather(sources, index), tf.gather(targets, index))
    else:
        files = tf.constant(paths)
        fetch = lambda index: load(tf.gather(files, index))

    def example(number, index):
        source, target = fetch(index)
        seed = tf.stack([tf.cast(config.seed, tf.int64), number])
        source, target = preprocessing.random_jitter(
            source, target, seed, config.image_size, config.random_flip,
            config.random_vertical_flip, config.random_rotate90)
        return preprocessing.to_unit_range(source), preprocessing.to_unit_range(target)

    dataset = example_order(len(paths), config.seed, start_example)
    dataset = dataset.map(example, num_parallel_calls=AUTOTUNE, deterministic=True)
    return dataset.batch(config.batch_size, drop_remainder=True).prefetch(AUTOTUNE)


def eval_dataset(paths, config, batch_size=1):
    """Finite dataset of (input, target) resized to image_size, no jitter, in file order."""
    def example(path):
        source, target = load_resized(path, config.image_size, config.input_channels,
                                      config.output_channels, config.direction)
        return preprocessing.to_unit_range(source), preprocessing.to_unit_range(target)

    dataset = tf.data.Dataset.from_tensor_slices(paths).map(example, AUTOTUNE)
    return dataset.batch(batch_size).prefetch(AUTOTUNE)
