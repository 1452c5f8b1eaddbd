"""Datasets: finding, unpacking and downloading a named dataset; split listing; file checks."""

import functools
import http.server
import os
import socket
import tarfile
import threading

import numpy as np
import pytest
from PIL import Image

from conftest import write_pairs
from p2p_tf import datasets
from p2p_tf.errors import UserError


@pytest.fixture(autouse=True)
def isolated_search_path(tmp_path, monkeypatch):
    """No $P2P_TF_DATA_DIR from the environment; the download cache in tmp_path/cache."""
    monkeypatch.delenv(datasets.DATA_DIR_ENV, raising=False)
    monkeypatch.setenv(datasets.CACHE_DIR_ENV, str(tmp_path / 'cache'))
    return tmp_path / 'cache'


def make_archive(folder, name='facades'):
    """folder/NAME.tar.gz holding NAME/train (3 pairs) and NAME/val (2 pairs); returns its path."""
    source = folder / 'source'
    write_pairs(source / name / 'train', 3)
    write_pairs(source / name / 'val', 2, seed=1)
    archive = folder / f'{name}.tar.gz'
    with tarfile.open(archive, 'w:gz') as tar:
        tar.add(source / name, arcname=name)
    return archive


def closed_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


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


def test_finds_the_dataset_folder_in_data_dir(tmp_path):
    write_pairs(tmp_path / 'data' / 'facades' / 'train', 1)
    assert datasets.dataset_root('facades', str(tmp_path / 'data')) == str(
        tmp_path / 'data' / 'facades')


def test_finds_the_dataset_folder_through_the_environment(tmp_path, monkeypatch):
    write_pairs(tmp_path / 'env_data' / 'maps' / 'val', 1)
    monkeypatch.setenv(datasets.DATA_DIR_ENV, str(tmp_path / 'env_data'))
    assert datasets.dataset_root('maps') == str(tmp_path / 'env_data' / 'maps')


def test_unpacks_an_archive_into_the_cache_once(tmp_path, isolated_search_path):
    data_dir = tmp_path / 'data'
    data_dir.mkdir()
    make_archive(data_dir)
    root = datasets.dataset_root('facades', str(data_dir))
    assert root.startswith(str(isolated_search_path))
    assert [os.path.basename(p) for p in datasets.split_files(root, 'train')] == [
        '1.png', '2.png', '3.png']
    assert len(datasets.split_files(root, 'val')) == 2
    marker = os.path.join(root, 'train', 'marker.txt')
    with open(marker, 'w') as f:
        f.write('a fresh extraction would remove this')
    mtime = os.stat(root).st_mtime_ns

    assert datasets.dataset_root('facades', str(data_dir)) == root
    assert os.path.exists(marker) and os.stat(root).st_mtime_ns == mtime
    # Also found in the cache once the archive is gone.
    os.remove(data_dir / 'facades.tar.gz')
    assert datasets.dataset_root('facades', str(data_dir)) == root


def test_an_archive_without_the_dataset_folder_is_an_error(tmp_path):
    data_dir = tmp_path / 'data'
    data_dir.mkdir()
    make_archive(tmp_path, name='maps')
    os.replace(tmp_path / 'maps.tar.gz', data_dir / 'facades.tar.gz')
    with pytest.raises(UserError, match='no top-level facades/'):
        datasets.dataset_root('facades', str(data_dir))


def test_downloads_and_unpacks_when_there_is_no_local_copy(tmp_path, http_folder,
                                                           isolated_search_path):
    served, url = http_folder
    make_archive(served)
    empty = tmp_path / 'empty'
    empty.mkdir()
    root = datasets.dataset_root('facades', str(empty), url=f'{url}/facades.tar.gz')
    assert root.startswith(str(isolated_search_path))
    assert len(datasets.split_files(root, 'train')) == 3
    assert os.path.isfile(isolated_search_path / 'facades.tar.gz')


def test_offline_download_failure_says_where_to_put_the_archive(tmp_path, isolated_search_path):
    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(UserError) as error:
        datasets.dataset_root('facades', str(empty),
                              url=f'http://127.0.0.1:{closed_port()}/facades.tar.gz')
    message = str(error.value)
    assert 'facades.tar.gz' in message and str(empty) in message and '--data_dir' in message
    # A failed download leaves no partial file behind.
    assert not os.path.exists(isolated_search_path / 'facades.tar.gz')
    assert not [f for f in os.listdir(isolated_search_path) if f.startswith('tmp')]


