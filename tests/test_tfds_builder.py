"""The TFDS builder `pix2pix`: TFDS's own builder checks, halves and file order, the manual dir
without network, downloads without a registered checksum, the prepared cache, and training that
reads through the builder exactly as it would read the files.

All data is small generated pairs, never copies of the real datasets. Nothing is downloaded
from the internet: a local HTTP server stands in for the authors' one.
"""

import functools
import http.server
import io
import os
import pathlib
import re
import shutil
import socket
import tempfile
import threading

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image
from tensorflow_datasets.core.download import downloader

from p2p_tf.datasets import image_files, input_pipeline, layouts, sources, tfds_builder
from p2p_tf.errors import UserError
from p2p_tf.training import pix2pix

from conftest import make_archive, tiny_config, write_pairs
from test_input_pipeline import batches
from test_training import assert_same_state, run_state


def write_dataset(root, name, splits, height=16):
    """root/NAME/SPLIT/1.jpg, ... with the given number of random pairs per split. JPEG, since
    TensorFlow's and Pillow's decoders differ on it: the halves must be the pipeline's pixels."""
    for seed, (split, count) in enumerate(splits.items()):
        write_pairs(root / name / split, count, height=height, seed=seed, suffix='.jpg')
    return root / name


def decoded(path):
    return tf.io.decode_image(tf.io.read_file(str(path)), channels=3).numpy()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A cache of this test's own; no $P2P_TF_DATA_DIR from the environment."""
    monkeypatch.delenv(sources.DATA_DIR_ENV, raising=False)
    monkeypatch.setenv(sources.CACHE_DIR_ENV, str(tmp_path / 'cache'))
    return tmp_path / 'cache'


