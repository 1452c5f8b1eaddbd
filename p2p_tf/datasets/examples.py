"""Which examples a run's splits hold: what training, its periodic evaluation, `evaluate` and
the FCN-score read, for every kind of dataset.

The pix2pix datasets come as TFDS data sources of their prepared builder (tfds_builder.py);
folder datasets and mnist_pairs as lists of file pairs (layouts.py). Both feed
input_pipeline.train_dataset and eval_dataset.
"""

import os

from p2p_tf import config as config_lib
from p2p_tf import image_sizes
from p2p_tf.datasets import image_files, input_pipeline, layouts, sources, tfds_builder
from p2p_tf.errors import UserError


def training_data(config, data_dir=None):
    """(training examples, sample examples, [(unreadable path, reason)]) of a resolved config:
    TFDS data sources for the pix2pix datasets, file paths otherwise (see
    input_pipeline.train_dataset)."""
    if config.dataset in config_lib.PIX2PIX_DATASETS:
        # Read through the TFDS builder, which decoded and checked every file when it prepared
        # the dataset.
        return tfds_builder.training_examples(config, data_dir) + ([],)
    root = sources.dataset_root(config.dataset, data_dir)
    train_examples, sample_examples = layouts.training_examples(
        root, config.train_split, config.sample_split, config.val_fraction, config.seed)
    sample_examples = sample_examples[:config.num_samples]
    # Unreadable files are left out with a warning rather than ending the run; files that open
    # but have the wrong shape are errors, since the whole dataset is likely laid out wrongly.
    train_examples, unreadable = image_files.readable_examples(train_examples)
    if not train_examples:
        raise UserError(f'none of the training images in {root} can be read')
    image_files.check_examples(train_examples + sample_examples,
                                min(image_sizes.image_shape(config)))
    return train_examples, sample_examples, unreadable


def split_examples(config, split, data_dir=None):
    """All examples of one split of a resolved config's dataset, in order, for evaluation: a
    TFDS data source or a list of file pairs (either feeds input_pipeline.eval_dataset)."""
    if config.dataset in config_lib.PIX2PIX_DATASETS:
        return tfds_builder.split_source(tfds_builder.prepare(config.dataset, data_dir), split)
    root = sources.dataset_root(config.dataset, data_dir)
    if not layouts.has_split(root, split):
        raise UserError(f'{root} has no split {split!r} (no {split}/ folder or {split}.csv)')
    return layouts.split_pairs(root, split)


def resolve_eval_split(config, data_dir=None):
    """The split periodic evaluation reads: config.eval_split, or for AUTO the first of
    config.EVAL_SPLITS the dataset has, else None."""
    if config.eval_split != config_lib.AUTO:
        return config.eval_split
    if config.dataset in config_lib.PIX2PIX_DATASETS:
        present = set(tfds_builder.prepare(config.dataset, data_dir).info.splits)
        has_split = present.__contains__
    else:
        root = sources.dataset_root(config.dataset, data_dir)
        has_split = lambda split: layouts.has_split(root, split)  # noqa: E731
    return next((split for split in config_lib.EVAL_SPLITS if has_split(split)), None)


def example_inputs(config, data_dir=None, count=1):
    """The input halves of the first `count` pairs of the val (else test) split of a local copy
    of config.dataset (sources.local_copy; for 'folder', data_dir itself), in any layout
    split_pairs reads, at their own size: {file name: [H, W, input_channels] in the stored
    type}; {} when there is no such copy. The notebooks and the demo start from them.

    config: anything with dataset, direction, input_channels and output_channels (a run's
    config, or a Translator's).
    """
    if config.dataset == config_lib.FOLDER_DATASET:
        root = data_dir if data_dir and os.path.isdir(data_dir) else None
    else:
        root = sources.local_copy(config.dataset, data_dir, archive=False)
    split = next((split for split in config_lib.EVAL_SPLITS
                  if root and layouts.has_split(root, split)), None)
    if split is None:
        return {}
    pairs = layouts.split_pairs(root, split)[:count]
    _, read = input_pipeline.example_reader(pairs)
    examples = {}
    for index, (path, _) in enumerate(pairs):
        source, _ = input_pipeline.decode_example(*read(index), config.input_channels,
                                                  config.output_channels, config.direction,
                                                  input_pipeline.side_dtypes(config))
        examples[os.path.basename(path)] = source.numpy()
    return examples
