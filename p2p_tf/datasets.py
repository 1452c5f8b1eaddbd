"""Where a dataset's files come from: a local copy of a named dataset, or the user's folder.

A named dataset (facades, maps, ...) is looked up, in order, in `data_dir` (the `--data_dir`
flag), in `$P2P_TF_DATA_DIR`, and in the cache `$P2P_TF_CACHE_DIR` (default `~/.cache/p2p_tf`).
Each may hold `NAME/` with split folders (`train/`, `val/`, `test/`) or the archive
`NAME.tar.gz`. The pix2pix datasets are read through their TFDS builder (p2p_tf/tfds_builder.py),
which prepares such a copy, or the archive it downloads from the authors' server, once into the
cache. `--dataset=folder` reads split folders of side-by-side pairs (or A/ and B/ folders, or CSV
manifests) straight from `data_dir`. `mnist_pairs` has no archive: with no local
`mnist_pairs/` it is built from TFDS mnist into the cache (p2p_tf/mnist_pairs.py).
"""

import csv
import os

import numpy as np
from PIL import Image

from p2p_tf import config as config_lib
from p2p_tf.errors import UserError, op_error_reason

DOWNLOAD_URL = 'http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/{name}.tar.gz'
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.gif')
DATA_DIR_ENV = 'P2P_TF_DATA_DIR'
CACHE_DIR_ENV = 'P2P_TF_CACHE_DIR'


def cache_dir():
    default = os.path.join(os.path.expanduser('~'), '.cache', 'p2p_tf')
    return os.environ.get(CACHE_DIR_ENV) or default


def search_dirs(data_dir=None):
    """The folders searched for a local copy, in order."""
    dirs = [data_dir, os.environ.get(DATA_DIR_ENV), cache_dir()]
    return [d for d in dirs if d]


def dataset_root(name, data_dir=None):
    """Folder holding the split folders of `--dataset=folder` (data_dir itself) or of mnist_pairs
    (a local copy, else built from TFDS mnist into the cache). The pix2pix datasets are read
    through their TFDS builder instead (p2p_tf/tfds_builder.py), prepared from local_copy()."""
    if name == config_lib.FOLDER_DATASET:
        if not data_dir:
            raise UserError('--dataset=folder needs --data_dir=PATH, a folder with train/ '
                            '(and val/)')
        if not os.path.isdir(data_dir):
            raise UserError(f'data dir {data_dir} does not exist')
        return data_dir
    if name != config_lib.MNIST_PAIRS_DATASET:
        config_lib.dataset_facts(name)  # Unknown names are an error.
        raise UserError(f'{name} is read through its TFDS builder, not as a folder')
    copy = local_copy(name, data_dir, archive=False)
    if copy:
        return copy
    from p2p_tf import mnist_pairs  # Imports TensorFlow; TFDS only when it builds.
    return mnist_pairs.build(os.path.join(cache_dir(), 'extracted', name))


def local_copy(name, data_dir=None, archive=True):
    """The first local copy of dataset `name` in search_dirs(data_dir): the path of an unpacked
    NAME/ with a train/ or val/ folder or, if `archive`, of NAME.tar.gz; None if there is none."""
    config_lib.dataset_facts(name)  # Unknown names are an error.
    if data_dir and not os.path.isdir(data_dir):
        raise UserError(f'data dir {data_dir} does not exist')
    for directory in search_dirs(data_dir):
        folder = os.path.join(directory, name)
        if any(os.path.isdir(os.path.join(folder, split)) for split in ('train', 'val')):
            return folder
        if archive and os.path.isfile(folder + '.tar.gz'):
            return folder + '.tar.gz'
    return None


def split_files(root, split):
    """Sorted image paths in `root/split`; an error names the folder if there are none."""
    folder = os.path.join(root, split)
    if not os.path.isdir(root):
        raise UserError(f'data folder {root} does not exist')
    if not os.path.isdir(folder):
        present = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
        raise UserError(f'no split folder {folder} (found: {", ".join(present) or "nothing"})')
    paths = list_images(folder)
    if not paths:
        raise UserError(f'no images in {folder}')
    return paths


def split_examples(root, split):
    """The examples of one split, as (a, b) path pairs in natural order, from (the first that
    exists):
    - root/split/A/ and root/split/B/: separate images matched by file name without extension
      (x.jpg with x.png); a file without a partner is an error naming it;
    - root/split/: side-by-side files (A left, B right), given as (path, '');
    - root/split.csv: a manifest with columns a,b of paths (relative to the CSV's folder).
    """
    folder = os.path.join(root, split)
    if os.path.isdir(os.path.join(folder, 'A')) or os.path.isdir(os.path.join(folder, 'B')):
        return matched_examples(folder)
    if not os.path.isdir(folder) and os.path.isfile(folder + '.csv'):
        return manifest_examples(folder + '.csv')
    return [(path, '') for path in split_files(root, split)]


def matched_examples(folder):
    """(A/x.*, B/x.*) pairs of `folder`, matched by file name without extension."""
    by_stem = {}
    for side in ('A', 'B'):
        side_folder = os.path.join(folder, side)
        if not os.path.isdir(side_folder):
            raise UserError(f'{folder} has no {side}/ folder to pair with its other side')
        by_stem[side] = {os.path.splitext(os.path.basename(p))[0]: p
                         for p in list_images(side_folder)}
    for side, other in (('A', 'B'), ('B', 'A')):
        missing = sorted(set(by_stem[side]) - set(by_stem[other]))
        if missing:
            raise UserError(f'{os.path.join(folder, side, missing[0])}.* has no partner in '
                            f'{os.path.join(folder, other)} ({len(missing)} unmatched)')
    if not by_stem['A']:
        raise UserError(f'no images in {os.path.join(folder, "A")}')
    stems = sorted(by_stem['A'], key=natural_key)
    return [(by_stem['A'][stem], by_stem['B'][stem]) for stem in stems]


