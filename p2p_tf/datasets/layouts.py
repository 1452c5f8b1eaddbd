"""The layouts of a dataset folder, and the one function that lists a split's pairs in any of
them (`split_pairs`): training, evaluation, the TFDS builder and `python -m p2p_tf.data check`
all read a folder through it. Training stops at the first file that breaks a layout; check
collects them all (split_pairs's `problems`).

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
import typing

import numpy as np

from p2p_tf import config as config_lib
from p2p_tf.datasets.image_files import list_images, natural_key
from p2p_tf.errors import UserError

# The folders of separate input (A) and target (B) images.
SIDES = ('A', 'B')
# The layouts a split can have (split_layout), and their names in messages.
SIDE_BY_SIDE, AB_FOLDERS, MANIFEST = 'side_by_side', 'ab_folders', 'manifest'
LAYOUT_NAMES = {SIDE_BY_SIDE: 'side-by-side files', AB_FOLDERS: 'A/ and B/ folders',
                MANIFEST: 'CSV manifest'}


def split_layout(root, split):
    """(layout, where the split is): (AB_FOLDERS, root/split) if it has A/ or B/, else
    (MANIFEST, root/split.csv) if that exists and root/split does not, else (SIDE_BY_SIDE,
    root/split). split '' is root itself."""
    folder = os.path.join(root, split) if split else os.fspath(root)
    if any(os.path.isdir(os.path.join(folder, side)) for side in SIDES):
        return AB_FOLDERS, folder
    if not os.path.isdir(folder) and os.path.isfile(folder + '.csv'):
        return MANIFEST, folder + '.csv'
    return SIDE_BY_SIDE, folder


def split_pairs(root, split, problems=None):
    """The examples of one split (split '' for a folder with no splits) as (a, b) path pairs,
    b '' for a side-by-side file, read in the split's layout (split_layout; see the module
    docstring): in natural order of the file names, or a manifest's in the order of its rows.

    problems: None (training) raises a UserError at the first thing that breaks the layout (a
    file without a partner, a manifest row naming no file, a split without pairs); a list (check)
    collects every one as a LayoutProblem instead, and the pairs without one are returned.
    """
    layout, where = split_layout(root, split)
    if layout == AB_FOLDERS:
        return matched_examples(where, problems)
    if layout == MANIFEST:
        return manifest_examples(where, problems)
    return [(path, '') for path in split_files(root, split, problems)]


class LayoutProblem(typing.NamedTuple):
    """What breaks a split's layout. kind: 'unmatched', 'missing_file', 'bad_manifest' or
    'empty_split'; paths: the files (the folder or CSV for the last two); detail: in words."""
    kind: str
    paths: tuple
    detail: str


def note_problem(problems, kind, path, detail, error):
    """Collects a LayoutProblem about `path` into `problems` (check), or raises
    UserError(error) if it is None (training)."""
    if problems is None:
        raise UserError(error)
    problems.append(LayoutProblem(kind, (path,), detail))


def require_folder(folder, what):
    """A UserError unless `folder` is a folder: "WHAT FOLDER does not exist" or "is not a
    folder"."""
    if not os.path.isdir(folder):
        raise UserError(f'{what} {folder} is not a folder' if os.path.exists(folder)
                        else f'{what} {folder} does not exist')


def split_files(root, split, problems=None):
    """Sorted image paths in `root/split`; an error names the folder if there are none (see
    split_pairs for `problems`)."""
    folder = os.path.join(root, split)
    require_folder(root, 'data folder')
    if not os.path.isdir(folder):
        present = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
        raise UserError(f'no split folder {folder} (found: {", ".join(present) or "nothing"})')
    paths = list_images(folder)
    if not paths:
        note_problem(problems, 'empty_split', folder, 'no images', f'no images in {folder}')
    return paths


def matched_examples(folder, problems=None):
    """(A/x.*, B/x.*) pairs of `folder`, matched by file name without extension (see
    split_pairs for `problems`)."""
    by_stem = {}
    for side, other in zip(SIDES, SIDES[::-1]):
        side_folder = os.path.join(folder, side)
        if not os.path.isdir(side_folder):
            note_problem(problems, 'unmatched', side_folder,
                         f'no such folder to pair with {other}/',
                         f'{folder} has no {side}/ folder to pair with its other side')
        paths = list_images(side_folder) if os.path.isdir(side_folder) else []
        by_stem[side] = {os.path.splitext(os.path.basename(p))[0]: p for p in paths}
    unmatched = [(by_stem[side][stem], stem, os.path.join(folder, other))
                 for side, other in zip(SIDES, SIDES[::-1])
                 for stem in sorted(by_stem[side].keys() - by_stem[other].keys(), key=natural_key)]
    for path, stem, other_folder in unmatched:
        note_problem(problems, 'unmatched', path, f'no file named {stem}.* in {other_folder}',
                     f'{os.path.join(os.path.dirname(path), stem)}.* has no partner in '
                     f'{other_folder} ({len(unmatched)} unmatched)')
    stems = sorted(by_stem['A'].keys() & by_stem['B'].keys(), key=natural_key)
    if not stems:
        note_problem(problems, 'empty_split', folder, 'no pairs in A/ and B/',
                     f'no images in {os.path.join(folder, "A")}')
    return [(by_stem['A'][stem], by_stem['B'][stem]) for stem in stems]


def manifest_examples(csv_path, problems=None):
    """(a, b) pairs from a CSV with a header naming columns a and b (see split_pairs for
    `problems`)."""
    base = os.path.dirname(os.path.abspath(csv_path))
    with open(csv_path, newline='') as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or not {'a', 'b'} <= set(reader.fieldnames):
            note_problem(problems, 'bad_manifest', csv_path,
                         'needs a header with columns a and b',
                         f'{csv_path} needs a header with columns a and b')
            return []
        examples = []
        for line, row in enumerate(reader, start=2):
            # A short row leaves its last columns None.
            pair = tuple(os.path.join(base, row[column] or '') for column in ('a', 'b'))
            missing = [path for path in pair if not os.path.isfile(path)]
            for path in missing:
                note_problem(problems, 'missing_file', path,
                             f'no such file (line {line} of {csv_path})',
                             f'{csv_path} line {line}: no file {path}')
            if not missing:
                examples.append(pair)
    if not examples:
        note_problem(problems, 'empty_split', csv_path, 'lists no examples',
                     f'{csv_path} lists no examples')
    return examples


def has_split(root, split):
    """Whether `root` has the split `split`: a folder root/split or a manifest root/split.csv."""
    return os.path.isdir(os.path.join(root, split)) or os.path.isfile(
        os.path.join(root, split + '.csv'))


def has_own_pairs(root):
    """Whether `root` holds pairs directly (side-by-side files, or A/ or B/): what a folder with
    no splits is read as, by training (split_pairs(root, '')) and check."""
    return bool(list_images(root)) or any(os.path.isdir(os.path.join(root, side))
                                          for side in SIDES)


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
    require_folder(root, 'data folder')
    if not has_own_pairs(root):
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
