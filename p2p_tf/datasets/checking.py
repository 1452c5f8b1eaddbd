"""Checking a dataset before training on it: `check` lists every split's pairs the way training
does (layouts.split_pairs, in any of the layouts training accepts), decodes every file, and
reports what it found and what would stop or silently spoil training.

It returns what it found and prints nothing; `python -m p2p_tf.data check` formats it. It uses
Pillow, not TensorFlow, so a check starts in a fraction of a second.
"""

import collections
import concurrent.futures
import dataclasses
import hashlib
import io
import os

from PIL import Image

from p2p_tf import config as config_lib
from p2p_tf.datasets import array_files, layouts
from p2p_tf.errors import UserError

# A PNG's last chunk. Pillow decodes a PNG cut off inside its final chunks without complaint,
# but TensorFlow's decoder (the one training uses) rejects it.
PNG_END = b'IEND\xaeB`\x82'
# How an array file's bands and type stand where an image's Pillow mode would: '5-band uint16'.
ARRAY_MODE = '-band '


@dataclasses.dataclass
class ImageInfo:
    """One file as `check` saw it. size is (width, height) from the header; error is why it
    could not be read or decoded, else None."""
    path: str
    size: tuple = None
    mode: str = None
    sha256: str = None
    error: str = None


@dataclasses.dataclass
class SplitReport:
    """One split as `check` read it. source: its folder, or its CSV manifest; layout:
    layouts.SIDE_BY_SIDE, AB_FOLDERS or MANIFEST; pairs: its (a, b) paths as training reads them
    (b '' for a side-by-side file); images: an ImageInfo per file of those pairs; resized:
    (ImageInfo of A, ImageInfo of B) of the pairs of separate images that differ in size (not a
    problem: training resizes both)."""
    name: str
    source: str
    layout: str
    pairs: list
    images: list = dataclasses.field(default_factory=list)
    resized: list = dataclasses.field(default_factory=list)

    @property
    def sizes(self):
        """collections.Counter of (width, height) over the files."""
        return collections.Counter(i.size for i in self.images if i.size)

    @property
    def modes(self):
        """collections.Counter of Pillow modes ('RGB', 'L', 'RGBA', 'P', ...)."""
        return collections.Counter(i.mode for i in self.images if i.mode)


@dataclasses.dataclass
class Problem:
    """kind: 'unreadable', 'not_a_pair', 'duplicate', 'no_training_pairs', or a
    layouts.LayoutProblem kind
    ('unmatched', 'missing_file', 'bad_manifest', 'empty_split'); paths: the files (the folder
    or CSV of a split); detail: the reason, in words."""
    kind: str
    paths: tuple
    detail: str


@dataclasses.dataclass
class CheckReport:
    """problems: what stops or spoils training (Problem); notes: facts worth knowing that
    are not problems, in words (e.g. a folder with val/ but no train/ split)."""
    root: str
    splits: list
    problems: list
    notes: list = dataclasses.field(default_factory=list)

    @property
    def ok(self):
        return not self.problems


def channel_count(mode):
    """Channels of a Pillow mode: 1 for L and P (a palette index), 3 for RGB, 4 for RGBA; N
    for an array's 'N-band DTYPE'."""
    if ARRAY_MODE in mode:
        return int(mode.split(ARRAY_MODE)[0])
    return Image.getmodebands(mode)