def manifest_examples(csv_path):
    """(a, b) pairs from a CSV with a header naming columns a and b."""
    base = os.path.dirname(os.path.abspath(csv_path))
    with open(csv_path, newline='') as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or not {'a', 'b'} <= set(reader.fieldnames):
            raise UserError(f'{csv_path} needs a header with columns a and b')
        examples = []
        for line, row in enumerate(reader, start=2):
            pair = tuple(os.path.join(base, row[column]) for column in ('a', 'b'))
            for path in pair:
                if not os.path.isfile(path):
                    raise UserError(f'{csv_path} line {line}: no file {path}')
            examples.append(pair)
    if not examples:
        raise UserError(f'{csv_path} lists no examples')
    return examples


def list_images(folder):
    """The image files directly in `folder` (by extension), in natural order."""
    names = (f for f in os.listdir(folder) if f.lower().endswith(IMAGE_EXTENSIONS))
    return sorted((os.path.join(folder, f) for f in names), key=natural_key)


def natural_key(path):
    """Sort key that puts 2.jpg before 10.jpg."""
    stem = os.path.splitext(os.path.basename(path))[0]
    return (0, int(stem), '') if stem.isdigit() else (1, 0, stem)


def has_split(root, split):
    return os.path.isdir(os.path.join(root, split)) or os.path.isfile(
        os.path.join(root, split + '.csv'))


def training_examples(root, train_split='train', sample_split_name=config_lib.AUTO,
                      val_fraction=0.1, seed=0):
    """(training examples, examples for sample grids) of a dataset folder.

    With a train split (folder or CSV), the samples come from sample_split_name (AUTO: val,
    else test, else train). A folder with no splits, holding side-by-side pairs or A/ and B/
    directly, is split here: a seeded permutation puts val_fraction of the examples (at least
    one) aside for the samples and trains on the rest, the same way for the same seed.
    """
    if has_split(root, train_split):
        return (split_examples(root, train_split),
                split_examples(root, sample_split(root, sample_split_name)))
    if not os.path.isdir(root):
        raise UserError(f'data folder {root} does not exist')
    if not (list_images(root) or os.path.isdir(os.path.join(root, 'A'))):
        raise UserError(f'{root} has no {train_split}/ split (a folder or {train_split}.csv) '
                        'and no pairs of its own to split')
    everything = split_examples(root, '')
    if len(everything) < 2:
        raise UserError(f'{root} has no {train_split}/ split and too few pairs to split off '
                        'validation examples')
    order = np.random.default_rng(seed).permutation(len(everything))
    held_out = min(max(1, round(val_fraction * len(everything))), len(everything) - 1)
    return ([everything[i] for i in sorted(order[held_out:])],
            [everything[i] for i in sorted(order[:held_out])])


def sample_split(root, requested):
    """The split shown in TensorBoard grids: `requested`, or for AUTO 'val', else 'test'."""
    if requested != config_lib.AUTO:
        return requested
    for split in ('val', 'test', 'train'):
        if has_split(root, split):
            return split
    raise UserError(f'{root} has no val/, test/ or train/ folder')


def image_size(path):
    """(width, height) from an image file's header, or a UserError naming the file."""
    try:
        with Image.open(path) as image:
            return image.size
    except (OSError, SyntaxError) as e:
        raise UserError(f'cannot read image {path}: {e}') from None


def check_pairs(paths, min_side):
    """Reads each file's header; raises UserError naming the first file that is not a readable
    side-by-side pair (width = 2 x height) with halves of at least min_side pixels."""
    for path in paths:
        width, height = image_size(path)
        if width != 2 * height:
            raise UserError(f'{path} is {width}x{height}: a side-by-side pair must be twice as '
                            'wide as it is high')
        if height < min_side:
            raise UserError(f'{path} has {height}x{height} halves, smaller than the '
                            f'{min_side}x{min_side} crop; lower --config.image_size')


def readable_examples(examples):
    """Splits examples into (those whose files all open, [(path, reason), ...] of the others),
    reading headers only."""
    readable, unreadable = [], []
    for example in examples:
        for path in (path for path in example if path):
            try:
                image_size(path)
            except UserError as e:
                unreadable.append((path, str(e).split(': ', 1)[1]))
                break
        else:
            readable.append(example)
    return readable, unreadable


def check_examples(examples, min_side):
    """check_pairs for side-by-side examples; for separate (a, b) images, that both read and
    have sides of at least min_side. Raises UserError naming the first bad file."""
    check_pairs([a for a, b in examples if not b], min_side)
    for path in (path for a, b in examples if b for path in (a, b)):
        width, height = image_size(path)
        if min(width, height) < min_side:
            raise UserError(f'{path} is {width}x{height}, smaller than the '
                            f'{min_side}x{min_side} crop; lower --config.image_size')


def find_undecodable(paths):
    """Decodes each file fully; returns (path, reason) for the first that fails, else None.

    Used after the input pipeline failed, to name the file (a header can be fine while the
    data is truncated).
    """
    import tensorflow as tf
    for path in paths:
        try:
            tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        except tf.errors.OpError as e:
            return path, op_error_reason(e)
    return None


def undecodable_example(examples):
    """find_undecodable over the files of `examples` ((a, b) path pairs); None for a TFDS data
    source, whose records all decoded when the builder prepared them."""
    if not isinstance(examples, list):
        return None
    return find_undecodable([path for pair in examples for path in pair if path])
