"""tf.data pipelines: paired images -> batches of (input, target) float32 in [-1, 1].

Training order and jitter are a pure function of (seed, example number): each epoch visits the
files in a seeded permutation, and example k of the run gets the crop and flip of seed
(seed, k). A run resumed at step s starts at example s * batch_size and sees exactly what an
uninterrupted run would have seen, with no iterator state in the checkpoint.
"""

import tensorflow as tf

from p2p_tf import preprocessing

AUTOTUNE = tf.data.AUTOTUNE


def load_resized(path_a, path_b, size, input_channels, target_channels, direction):
    """One example -> (input, target) uint8 [size, size, C], no jitter.

    path_a, path_b: a side-by-side file and '', or the files of sides A and B.
    """
    def side_by_side():
        return preprocessing.decode_pair(
            tf.io.read_file(path_a), input_channels, target_channels, direction)

    def separate():
        a, b = (tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
                for path in (path_a, path_b))
        source, target = (a, b) if direction == 'AtoB' else (b, a)
        return (preprocessing.to_channels(source, input_channels),
                preprocessing.to_channels(target, target_channels))

    source, target = tf.cond(tf.strings.length(path_b) > 0, separate, side_by_side)
    return preprocessing.resize(source, size), preprocessing.resize(target, size)


def path_columns(examples):
    """Side-by-side paths or (a, b) pairs (see datasets.split_examples) -> (a paths, b paths),
    b '' for side-by-side files."""
    pairs = [(example, '') if isinstance(example, str) else tuple(example)
             for example in examples]
    return [a for a, _ in pairs], [b for _, b in pairs]


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


def train_dataset(examples, config, start_example=0, cache=None):
    """Endless dataset of jittered (input, target) batches, float32 [batch, S, S, C] in [-1, 1].

    examples: side-by-side pair files, or (a, b) pairs from datasets.split_examples; config: a
    resolved config; start_example: number of examples already consumed (step * batch_size)
    by the run being resumed; cache: force the in-memory cache of decoded, resized pairs on or
    off (None: on when it fits in config.cache_megabytes).
    """
    load = lambda path_a, path_b: load_resized(
        path_a, path_b, config.load_size, config.input_channels, config.output_channels,
        config.direction)
    columns = path_columns(examples)
    if cache is None:
        cache = decoded_bytes(len(examples), config.load_size, config.input_channels,
                              config.output_channels) <= config.cache_megabytes * 2 ** 20
    if cache:
        sources, targets = (tf.data.Dataset.from_tensor_slices(columns).map(load, AUTOTUNE)
                            .batch(len(examples)).get_single_element())
        fetch = lambda index: (tf.gather(sources, index), tf.gather(targets, index))
    else:
        files_a, files_b = (tf.constant(column) for column in columns)
        fetch = lambda index: load(tf.gather(files_a, index), tf.gather(files_b, index))

    def example(number, index):
        source, target = fetch(index)
        seed = tf.stack([tf.cast(config.seed, tf.int64), number])
        source, target = preprocessing.random_jitter(
            source, target, seed, config.image_size, config.random_flip,
            config.random_vertical_flip, config.random_rotate90)
        return preprocessing.to_unit_range(source), preprocessing.to_unit_range(target)

    dataset = example_order(len(examples), config.seed, start_example)
    dataset = dataset.map(example, num_parallel_calls=AUTOTUNE, deterministic=True)
    return dataset.batch(config.batch_size, drop_remainder=True).prefetch(AUTOTUNE)


def eval_dataset(examples, config, batch_size=1):
    """Finite dataset of (input, target) resized to image_size, no jitter, in order.

    examples: as for train_dataset.
    """
    def example(path_a, path_b):
        source, target = load_resized(path_a, path_b, config.image_size, config.input_channels,
                                      config.output_channels, config.direction)
        return preprocessing.to_unit_range(source), preprocessing.to_unit_range(target)

    dataset = tf.data.Dataset.from_tensor_slices(path_columns(examples)).map(example, AUTOTUNE)
    return dataset.batch(batch_size).prefetch(AUTOTUNE)
