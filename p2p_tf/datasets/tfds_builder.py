"""TensorFlow Datasets builder `pix2pix` for the pix2pix authors' datasets; training reads
through it.

`import p2p_tf` registers the builder, so `tfds.load('pix2pix/facades')` works; its configs are
facades, cityscapes, maps, edges2shoes, edges2handbags and night2day. An example is one
side-by-side file of the authors' archive: `image_a` (the left half) and `image_b` (the right
half), uint8 [H, W, 3] each, and `file_name` ('1.jpg'). The splits are the archive's split
folders (train and val; facades and night2day also have test), each in the files' natural order
(1, 2, ..., 10). `as_supervised=True` gives (input, target) in the paper's direction: B -> A for
facades and cityscapes, A -> B for the others.

The halves are decoded with TensorFlow's decoder, the one the training pipeline uses on files,
and stored as PNG, so they are exact copies of the pixels that training on the files sees. A JPEG
re-encoding would change them, and Pillow's JPEG decoder differs from TensorFlow's by a few
levels.

Where the data comes from: the manual dir (`tfds.download.DownloadConfig(manual_dir=DIR)`,
default DATA_DIR/downloads/manual) holding an unpacked NAME/ with split folders or NAME.tar.gz,
used without network; else the authors' archive (sources.DOWNLOAD_URL), downloaded.

Checksums: TFDS checks a downloaded archive against `checksums.tsv` beside this file (URL, size,
sha256). It lists none yet: the archives could not be downloaded where this builder was written,
and the copies at hand are rebuilds with other hashes, so no checksum is claimed. For a URL it
does not list, TFDS records the download's size and sha256 without checking them (unless
`force_checksums_validation=True`). Archives from the manual dir are never checked, so a
rebuilt archive works there. To register the authors' checksums, run with network, from an
editable install, with an empty manual dir (the default one) and apache-beam installed (the
TFDS command line imports it; without it `tfds build` fails with "No module named
'apache_beam'"):

    tfds build pix2pix --imports=p2p_tf --register_checksums --data_dir=/tmp/pix2pix_tfds

(`--config=facades` for one archive); it downloads the archives and writes one line per
archive into p2p_tf/datasets/checksums.tsv.

Training on a pix2pix dataset prepares the builder once into the cache, as array_record files
for random access (`prepare`), and reads its records through TFDS data sources
(`training_examples`).
"""

import hashlib
import io
import os
import shutil

import tensorflow_datasets as tfds
from PIL import Image

from p2p_tf import config as config_lib
from p2p_tf import image_sizes
from p2p_tf.datasets import layouts, sources
from p2p_tf.errors import UserError, op_error_reason

# Records as stored, the halves' PNG bytes, for the input pipeline to decode.
ENCODED = {'image_a': tfds.decode.SkipDecoding(), 'image_b': tfds.decode.SkipDecoding()}

CITATION = """@inproceedings{isola2017image,
  title={Image-to-Image Translation with Conditional Adversarial Networks},
  author={Isola, Phillip and Zhu, Jun-Yan and Zhou, Tinghui and Efros, Alexei A},
  booktitle={Computer Vision and Pattern Recognition (CVPR)},
  year={2017}
}"""


