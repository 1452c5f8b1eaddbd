"""Where a dataset's files come from: a local copy of a named dataset, or the user's folder.

A named dataset (facades, maps, ...) is looked up, in order, in `data_dir` (the `--data_dir`
flag), in `$P2P_TF_DATA_DIR`, and in the cache `$P2P_TF_CACHE_DIR` (default `~/.cache/p2p_tf`).
Each may hold `NAME/` with split folders (`train/`, `val/`, `test/`) or the archive
`NAME.tar.gz`. The pix2pix datasets are read through their TFDS builder
(p2p_tf/datasets/tfds_builder.py), which prepares such a copy, or the archive it downloads from the
authors' server, once into the cache. `--dataset=folder` reads split folders of side-by-side pairs
(or A/ and B/ folders, or CSV
manifests) straight from `data_dir`. `mnist_pairs` has no archive: with no local
`mnist_pairs/` it is built from TFDS mnist into the cache (p2p_tf/datasets/mnist_pairs.py).
"""

import os

from p2p_tf import config as config_lib
from p2p_tf.errors import UserError

DOWNLOAD_URL = 'http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/{name}.tar.gz'
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
    through their TFDS builder instead (p2p_tf/datasets/tfds_builder.py), prepared from
    local_copy()."""
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
    from p2p_tf.datasets import mnist_pairs  # Imports TensorFlow; TFDS only when it builds.
    return mnist_pairs.build(os.path.join(cache_dir(), 'extracted', name))


def local_copy(name, data_dir=None, archive=True):
    """The first local copy of dataset `name` in search_dirs(data_dir): the path of an unpacked
    NAME/ with a train/, val/ or test/ folder or, if `archive`, of NAME.tar.gz; None if there is
    none."""
    config_lib.dataset_facts(name)  # Unknown names are an error.
    if data_dir and not os.path.isdir(data_dir):
        raise UserError(f'data dir {data_dir} does not exist')
    for directory in search_dirs(data_dir):
        folder = os.path.join(directory, name)
        if any(os.path.isdir(os.path.join(folder, split)) for split in config_lib.SPLITS):
            return folder
        if archive and os.path.isfile(folder + '.tar.gz'):
            return folder + '.tar.gz'
    return None