def test_no_local_copy_and_no_download_is_an_error(tmp_path):
    with pytest.raises(UserError, match='no local copy of facades'):
        datasets.dataset_root('facades', str(tmp_path), download=False)


def test_unknown_dataset_lists_the_known_ones(tmp_path):
    with pytest.raises(UserError, match='unknown dataset') as error:
        datasets.dataset_root('facadez', str(tmp_path))
    assert 'facades' in str(error.value) and 'edges2shoes' in str(error.value)


def test_missing_data_dir_is_an_error(tmp_path):
    missing = str(tmp_path / 'missing')
    with pytest.raises(UserError, match='does not exist'):
        datasets.dataset_root('facades', missing)
    with pytest.raises(UserError, match='does not exist'):
        datasets.dataset_root('folder', missing)


def test_folder_dataset_needs_data_dir(pair_folder):
    with pytest.raises(UserError, match='--data_dir'):
        datasets.dataset_root('folder')
    assert datasets.dataset_root('folder', str(pair_folder)) == str(pair_folder)


def test_split_files_sorts_numbers_naturally(tmp_path):
    folder = tmp_path / 'train'
    folder.mkdir()
    for name in ('10.jpg', '2.jpg', '1.png', 'b.jpg', 'a.JPG', 'notes.txt'):
        (folder / name).write_bytes(b'')
    names = [os.path.basename(p) for p in datasets.split_files(str(tmp_path), 'train')]
    assert names == ['1.png', '2.jpg', '10.jpg', 'a.JPG', 'b.jpg']


def test_split_files_errors_name_the_folder(tmp_path):
    (tmp_path / 'val').mkdir()
    (tmp_path / 'val' / 'readme.txt').write_text('no images here')
    with pytest.raises(UserError, match='no images in') as error:
        datasets.split_files(str(tmp_path), 'val')
    assert str(tmp_path / 'val') in str(error.value)
    with pytest.raises(UserError, match='no split folder') as error:
        datasets.split_files(str(tmp_path), 'train')
    assert str(tmp_path / 'train') in str(error.value) and 'found: val' in str(error.value)


def test_check_pairs_accepts_pairs(tmp_path):
    datasets.check_pairs(write_pairs(tmp_path, 2, height=40), min_side=40)


def test_check_pairs_rejects_a_file_that_is_not_twice_as_wide(tmp_path):
    paths = write_pairs(tmp_path, 2)
    Image.fromarray(np.zeros((40, 60, 3), np.uint8)).save(tmp_path / '3.png')
    with pytest.raises(UserError, match='twice as wide') as error:
        datasets.check_pairs(paths + [str(tmp_path / '3.png')], min_side=1)
    assert str(tmp_path / '3.png') in str(error.value)


def test_check_pairs_rejects_an_unreadable_file(tmp_path):
    bad = tmp_path / 'bad.jpg'
    bad.write_bytes(b'this is not an image' * 10)
    with pytest.raises(UserError, match='cannot read image') as error:
        datasets.check_pairs(write_pairs(tmp_path, 1) + [str(bad)], min_side=1)
    assert str(bad) in str(error.value)


def test_check_pairs_rejects_halves_smaller_than_the_crop(tmp_path):
    paths = write_pairs(tmp_path, 1, height=40)
    with pytest.raises(UserError, match='smaller than the 64x64 crop') as error:
        datasets.check_pairs(paths, min_side=64)
    assert paths[0] in str(error.value)


def test_find_undecodable_names_truncated_and_garbage_files(tmp_path):
    good = write_pairs(tmp_path, 2, suffix='.jpg')
    assert datasets.find_undecodable(good) is None
    truncated = tmp_path / 'truncated.jpg'
    contents = open(good[0], 'rb').read()
    truncated.write_bytes(contents[:len(contents) // 2])
    datasets.check_pairs([str(truncated)], min_side=1)  # Its header alone looks fine.
    path, reason = datasets.find_undecodable(good + [str(truncated)])
    assert path == str(truncated) and reason
    garbage = tmp_path / 'garbage.png'
    garbage.write_bytes(b'\x00' * 100)
    assert datasets.find_undecodable(good + [str(garbage)])[0] == str(garbage)


def test_the_shared_facades_copy(shared_data):
    root = datasets.dataset_root('facades', str(shared_data))
    assert root == str(shared_data / 'facades')
    counts = {split: len(datasets.split_files(root, split)) for split in ('train', 'val', 'test')}
    assert counts == {'train': 400, 'val': 100, 'test': 106}
    assert datasets.sample_split(root, 'auto') == 'val'
    datasets.check_pairs(datasets.split_files(root, 'val'), min_side=256)
