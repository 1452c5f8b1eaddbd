"""Preparing datasets of side-by-side pairs: combine two folders into pairs, and split a folder
into train/val/test (checking a dataset is checking.py).

A pair is one image file with the input (A) on the left and the target (B) on the right, the
layout of the pix2pix authors' datasets; `p2p_tf.train` needs each to be twice as wide as it is
high. These functions return what they did and print nothing; `python -m p2p_tf.data` formats
it. They use Pillow, not TensorFlow.
"""

import dataclasses
import math
import os
import shutil
import tempfile

import numpy as np
from PIL import Image, ImageOps

from p2p_tf import config as config_lib
from p2p_tf.datasets.image_files import IMAGE_EXTENSIONS, list_images, natural_key, read_header
from p2p_tf.datasets.layouts import require_folder
from p2p_tf.errors import UserError

GRAY_MODES = ('1', 'L')
OUTPUT_FORMATS = ('png', 'jpg')
RESAMPLING = {'bicubic': Image.Resampling.BICUBIC, 'nearest': Image.Resampling.NEAREST}


def names_list(names, limit=10):
    """'a, b, c' or 'a, ..., j and 5 more': short enough for a one-line error."""
    names = list(names)
    more = f' and {len(names) - limit} more' if len(names) > limit else ''
    return ', '.join(names[:limit]) + more


# --- combine -------------------------------------------------------------------------------


@dataclasses.dataclass
class CombineResult:
    """What `combine` wrote. Names are file names; `converted` holds (name, A mode, B mode)."""
    written: list
    unmatched_a: list
    unmatched_b: list
    converted: list
    resized: list
    not_square: list


def images_by_stem(folder, what):
    """{file name without extension: path}; two files with one stem could not be told apart."""
    by_stem = {}
    for path in list_images(folder, IMAGE_EXTENSIONS):
        stem = os.path.splitext(os.path.basename(path))[0]
        if stem in by_stem:
            raise UserError(f'{what} {folder} has two files named {stem}: '
                            f'{os.path.basename(by_stem[stem])} and {os.path.basename(path)}')
        by_stem[stem] = path
    return by_stem


def pair_mode(mode_a, mode_b):
    """The mode of a combined pair: gray if both halves are gray, else RGB (the training
    pipeline decodes every pair as RGB anyway; a gray half simply repeats its channel)."""
    return 'L' if mode_a in GRAY_MODES and mode_b in GRAY_MODES else 'RGB'


def combine(a_dir, b_dir, out_dir, resize=None, image_format='png', overwrite=False,
            allow_unmatched=False):
    """Writes OUT/NAME.png (or .jpg) with A/NAME.* on the left and B/NAME.* on the right.

    Files are matched by name without extension (a/x.jpg and b/x.png make x.png). Everything
    that can be checked from headers (unmatched names, halves of different sizes, outputs that
    already exist) is checked before anything is written, so a refused run leaves OUT as it
    was. resize: None (halves of different sizes are an error) or 'bicubic' / 'nearest' (B
    resized to A's size; nearest keeps a label map's colours). PNG is the default because it is
    lossless; JPEG is written at quality 95 and without chroma subsampling, which would smear
    the colour edges of label maps.
    """
    if image_format not in OUTPUT_FORMATS:
        raise UserError(f'unknown format {image_format!r}; use png or jpg')
    if resize is not None and resize not in RESAMPLING:
        raise UserError(f'unknown resize method {resize!r}; use {" or ".join(RESAMPLING)}')
    require_folder(a_dir, 'A folder')
    require_folder(b_dir, 'B folder')
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise UserError(f'output {out_dir} is not a folder')
    for folder in (a_dir, b_dir):
        if os.path.realpath(out_dir) == os.path.realpath(folder):
            raise UserError(f'output {out_dir} is the input folder {folder}; choose another')
    a_files, b_files = images_by_stem(a_dir, 'A folder'), images_by_stem(b_dir, 'B folder')
    names = sorted(a_files.keys() & b_files.keys(), key=natural_key)
    unmatched_a = sorted(a_files.keys() - b_files.keys(), key=natural_key)
    unmatched_b = sorted(b_files.keys() - a_files.keys(), key=natural_key)
    if not names:
        raise UserError(f'no file in {a_dir} ({len(a_files)} images) has a partner with the '
                        f'same name in {b_dir} ({len(b_files)} images)')
    if (unmatched_a or unmatched_b) and not allow_unmatched:
        parts = [f'{len(unmatched)} in {folder} have no partner ({names_list(unmatched)})'
                 for unmatched, folder in ((unmatched_a, a_dir), (unmatched_b, b_dir))
                 if unmatched]
        raise UserError('; '.join(parts) + '; nothing written (--allow_unmatched pairs the '
                        'rest)')

    headers = {name: (read_header(a_files[name]), read_header(b_files[name])) for name in names}
    mismatched = [name for name, ((size_a, _), (size_b, _)) in headers.items()
                  if size_a != size_b]
    if mismatched and resize is None:
        name = mismatched[0]
        (size_a, _), (size_b, _) = headers[name]
        raise UserError(
            f'{len(mismatched)} pair(s) have halves of different sizes, e.g. {a_files[name]} '
            f'({size_a[0]}x{size_a[1]}) and {b_files[name]} ({size_b[0]}x{size_b[1]}); '
            'nothing written (--resize resizes B to the size of A)')
    outputs = {name: os.path.join(out_dir, f'{name}.{image_format}') for name in names}
    existing = [path for path in outputs.values() if os.path.exists(path)]
    if existing and not overwrite:
        raise UserError(f'{len(existing)} output file(s) already exist, e.g. {existing[0]}; '
                        'nothing written (--overwrite replaces them)')

    os.makedirs(out_dir, exist_ok=True)
    result = CombineResult([], unmatched_a, unmatched_b, [], [], [])
    for name in names:
        (size_a, mode_a), (size_b, mode_b) = headers[name]
        mode = pair_mode(mode_a, mode_b)
        try:
            with Image.open(a_files[name]) as a, Image.open(b_files[name]) as b:
                # Upright, as a viewer shows them (EXIF orientation applied).
                a, b = (ImageOps.exif_transpose(image).convert(mode) for image in (a, b))
        except (OSError, SyntaxError, ValueError) as e:
            raise UserError(f'cannot decode the pair {name} ({e}); {len(result.written)} '
                            f'pair(s) written to {out_dir} before it') from None
        if size_b != size_a:
            b = b.resize(size_a, RESAMPLING[resize])
            result.resized.append(name)
        pair = Image.new(mode, (2 * size_a[0], size_a[1]))
        pair.paste(a, (0, 0))
        pair.paste(b, (size_a[0], 0))
        save_atomically(pair, outputs[name], image_format)
        result.written.append(outputs[name])
        if mode_a != mode or mode_b != mode:
            result.converted.append((name, mode_a, mode_b))
        if size_a[0] != size_a[1]:
            result.not_square.append(name)
    return result