class Pix2pix(tfds.core.GeneratorBasedBuilder):
    """The pix2pix datasets: side-by-side pairs split into their halves A and B."""

    VERSION = tfds.core.Version('1.0.0')
    RELEASE_NOTES = {'1.0.0': 'First release.'}
    BUILDER_CONFIGS = [tfds.core.BuilderConfig(name=name, description=f'pix2pix {name}')
                       for name in config_lib.PIX2PIX_DATASETS]
    MANUAL_DOWNLOAD_INSTRUCTIONS = f"""Optional. To prepare without network, put the authors'
    NAME.tar.gz ({sources.DOWNLOAD_URL.format(name='NAME')}), or an unpacked NAME/ folder with
    its split folders (train/, val/, test/), into the manual dir. Otherwise the archive is
    downloaded."""

    def _info(self):
        direction = config_lib.DATASET_FACTS[self.builder_config.name]['direction']

        def image():
            return tfds.features.Image(shape=(None, None, 3), encoding_format='png')

        return tfds.core.DatasetInfo(
            builder=self,
            description='Paired images of the pix2pix paper (Isola et al., 2017): each file of '
                        'the authors\' archive split into its left half A and right half B.',
            features=tfds.features.FeaturesDict(
                {'image_a': image(), 'image_b': image(), 'file_name': tfds.features.Text()}),
            supervised_keys=(('image_a', 'image_b') if direction == 'AtoB'
                             else ('image_b', 'image_a')),
            homepage='https://phillipi.github.io/pix2pix/',
            citation=CITATION,
            # Example i of a split is its i-th file in natural order, as training on files.
            disable_shuffling=True,
        )

    def _split_generators(self, dl_manager):
        root = os.fspath(self._unpacked(dl_manager))
        splits = [split for split in config_lib.SPLITS if layouts.has_split(root, split)]
        if not splits:
            raise UserError(f'{root} has no split folder ({", ".join(config_lib.SPLITS)})')
        return {split: self._generate_examples(side_by_side_files(root, split))
                for split in splits}

    def _unpacked(self, dl_manager):
        """The folder holding the split folders: NAME/ in the manual dir, else its NAME.tar.gz
        extracted, else the downloaded archive extracted."""
        name = self.builder_config.name
        try:
            manual_dir = dl_manager.manual_dir
        except AssertionError:  # No manual dir, or an empty one.
            manual_dir = None
        if manual_dir and any((manual_dir / name / split).is_dir() for split in config_lib.SPLITS):
            return manual_dir / name
        if manual_dir and (manual_dir / f'{name}.tar.gz').is_file():
            archive = manual_dir / f'{name}.tar.gz'
            extracted = dl_manager.extract(archive)
        else:
            archive = sources.DOWNLOAD_URL.format(name=name)
            extracted = dl_manager.download_and_extract(archive)
        if not (extracted / name).is_dir():
            raise UserError(f'{archive} has no top-level {name}/ folder')
        return extracted / name

    def _generate_examples(self, paths):
        for number, path in enumerate(paths):
            image_a, image_b = png_halves(path)
            yield number, {'image_a': image_a, 'image_b': image_b,
                           'file_name': os.path.basename(path)}


def side_by_side_files(root, split):
    """The files of one split of an unpacked copy, in natural order, as training lists them
    (layouts.split_pairs); a UserError for a split in another layout, which the authors'
    archives never have."""
    layout, where = layouts.split_layout(root, split)
    if layout != layouts.SIDE_BY_SIDE:
        raise UserError(f'{where}: the pix2pix builder reads only split folders of side-by-side '
                        f'files, as in the authors\' archives (found: '
                        f'{layouts.LAYOUT_NAMES[layout]}); train on other layouts with '
                        '--dataset=folder')
    return [path for path, _ in layouts.split_pairs(root, split)]


def png_halves(path):
    """A side-by-side file -> the PNG bytes of its left and right halves, decoded as the input
    pipeline decodes files; a UserError names a file that does not decode or is not a 2:1 pair."""
    import tensorflow as tf  # Only preparing decodes: importing p2p_tf stays light.
    try:
        pair = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    except tf.errors.OpError as e:
        raise UserError(f'cannot decode image {path}: {op_error_reason(e)}') from None
    height, width, _ = pair.shape
    if width != 2 * height:
        raise UserError(f'{path} is {width}x{height}: a side-by-side pair must be twice as wide '
                        'as it is high')
    # Level 1 takes a quarter of the default's time for 4% more bytes.
    return tuple(tf.io.encode_png(half, compression=1).numpy()
                 for half in (pair[:, :height], pair[:, height:]))


