"""Datasets: finding a named dataset's local copy; split listing; file checks."""

import os

import numpy as np
import pytest
from PIL import Image

from p2p_tf.datasets import image_files, layouts, sources
from p2p_tf.errors import UserError

from conftest import make_archive, write_pairs


@pytest.fixture(autouse=True)
def isolated_search_path(tmp_path, monkeypatch):
    """No $P2P_TF_DATA_DIR from the environment; the cache in tmp_path/cache."""
    monkeypatch.delenv(sources.DATA_DIR_ENV, raising=False)
    monkeypatch.setenv(sources.CACHE_DIR_ENV, str(tmp_path / 'cache'))
    return tmp_path / 'cache'


def test_finds_the_dataset_folder_in_data_dir(tmp_path):
    write_pairs(tmp_path / 'data' / 'facades' / 'train', 1)
    assert sources.local_copy('facades', str(tmp_path / 'data')) == str(
        tmp_path / 'data' / 'facades')


def test_finds_the_dataset_folder_through_the_environment(tmp_path, monkeypatch):
    write_pairs(tmp_path / 'env_data' / 'maps' / 'val', 1)
    monkeypatch.setenv(sources.DATA_DIR_ENV, str(tmp_path / 'env_data'))
    assert sources.local_copy('maps') == str(tmp_path / 'env_data' / 'maps')


def test_finds_an_archive_in_the_search_order(tmp_path, monkeypatch, isolated_search_path):
    for folder in ('data', 'env_data', 'cache'):
        (tmp_path / folder).mkdir()
        make_archive(tmp_path / folder)
    monkeypatch.setenv(sources.DATA_DIR_ENV, str(tmp_path / 'env_data'))
    assert sources.local_copy('facades', str(tmp_path / 'data')) == str(
        tmp_path / 'data' / 'facades.tar.gz')
    assert sources.local_copy('facades') == str(tmp_path / 'env_data' / 'facades.tar.gz')
    monkeypatch.delenv(sources.DATA_DIR_ENV)
    assert sources.local_copy('facades') == str(isolated_search_path / 'facades.tar.gz')
    # An unpacked copy beside the archive is preferred; mnist_pairs has no archives.
    write_pairs(isolated_search_path / 'facades' / 'val', 1)
    assert sources.local_copy('facades') == str(isolated_search_path / 'facades')
    os.replace(isolated_search_path / 'facades.tar.gz', isolated_search_path / 'mnist_pairs.tar.gz')
    assert sources.local_copy('mnist_pairs', archive=False) is None


def test_no_local_copy_is_none(tmp_path):
    (tmp_path / 'facades').mkdir()  # A folder without split folders is no copy.
    assert sources.local_copy('facades', str(tmp_path)) is None


def test_unknown_dataset_lists_the_known_ones(tmp_path):
    for find in (sources.dataset_root, sources.local_copy):
        with pytest.raises(UserError, match='unknown dataset') as error:
            find('facadez', str(tmp_path))
        assert 'facades' in str(error.value) and 'edges2shoes' in str(error.value)


def test_missing_data_dir_is_an_error(tmp_path):
    missing = str(tmp_path / 'missing')
    with pytest.raises(UserError, match='does not exist'):
        sources.local_copy('facades', missing)
    with pytest.raises(UserError, match='does not exist'):
        sources.dataset_root('folder', missing)


def test_folder_dataset_needs_data_dir(pair_folder):
    with pytest.raises(UserError, match='--data_dir'):
        sources.dataset_root('folder')
    assert sources.dataset_root('folder', str(pair_folder)) == str(pair_folder)


def test_split_files_sorts_numbers_naturally(tmp_path):
    folder = tmp_path / 'train'
    folder.mkdir()
    for name in ('10.jpg', '2.jpg', '1.png', 'b.jpg', 'a.JPG', 'notes.txt'):
        (folder / name).write_bytes(b'')
    names = [os.path.basename(p) for p in layouts.split_files(str(tmp_path), 'train')]
    assert names == ['1.png', '2.jpg', '10.jpg', 'a.JPG', 'b.jpg']


def test_split_files_errors_name_the_folder(tmp_path):
    (tmp_path / 'val').mkdir()
    (tmp_path / 'val' / 'readme.txt').write_text('no images here')
    with pytest.raises(UserError, match='no images in') as error:
        layouts.split_files(str(tmp_path), 'val')
    assert str(tmp_path / 'val') in str(error.value)
    with pytest.raises(UserError, match='no split folder') as error:
        layouts.split_files(str(tmp_path), 'train')
    assert str(tmp_path / 'train') in str(error.value) and 'found: val' in str(error.value)


def test_check_pairs_accepts_pairs(tmp_path):
    image_files.check_pairs(write_pairs(tmp_path, 2, height=40), min_side=40)


def test_check_pairs_rejects_a_file_that_is_not_twice_as_wide(tmp_path):
    paths = write_pairs(tmp_path, 2)
    Image.fromarray(np.zeros((40, 60, 3), np.uint8)).save(tmp_path / '3.png')
    with pytest.raises(UserError, match='twice as wide') as error:
        image_files.check_pairs(paths + [str(tmp_path / '3.png')], min_side=1)
    assert str(tmp_path / '3.png') in str(error.value)


def test_check_pairs_rejects_an_unreadable_file(tmp_path):
    bad = tmp_path / 'bad.jpg'
    bad.write_bytes(b'this is not an image' * 10)
    with pytest.raises(UserError, match='cannot read image') as error:
        image_files.check_pairs(write_pairs(tmp_path, 1) + [str(bad)], min_side=1)
    assert str(bad) in str(error.value)


def test_check_pairs_rejects_halves_smaller_than_the_crop(tmp_path):
    paths = write_pairs(tmp_path, 1, height=40)
    with pytest.raises(UserError, match='smaller than the 64x64 crop') as error:
        image_files.check_pairs(paths, min_side=64)
    assert paths[0] in str(error.value)


def test_find_undecodable_names_truncated_and_garbage_files(tmp_path):
    good = write_pairs(tmp_path, 2, suffix='.jpg')
    assert image_files.find_undecodable(good) is None
    truncated = tmp_path / 'truncated.jpg'
    contents = open(good[0], 'rb').read()
    truncated.write_bytes(contents[:len(contents) // 2])
    image_files.check_pairs([str(truncated)], min_side=1)  # Its header alone looks fine.
    path, reason = image_files.find_undecodable(good + [str(truncated)])
    assert path == str(truncated) and reason
    garbage = tmp_path / 'garbage.png'
    garbage.write_bytes(b'\x00' * 100)
    assert image_files.find_undecodable(good + [str(garbage)])[0] == str(garbage)


def test_the_shared_facades_copy(shared_data):
    root = sources.local_copy('facades', str(shared_data))
    assert root == str(shared_data / 'facades')
    counts = {split: len(layouts.split_files(root, split)) for split in ('train', 'val', 'test')}
    assert counts == {'train': 400, 'val': 100, 'test': 106}
    assert layouts.sample_split(root, 'auto') == 'val'
    image_files.check_pairs(layouts.split_files(root, 'val'), min_side=256)