@pytest.fixture
def offline(monkeypatch):
    """Any download through TFDS fails the test."""
    def refuse(self, url_or_urls):
        pytest.fail(f'tried to download {url_or_urls}')

    for method in ('download', 'download_and_extract'):
        monkeypatch.setattr(tfds.download.DownloadManager, method, refuse)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def http_folder(tmp_path, monkeypatch):
    """Serves tmp_path/served on 127.0.0.1; yields (folder, base url)."""
    served = tmp_path / 'served'
    served.mkdir()
    monkeypatch.setenv('no_proxy', '*')
    server = http.server.ThreadingHTTPServer(
        ('127.0.0.1', 0), functools.partial(QuietHandler, directory=str(served)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield served, f'http://127.0.0.1:{server.server_address[1]}'
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def closed_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


class Pix2pixDummyDataTest(tfds.testing.DatasetBuilderTestCase):
    """TFDS's checks of a builder (registered, info, each config prepared and read back with the
    split sizes, no example in two splits, no local paths in keys, no `os` file calls) on dummy
    data in the manual dir: facades as an archive, maps unpacked."""

    DATASET_CLASS = tfds_builder.Pix2pix
    BUILDER_CONFIG_NAMES_TO_TEST = ['facades', 'maps']
    SPLITS = {'train': 3, 'val': 2}

    @classmethod
    def setUpClass(cls):
        cls.EXAMPLE_DIR = tempfile.mkdtemp()
        make_archive(pathlib.Path(cls.EXAMPLE_DIR))
        write_dataset(pathlib.Path(cls.EXAMPLE_DIR), 'maps', cls.SPLITS)
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        shutil.rmtree(cls.EXAMPLE_DIR)


def test_tfds_load_gives_each_file_as_its_halves_in_file_order(tmp_path, offline):
    root = write_dataset(tmp_path / 'manual', 'night2day', {'train': 3, 'val': 2, 'test': 1})
    os.replace(root / 'train' / '3.jpg', root / 'train' / '10.jpg')
    loaded, info = tfds.load(
        'pix2pix/night2day', data_dir=str(tmp_path / 'tfds'), with_info=True,
        download_and_prepare_kwargs={'download_config': tfds.download.DownloadConfig(
            manual_dir=str(tmp_path / 'manual'))})
    assert {split: len(loaded[split]) for split in loaded} == {'train': 3, 'val': 2, 'test': 1}
    for split in loaded:
        examples = list(tfds.as_numpy(loaded[split]))
        paths = image_files.list_images(str(root / split))
        assert [e['file_name'].decode() for e in examples] == [os.path.basename(p) for p in paths]
        for example, path in zip(examples, paths):
            pair = decoded(path)
            np.testing.assert_array_equal(example['image_a'], pair[:, :16])
            np.testing.assert_array_equal(example['image_b'], pair[:, 16:])
    assert [e['file_name'] for e in tfds.as_numpy(loaded['train'])] == [
        b'1.jpg', b'2.jpg', b'10.jpg']
    # Pillow decodes these files differently: the halves are TensorFlow's pixels.
    assert any(not np.array_equal(np.asarray(Image.open(path).convert('RGB')), decoded(path))
               for path in image_files.list_images(str(root / 'train')))
    # as_supervised gives (input, target) in the paper's direction.
    assert info.supervised_keys == ('image_a', 'image_b')
    facades = tfds.builder('pix2pix/facades', data_dir=str(tmp_path / 'tfds'))
    assert facades.info.supervised_keys == ('image_b', 'image_a')


def test_a_rebuilt_archive_in_the_data_dir_is_used_offline_unchecked(tmp_path, cache, offline):
    (tmp_path / 'data').mkdir()
    make_archive(tmp_path / 'data')
    builder = tfds_builder.prepare('facades', str(tmp_path / 'data'))
    assert {name: split.num_examples for name, split in builder.info.splits.items()} == {
        'train': 3, 'val': 2}
    first = builder.as_data_source('train')[0]
    pair = decoded(tmp_path / 'data' / 'source' / 'facades' / 'train' / '1.png')
    np.testing.assert_array_equal(first['image_b'], pair[:, 40:])
    # No checksum is registered (none invented), and the unpacked archive is not kept.
    assert tfds_builder.Pix2pix.url_infos == {}
    assert not os.path.exists(cache / 'tfds' / 'downloads' / 'extracted')


def test_downloads_the_archive_with_no_registered_checksum(tmp_path, cache, http_folder,
                                                          monkeypatch):
    served, url = http_folder
    archive = make_archive(served)
    monkeypatch.setattr(sources, 'DOWNLOAD_URL', url + '/{name}.tar.gz')
    (tmp_path / 'empty').mkdir()
    checksums = pathlib.Path(tfds_builder.__file__).with_name('checksums.tsv').read_text()
    builder = tfds_builder.prepare('facades', str(tmp_path / 'empty'))
    assert builder.info.splits['train'].num_examples == 3
    assert builder.info.download_size == archive.stat().st_size
    assert str(cache) in builder.data_dir
    assert pathlib.Path(tfds_builder.__file__).with_name('checksums.tsv').read_text() == checksums
    # Validation has to be asked for, and then needs a registered checksum.
    with pytest.raises(ValueError, match='Missing checksums url'):
        forced = tfds_builder.Pix2pix(config='facades', data_dir=str(tmp_path / 'forced'))
        forced.download_and_prepare(
            download_config=tfds.download.DownloadConfig(force_checksums_validation=True))


def test_an_unreachable_server_says_where_to_put_the_archive(tmp_path, cache, monkeypatch):
    port = closed_port()
    monkeypatch.setattr(sources, 'DOWNLOAD_URL', f'http://127.0.0.1:{port}/{{name}}.tar.gz')
    # TFDS retries 10 times with exponential backoff, 200 s in all; once is enough here.
    monkeypatch.setattr(downloader, 'MAX_RETRIES', 0)
    (tmp_path / 'empty').mkdir()
    with pytest.raises(UserError) as error:
        tfds_builder.prepare('facades', str(tmp_path / 'empty'))
    message = str(error.value)
    assert message.startswith('could not download http://127.0.0.1:')
    assert 'facades.tar.gz' in message and str(tmp_path / 'empty') in message
    assert '--data_dir' in message and '\n' not in message


def test_bad_local_copies_are_one_line_errors(tmp_path, cache):
    make_archive(tmp_path, name='maps')
    (tmp_path / 'data').mkdir()
    os.replace(tmp_path / 'maps.tar.gz', tmp_path / 'data' / 'facades.tar.gz')
    with pytest.raises(UserError, match='facades.tar.gz has no top-level facades/ folder'):
        tfds_builder.prepare('facades', str(tmp_path / 'data'))
    root = write_dataset(tmp_path / 'other', 'facades', {'train': 2})
    Image.fromarray(np.zeros((16, 24, 3), np.uint8)).save(root / 'train' / '3.png')
    with pytest.raises(UserError, match=f'{root / "train" / "3.png"} is 24x16: a side-by-side'):
        tfds_builder.prepare('facades', str(tmp_path / 'other'))


def test_a_copy_in_another_layout_is_a_clear_error(tmp_path, cache):
    root = tmp_path / 'data' / 'facades'
    write_pairs(root / 'train' / 'A', 2, height=16)
    write_pairs(root / 'train' / 'B', 2, height=16, seed=1)
    with pytest.raises(UserError, match=re.escape(
            f'{root / "train"}: the pix2pix builder reads only split folders of side-by-side '
            "files, as in the authors' archives (found: A/ and B/ folders)")):
        tfds_builder.prepare('facades', str(tmp_path / 'data'))
    root = write_dataset(tmp_path / 'other', 'facades', {'train': 2})
    (root / 'val.csv').write_text('a,b\ntrain/1.jpg,train/2.jpg\n')
    with pytest.raises(UserError, match=re.escape(f'{root / "val.csv"}: the pix2pix builder '
                                                  'reads only') + '.*found: CSV manifest'):
        tfds_builder.prepare('facades', str(tmp_path / 'other'))


def test_prepared_once_and_afresh_for_a_changed_copy(tmp_path, cache, monkeypatch):
    root = write_dataset(tmp_path / 'data', 'facades', {'train': 3, 'val': 2})
    first = tfds_builder.prepare('facades', str(tmp_path / 'data'))
    with monkeypatch.context() as patch:
        patch.setattr(tfds_builder.Pix2pix, '_generate_examples',
                      lambda *args: pytest.fail('prepared again'))
        assert tfds_builder.prepare('facades', str(tmp_path / 'data')).data_dir == first.data_dir
    write_pairs(root / 'train', 4, height=16, seed=7, suffix='.jpg')
    second = tfds_builder.prepare('facades', str(tmp_path / 'data'))
    assert second.data_dir != first.data_dir
    assert second.info.splits['train'].num_examples == 4
    np.testing.assert_array_equal(second.as_data_source('train')[0]['image_a'],
                                  decoded(root / 'train' / '1.jpg')[:, :16])


def test_training_on_a_named_dataset_reads_through_the_builder_as_on_the_files(tmp_path, cache,
                                                                               monkeypatch):
    root = write_dataset(tmp_path / 'data', 'facades', {'train': 3, 'val': 2}, height=40)
    config = tiny_config(dataset='facades', steps=2)
    train_records, sample_records = tfds_builder.training_examples(config, str(tmp_path / 'data'))
    files = layouts.split_pairs(str(root), 'train')
    for cached in (True, False):
        for start in (0, 4):  # A resumed pipeline too, past the first epoch.
            through_builder = batches(
                input_pipeline.train_dataset(train_records, config, start, cache=cached), 5)
            from_files = batches(
                input_pipeline.train_dataset(files, config, start, cache=cached), 5)
            for (inputs, targets), (file_inputs, file_targets) in zip(through_builder, from_files):
                np.testing.assert_array_equal(inputs, file_inputs)
                np.testing.assert_array_equal(targets, file_targets)
    samples = input_pipeline.eval_dataset(sample_records, config, 2).get_single_element()
    file_samples = input_pipeline.eval_dataset(
        layouts.split_pairs(str(root), 'val'), config, 2).get_single_element()
    for images, file_images in zip(samples, file_samples):
        np.testing.assert_array_equal(images, file_images)

    with monkeypatch.context() as patch:
        patch.setattr(sources, 'dataset_root', lambda *args: pytest.fail('read the files'))
        patch.setattr(layouts, 'split_pairs', lambda *args: pytest.fail('read the files'))
        named = pix2pix.train(config, str(tmp_path / 'named'), str(tmp_path / 'data'),
                               stream=io.StringIO())
    folder = pix2pix.train(tiny_config(dataset='folder', direction='BtoA', steps=2),
                            str(tmp_path / 'folder'), str(root), stream=io.StringIO())
    assert_same_state(run_state(named), run_state(folder))


def test_training_refuses_a_crop_larger_than_the_halves(tmp_path, cache):
    write_dataset(tmp_path / 'data', 'facades', {'train': 2, 'val': 1}, height=40)
    config = tiny_config(dataset='facades', image_size=64, load_size=72)
    with pytest.raises(UserError, match='facades train/1.jpg has 40x40 halves, smaller than '
                                        'the 64x64 crop'):
        pix2pix.train(config, str(tmp_path / 'run'), str(tmp_path / 'data'),
                       stream=io.StringIO())
    assert not os.path.exists(tmp_path / 'run')