def source_key(name, path):
    """Names the prepared copy of the local copy at `path` (NAME/ or NAME.tar.gz): NAME and a
    hash of its real path and its files' names, sizes and modification times, so that another
    or a changed copy is prepared afresh."""
    files = [path] if os.path.isfile(path) else sorted(
        os.path.join(folder, file) for folder, _, names in os.walk(path) for file in names)
    stats = [(os.path.relpath(file, path), os.stat(file).st_size, os.stat(file).st_mtime_ns)
             for file in files]
    digest = hashlib.sha256(repr((os.path.realpath(path), stats)).encode()).hexdigest()
    return f'{name}-{digest[:16]}'


def prepare(name, data_dir=None):
    """The Pix2pix builder of dataset `name`, prepared (once) as array_record files into
    CACHE/tfds: from the local copy in sources.search_dirs(data_dir) as its manual dir, else
    from the authors' archive, downloaded into CACHE/tfds/downloads."""
    copy = sources.local_copy(name, data_dir)
    tfds_dir = os.path.join(sources.cache_dir(), 'tfds')
    builder = Pix2pix(config=name, file_format='array_record',
                      data_dir=os.path.join(tfds_dir, source_key(name, copy) if copy else name))
    if builder.is_prepared():
        return builder
    url = sources.DOWNLOAD_URL.format(name=name)
    print(f'preparing {name} from {copy or url} into {builder.data_dir} (once)', flush=True)
    try:
        builder.download_and_prepare(
            download_dir=os.path.join(tfds_dir, 'downloads'),
            download_config=tfds.download.DownloadConfig(
                manual_dir=os.path.dirname(copy) if copy else None))
    except UserError:
        raise
    # TFDS raises many kinds of exception; the user needs one line.
    except Exception as e:  # noqa: BLE001
        reason = f'{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ""}'
        if copy:
            raise UserError(f'could not prepare {name} from {copy} ({reason})') from None
        looked = ', '.join(os.path.join(d, n) for d in sources.search_dirs(data_dir)
                           for n in (name + '/', name + '.tar.gz'))
        raise UserError(
            f'could not download {url} ({reason}); with no network, put {name}.tar.gz or an '
            f'unpacked {name}/ in --data_dir or ${sources.DATA_DIR_ENV} (looked for '
            f'{looked})') from None
    # The records hold everything; the unpacked archive would only double the disk used.
    shutil.rmtree(os.path.join(tfds_dir, 'downloads', 'extracted'), ignore_errors=True)
    return builder


def split_source(builder, split):
    """The TFDS data source of one split of a prepared builder, records in file order, or a
    UserError naming the splits there are."""
    if split not in builder.info.splits:
        raise UserError(f'{builder.builder_config.name} has no split {split!r} (it has '
                        f'{", ".join(builder.info.splits)})')
    return builder.as_data_source(split, decoders=ENCODED)


def training_examples(config, data_dir=None):
    """(training examples, sample examples) of a resolved config's pix2pix dataset: TFDS data
    sources of train_split and of the first num_samples of sample_split (AUTO: val, else test,
    else train), whose records hold the halves' PNG bytes (see input_pipeline.train_dataset)."""
    builder = prepare(config.dataset, data_dir)
    splits = builder.info.splits
    sample_split = config.sample_split
    if sample_split == config_lib.AUTO:
        sample_split = next(split for split in config_lib.EVAL_SPLITS + ('train',)
                            if split in splits)
    train = split_source(builder, config.train_split)
    count = min(config.num_samples, len(split_source(builder, sample_split)))
    samples = builder.as_data_source(f'{sample_split}[:{count}]', decoders=ENCODED)
    # Each released dataset has one image size: the first training pair and the samples
    # stand for all.
    for split, record in [(config.train_split, train[0])] + [
            (sample_split, samples[i]) for i in range(len(samples))]:
        with Image.open(io.BytesIO(record['image_a'])) as half:
            side = min(half.size)
        if side < min(image_sizes.image_shape(config)):
            raise UserError(
                f'{config.dataset} {split}/{record["file_name"].decode()} has {side}x{side} '
                f'halves, smaller than the {image_sizes.size_text(config.image_size)} crop; '
                'lower --config.image_size')
    return train, samples