def save_atomically(image, path, image_format):
    """Saves through a temporary file, so an interrupted run leaves no half-written image."""
    options = ({'format': 'PNG'} if image_format == 'png' else
               {'format': 'JPEG', 'quality': 95, 'subsampling': 0})
    handle, tmp = tempfile.mkstemp(dir=os.path.dirname(path) or '.', suffix='.tmp')
    try:
        with os.fdopen(handle, 'wb') as f:
            image.save(f, **options)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


# --- split ---------------------------------------------------------------------------------


def split_sizes(count, val, test):
    """{'train': n, 'val': n, 'test': n} for `count` files and the val and test fractions,
    rounded half up (Python's round() would make 0.1 of 5 files 0)."""
    for name, fraction in (('--val', val), ('--test', test)):
        if not (math.isfinite(fraction) and fraction >= 0):
            raise UserError(f'{name} must be a fraction >= 0, got {fraction}')
    if val + test >= 1:
        raise UserError(f'--val + --test must be below 1 to leave files for training, got '
                        f'{val} + {test}')
    sizes = {'val': math.floor(val * count + 0.5), 'test': math.floor(test * count + 0.5)}
    sizes = {'train': count - sizes['val'] - sizes['test'], **sizes}
    for name, fraction in (('train', 1 - val - test), ('val', val), ('test', test)):
        if fraction > 0 and sizes[name] <= 0:
            raise UserError(f'the {name} split would be empty ({fraction:g} of {count} files '
                            'rounds to 0); use more files or a larger fraction')
    return sizes


def plan_split(paths, val, test, seed):
    """{'train': [...], 'val': [...], 'test': [...]}: a partition of `paths` that depends only
    on the file names, the fractions and the seed (a permutation of the naturally sorted list
    by numpy's default_rng(seed)). Empty splits (fraction 0) are left out."""
    paths = sorted(paths, key=natural_key)
    sizes = split_sizes(len(paths), val, test)
    order = np.random.default_rng(seed).permutation(len(paths))
    bounds = {'val': (0, sizes['val']),
              'test': (sizes['val'], sizes['val'] + sizes['test']),
              'train': (sizes['val'] + sizes['test'], len(paths))}
    plan = {}
    for name in config_lib.SPLITS:
        start, stop = bounds[name]
        if stop > start:
            plan[name] = sorted((paths[i] for i in order[start:stop]), key=natural_key)
    return plan


def split(src, out, val=0.1, test=0.1, seed=0, link=False):
    """Copies (or, with link, hard-links) the images in `src` into OUT/train, OUT/val and
    OUT/test; returns {split: [written paths]}.

    OUT must be new or empty: files from an earlier split left beside a new one could land in
    two splits. The splits are built in a temporary folder beside OUT and moved into place at
    the end, so a failed run leaves no partial OUT; `src` is never changed.
    """
    require_folder(src, 'source folder')
    paths = list_images(src, IMAGE_EXTENSIONS)
    if not paths:
        raise UserError(f'no images in {src}')
    plan = plan_split(paths, val, test, seed)
    if os.path.exists(out) and (not os.path.isdir(out) or os.listdir(out)):
        raise UserError(f'output {out} already exists and is not an empty folder; choose a new '
                        'one')
    parent = os.path.dirname(os.path.abspath(out))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(dir=parent, prefix='.split-')
    written = {}
    try:
        for name, files in plan.items():
            os.mkdir(os.path.join(staging, name))
            for path in files:
                target = os.path.join(staging, name, os.path.basename(path))
                if link:
                    try:
                        os.link(path, target)
                    except OSError as e:
                        raise UserError(f'cannot hard-link {path} into {out} ({e.strerror}); '
                                        'leave out --link to copy') from None
                else:
                    shutil.copy2(path, target)
            written[name] = [os.path.join(out, name, os.path.basename(p)) for p in files]
        if os.path.isdir(out):
            os.rmdir(out)
        os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return written
