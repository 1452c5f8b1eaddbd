"""The layouts of a dataset folder, and the one function that lists a split's pairs in any of
them (`split_pairs`): training, evaluation, the TFDS builder and `python -m p2p_tf.data check`
all read a folder through it.

A split SPLIT of a folder ROOT is, in the order looked for:
- ROOT/SPLIT/A/ and ROOT/SPLIT/B/: separate images matched by file name without extension
  (x.jpg with x.png); a file without a partner is an error naming it;
- ROOT/SPLIT/: side-by-side files (A left, B right), given as (path, '');
- ROOT/SPLIT.csv: a manifest with columns a,b of paths (relative to the CSV's folder).
A folder with no split at all holds its pairs (side-by-side files, or A/ and B/) directly:
`training_examples` splits it with a seeded permutation.
"""

import csv
import os

import numpy as np

from p2p_tf import config as config_lib
from p2p_tf.datasets.image_files import list_images, natural_key
from p2p_tf.errors import UserError

# The folders of separate input (A) and target (B) images.
SIDES = ('A', 'B')


def split_pairs(root, split):
    """The examples of one split, as (a, b) path pairs in natural order, from (the first that
    exists):
    - root/split/A/ and root/split/B/: separate images matched by file name without extension
      (x.jpg with x.png); a file without a partner is an error naming it;
    - root/split/: side-by-side files (A left, B right), given as (path, '');
    - root/split.csv: a manifest with columns a,b of paths (relative to the CSV's folder).
    """
    folder = os.path.join(root, split)
    if any(os.path.isdir(os.path.join(folder, side)) for side in SIDES):
        return matched_examples(folder)
    if not os.path.isdir(folder) and os.path.isfile(folder + '.csv'):
        return manifest_examples(folder + '.csv')
    return [(path, '') for path in split_files(root, split)]


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


def matched_examples(folder):
    """(A/x.*, B/x.*) pairs of `folder`, matched by file name without extension."""
    by_stem = {}
    for side in SIDES:
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
        return (split_pairs(root, train_split),
                split_pairs(root, sample_split(root, sample_split_name)))
    if not os.path.isdir(root):
        raise UserError(f'data folder {root} does not exist')
    if not (list_images(root) or os.path.isdir(os.path.join(root, 'A'))):
        raise UserError(f'{root} has no {train_split}/ split (a folder or {train_split}.csv) '
                        'and no pairs of its own to split')
    everything = split_pairs(root, '')
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
    for split in config_lib.EVAL_SPLITS + ('train',):
        if has_split(root, split):
            return split
    raise UserError(f'{root} has no val/, test/ or train/ folder')