def inspect_image(path):
    """Reads and decodes one file; returns its ImageInfo.

    Decoding, not just the header, is what catches a truncated file. A JPEG is decoded at 1/8
    scale (`draft`), which still reads its whole entropy-coded stream but skips most of the
    inverse DCT: about 1.5x faster on 1200x600 maps images.
    """
    info = ImageInfo(path)
    try:
        with open(path, 'rb') as f:
            contents = f.read()
    except OSError as e:
        info.error = f'cannot read the file: {e.strerror}'
        return info
    info.sha256 = hashlib.sha256(contents).hexdigest()
    if array_files.is_array_file(path):
        try:
            array = array_files.decode(contents)
            info.size = array.shape[1], array.shape[0]
            info.mode = f'{array.shape[2]}{ARRAY_MODE}{array.dtype.name}'
        except Exception as e:  # noqa: BLE001 (numpy and tifffile raise many types)
            info.error = str(e) or type(e).__name__
        return info
    try:
        with Image.open(io.BytesIO(contents)) as image:
            info.size, info.mode = image.size, image.mode
            if image.format == 'JPEG':
                image.draft(image.mode, (image.width // 8, image.height // 8))
            image.load()
            if image.format == 'PNG' and PNG_END not in contents:
                raise OSError('the file ends before the PNG end marker (truncated)')
    # Pillow's format plugins raise many exception types on malformed files (OSError,
    # SyntaxError, ValueError, struct.error, ...); any of them means "unreadable" here.
    except Exception as e:  # noqa: BLE001
        info.error = str(e) or type(e).__name__
    return info


def dataset_splits(root):
    """[(name, split)]: the splits of config.SPLITS that `root` has (layouts.has_split), or for
    a folder with none, [(the folder's name, '')]: its own pairs, read as one split as training
    reads them."""
    layouts.require_folder(root, 'data folder')
    splits = [(name, name) for name in config_lib.SPLITS if layouts.has_split(root, name)]
    if splits:
        return splits
    if not layouts.has_own_pairs(root):
        raise UserError(f'{root} has no train/, val/ or test/ split (a folder or a CSV), no '
                        'images and no A/ or B/ folder')
    return [(os.path.basename(os.path.normpath(root)) or os.fspath(root), '')]


def check(root, workers=None):
    """Lists and decodes every pair of the dataset at `root`; returns a CheckReport.

    Problems are the things that would stop or silently spoil training: what breaks a split's
    layout (a file in A/ or B/ without a partner, a manifest without the a,b header or with a
    row naming a missing file, a split without pairs), files that cannot be decoded,
    side-by-side files that are not twice as wide as high (their halves differ), and
    byte-identical files within or across splits (a test image that is also a training image).
    Different sizes and channel counts are reported but are not problems: the input pipeline
    resizes every image and decodes it as RGB. Files are decoded by `workers` threads
    (default: one per CPU; Pillow decodes outside the GIL).
    """
    splits, layout_problems = [], {}
    for name, split in dataset_splits(root):
        layout, source = layouts.split_layout(root, split)
        found = []
        splits.append(SplitReport(name, source, layout, layouts.split_pairs(root, split, found)))
        layout_problems[name] = [Problem(*problem) for problem in found]
    # A manifest may name a file twice, or a file of another split: each is decoded once.
    paths = list(dict.fromkeys(path for report in splits for pair in report.pairs
                               for path in pair if path))
    with concurrent.futures.ThreadPoolExecutor(workers or os.cpu_count()) as pool:
        infos = dict(zip(paths, pool.map(inspect_image, paths)))

    problems = []
    for report in splits:
        report.images = [infos[path] for pair in report.pairs for path in pair if path]
        report.resized = [(infos[a], infos[b]) for a, b in report.pairs
                          if b and infos[a].size and infos[b].size
                          and infos[a].size != infos[b].size]
        problems += layout_problems[report.name] + file_problems(report)
    notes = []
    if (any(layouts.has_split(root, name) for name in config_lib.SPLITS)
            and not layouts.has_split(root, 'train')):
        # A held-out split on its own (a downloaded val/, say) is checked, but not trained on.
        notes.append('no train/ folder or train.csv: training on this folder would stop; '
                     'translate or evaluate with it instead')
    elif not layouts.has_split(root, 'train') and len(splits[0].pairs) < 2:
        problems.append(Problem('no_training_pairs', (os.fspath(root),),
                                'training holds out validation pairs from a folder without '
                                'splits and needs at least 2'))
    return CheckReport(root, splits, problems + duplicates(splits), notes)


def file_problems(report):
    """The unreadable files of a split, and its side-by-side files that are not 2:1."""
    problems = []
    for info in report.images:
        if info.error:
            problems.append(Problem('unreadable', (info.path,), info.error))
        elif report.layout == layouts.SIDE_BY_SIDE and info.size[0] != 2 * info.size[1]:
            width, height = info.size
            problems.append(Problem('not_a_pair', (info.path,),
                                    f'{width}x{height}, not twice as wide as high'))
    return problems


def duplicates(splits):
    """A 'duplicate' Problem for each set of byte-identical files within or across splits."""
    by_hash = collections.defaultdict(list)
    for report in splits:
        for info in report.images:
            if info.sha256:
                by_hash[info.sha256].append((report.name, info.path))
    problems = []
    for copies in by_hash.values():
        if len(copies) > 1:
            names = {name for name, _ in copies}
            where = [report.name for report in splits if report.name in names]
            detail = (f'the same bytes in {" and ".join(where)}' if len(where) > 1
                      else f'the same bytes {len(copies)} times in {where[0]}')
            problems.append(Problem('duplicate', tuple(path for _, path in copies), detail))
    return problems
