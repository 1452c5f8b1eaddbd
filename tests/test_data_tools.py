"""The data tools: combine and split (`p2p_tf.datasets.tools`), check
(`p2p_tf.datasets.checking`) on every layout training reads, and their command `p2p_tf.data`."""

import os
import re
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from p2p_tf import config as config_lib
from p2p_tf import data
from p2p_tf.datasets import checking, image_files, layouts
from p2p_tf.datasets import tools as data_tools
from p2p_tf.errors import UserError

from conftest import REPO, run_command, write_pairs


def write_image(path, height, width, channels=3, seed=0):
    """A random uint8 image (gray when channels is 1); returns its pixels as written."""
    rng = np.random.default_rng(seed)
    shape = (height, width) if channels == 1 else (height, width, channels)
    pixels = rng.integers(0, 256, size=shape, dtype=np.uint8)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(pixels).save(path)
    return pixels


def pixels(path):
    with Image.open(path) as image:
        return np.asarray(image)


def error_line(result):
    """Checks that the command failed on bad input the documented way; returns the line."""
    assert result.returncode == 2, (result.stdout + result.stderr)[-2000:]
    assert 'Traceback' not in result.stderr, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and re.match(r'p2p_tf\.data: error: \S', lines[0]), result.stderr
    return lines[0]


def test_combine_puts_a_left_and_b_right_matching_names_across_extensions(tmp_path):
    a = write_image(str(tmp_path / 'a' / '1.png'), 32, 32, seed=1)
    b = write_image(str(tmp_path / 'b' / '1.png'), 32, 32, seed=2)
    write_image(str(tmp_path / 'a' / '2.png'), 32, 32, seed=3)
    write_image(str(tmp_path / 'b' / '2.jpg'), 32, 32, seed=4)
    result = data_tools.combine(tmp_path / 'a', tmp_path / 'b', tmp_path / 'out')
    assert sorted(os.listdir(tmp_path / 'out')) == ['1.png', '2.png']
    assert result.written == [str(tmp_path / 'out' / '1.png'), str(tmp_path / 'out' / '2.png')]
    assert (result.unmatched_a, result.unmatched_b, result.converted) == ([], [], [])
    pair = pixels(tmp_path / 'out' / '1.png')
    assert pair.shape == (32, 64, 3)
    np.testing.assert_array_equal(pair[:, :32], a)
    np.testing.assert_array_equal(pair[:, 32:], b)
    # The JPEG's decoded pixels are kept exactly: the output is lossless PNG.
    np.testing.assert_array_equal(pixels(tmp_path / 'out' / '2.png')[:, 32:],
                                  pixels(tmp_path / 'b' / '2.jpg'))


def test_combine_makes_gray_and_rgb_halves_rgb_and_says_so(tmp_path):
    gray = write_image(str(tmp_path / 'a' / 'x.png'), 16, 16, channels=1)
    write_image(str(tmp_path / 'b' / 'x.png'), 16, 16, seed=1)
    write_image(str(tmp_path / 'a' / 'y.png'), 16, 16, channels=1)
    write_image(str(tmp_path / 'b' / 'y.png'), 16, 16, channels=1)
    result = data_tools.combine(tmp_path / 'a', tmp_path / 'b', tmp_path / 'out')
    assert result.converted == [('x', 'L', 'RGB')]
    mixed = pixels(tmp_path / 'out' / 'x.png')
    assert mixed.shape == (16, 32, 3)
    for channel in range(3):
        np.testing.assert_array_equal(mixed[:, :16, channel], gray)
    assert pixels(tmp_path / 'out' / 'y.png').shape == (16, 32)  # Both gray: stays gray.


def test_combine_stops_on_unmatched_names_unless_allowed(tmp_path):
    for name in ('1', '2', '3'):
        write_image(str(tmp_path / 'a' / f'{name}.png'), 16, 16)
    for name in ('2', '3', '4'):
        write_image(str(tmp_path / 'b' / f'{name}.jpg'), 16, 16)
    out = tmp_path / 'out'
    result = run_command('p2p_tf.data', 'combine', '--a', tmp_path / 'a', '--b', tmp_path / 'b',
                         '--out', out)
    line = error_line(result)
    assert f'1 in {tmp_path / "a"} have no partner (1)' in line, line
    assert f'1 in {tmp_path / "b"} have no partner (4)' in line, line
    assert 'nothing written' in line and not out.exists()

    result = run_command('p2p_tf.data', 'combine', '--a', tmp_path / 'a', '--b', tmp_path / 'b',
                         '--out', out, '--allow_unmatched')
    assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(out)) == ['2.png', '3.png']
    assert f'wrote 2 pair(s) to {out}' in result.stdout
    assert f'skipped 1 file(s) in {tmp_path / "a"} with no partner: 1' in result.stdout
    assert f'skipped 1 file(s) in {tmp_path / "b"} with no partner: 4' in result.stdout


def test_combine_halves_of_different_sizes_are_an_error_unless_resized(tmp_path):
    write_image(str(tmp_path / 'a' / '1.png'), 32, 32)
    write_image(str(tmp_path / 'b' / '1.png'), 32, 32)
    write_image(str(tmp_path / 'a' / '2.png'), 32, 32)
    b = write_image(str(tmp_path / 'b' / '2.png'), 48, 40)
    out = tmp_path / 'out'
    with pytest.raises(UserError, match='1 pair.* different sizes') as error:
        data_tools.combine(tmp_path / 'a', tmp_path / 'b', out)
    message = str(error.value)
    assert f'{tmp_path / "a" / "2.png"} (32x32)' in message, message
    assert f'{tmp_path / "b" / "2.png"} (40x48)' in message, message
    assert not out.exists()  # Checked before writing anything, 1.png included.

    result = data_tools.combine(tmp_path / 'a', tmp_path / 'b', out, resize='nearest')
    assert result.resized == ['2']
    resized = np.asarray(Image.fromarray(b).resize((32, 32), Image.Resampling.NEAREST))
    np.testing.assert_array_equal(pixels(out / '2.png')[:, 32:], resized)


def test_combine_never_overwrites_unless_asked(tmp_path):
    write_image(str(tmp_path / 'a' / '1.png'), 16, 16)
    write_image(str(tmp_path / 'b' / '1.png'), 16, 16)
    out = tmp_path / 'out'
    out.mkdir()
    (out / '1.png').write_bytes(b'precious')
    result = run_command('p2p_tf.data', 'combine', '--a', tmp_path / 'a', '--b', tmp_path / 'b',
                         '--out', out)
    assert str(out / '1.png') in error_line(result)
    assert (out / '1.png').read_bytes() == b'precious'
    data_tools.combine(tmp_path / 'a', tmp_path / 'b', out, overwrite=True)
    assert pixels(out / '1.png').shape == (16, 32, 3)
    data_tools.combine(tmp_path / 'a', tmp_path / 'b', out, image_format='jpg')
    with Image.open(out / '1.jpg') as image:
        assert (image.format, image.size) == ('JPEG', (32, 16))
    assert not [name for name in os.listdir(out) if name.endswith('.tmp')]
    with pytest.raises(UserError, match='is the input folder'):  # Would replace the inputs.
        data_tools.combine(tmp_path / 'a', tmp_path / 'b', tmp_path / 'a', overwrite=True)


def test_split_is_a_partition_fixed_by_the_seed(tmp_path):
    src = tmp_path / 'src'
    names = sorted(os.path.basename(p) for p in write_pairs(src, 23, height=8))
    result = run_command('p2p_tf.data', 'split', '--src', src, '--out', tmp_path / 'a',
                         '--val', 0.2, '--test', 0.1, '--seed', 3)
    assert result.returncode == 0, result.stderr
    assert 'copied 23 file(s)' in result.stdout and 'train 16, val 5, test 2' in result.stdout
    placed = {split: sorted(os.listdir(tmp_path / 'a' / split)) for split in config_lib.SPLITS}
    assert {split: len(files) for split, files in placed.items()} == {
        'train': 16, 'val': 5, 'test': 2}  # 0.2 * 23 = 4.6 -> 5, 0.1 * 23 = 2.3 -> 2.
    everything = [name for files in placed.values() for name in files]
    assert sorted(everything) == names  # Every file placed, none twice.
    for split, files in placed.items():
        for name in files:
            assert (tmp_path / 'a' / split / name).read_bytes() == (src / name).read_bytes()
    again = data_tools.split(src, tmp_path / 'b', val=0.2, test=0.1, seed=3)
    assert {s: sorted(map(os.path.basename, f)) for s, f in again.items()} == placed
    other = data_tools.plan_split([str(src / n) for n in names], 0.2, 0.1, seed=4)
    assert sorted(map(os.path.basename, other['val'])) != placed['val']
    assert sorted(os.listdir(src)) == names  # The source is left as it was.


def test_split_links_and_leaves_out_empty_fractions(tmp_path):
    src = tmp_path / 'src'
    write_pairs(src, 10, height=8)
    written = data_tools.split(src, tmp_path / 'out', val=0.3, test=0, link=True)
    assert sorted(os.listdir(tmp_path / 'out')) == ['train', 'val']
    assert {s: len(f) for s, f in written.items()} == {'train': 7, 'val': 3}
    for path in written['val']:
        assert os.path.samefile(path, src / os.path.basename(path))


@pytest.mark.parametrize('val, test, message', [
    (-0.1, 0.1, '--val must be a fraction >= 0'),
    (0.1, float('nan'), '--test must be a fraction >= 0'),
    (0.5, 0.5, 'must be below 1'),
    (0.01, 0.1, r'the val split would be empty \(0.01 of 10 files rounds to 0\)'),
])
def test_split_rejects_bad_fractions(tmp_path, val, test, message):
    write_pairs(tmp_path / 'src', 10, height=8)
    with pytest.raises(UserError, match=message):
        data_tools.split(tmp_path / 'src', tmp_path / 'out', val=val, test=test)
    assert not (tmp_path / 'out').exists()


def test_split_refuses_a_folder_with_files_and_an_empty_source(tmp_path):
    write_pairs(tmp_path / 'src', 10, height=8)
    (tmp_path / 'out').mkdir()
    (tmp_path / 'out' / 'old.png').write_bytes(b'x')
    result = run_command('p2p_tf.data', 'split', '--src', tmp_path / 'src', '--out',
                         tmp_path / 'out')
    assert f'output {tmp_path / "out"} already exists' in error_line(result)
    assert os.listdir(tmp_path / 'out') == ['old.png']
    (tmp_path / 'empty').mkdir()
    with pytest.raises(UserError, match=f'no images in {tmp_path / "empty"}'):
        data_tools.split(tmp_path / 'empty', tmp_path / 'new')


def test_check_reports_counts_sizes_and_modes_of_a_clean_dataset(tmp_path):
    write_pairs(tmp_path / 'train', 5, height=16)
    write_pairs(tmp_path / 'val', 2, height=8, seed=1)
    write_image(str(tmp_path / 'val' / '3.png'), 8, 16, channels=1, seed=2)
    (tmp_path / 'val' / 'notes.txt').write_text('not an image')
    report = checking.check(tmp_path)
    assert report.ok and report.problems == []
    train, val = report.splits
    assert (train.name, len(train.images), train.sizes) == ('train', 5, {(32, 16): 5})
    assert (val.name, len(val.images), val.sizes, val.modes) == (
        'val', 3, {(16, 8): 3}, {'RGB': 2, 'L': 1})
    result = run_command('p2p_tf.data', 'check', tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f'  train: 5 pair(s) in {tmp_path / "train"} (side-by-side files)' in result.stdout
    assert '32x16 (5)' in result.stdout
    assert 'RGB, 3 channel(s) (2); L, 1 channel(s) (1)' in result.stdout
    assert result.stdout.strip().endswith('no problems found')


def test_check_finds_every_kind_of_problem(tmp_path):
    train = write_pairs(tmp_path / 'train', 4, height=16, suffix='.jpg')
    write_pairs(tmp_path / 'val', 2, height=16, seed=1)
    (tmp_path / 'test').mkdir()
    garbage = tmp_path / 'train' / 'garbage.png'
    garbage.write_bytes(b'not an image at all' * 10)
    contents = open(train[0], 'rb').read()
    truncated = tmp_path / 'train' / 'truncated.jpg'
    truncated.write_bytes(contents[:len(contents) * 2 // 3])
    png = open(tmp_path / 'val' / '1.png', 'rb').read()
    cut_png = tmp_path / 'val' / 'cut.png'
    cut_png.write_bytes(png[:-6])  # Pillow alone would decode this one; training would not.
    wide = tmp_path / 'val' / 'wide.png'
    write_image(str(wide), 16, 40)
    leaked = tmp_path / 'val' / 'leaked.jpg'
    leaked.write_bytes(open(train[1], 'rb').read())

    report = checking.check(tmp_path)
    found = {(p.kind, p.paths) for p in report.problems}
    assert found == {
        ('unreadable', (str(garbage),)),
        ('unreadable', (str(truncated),)),
        ('unreadable', (str(cut_png),)),
        ('not_a_pair', (str(wide),)),
        ('duplicate', (train[1], str(leaked))),
        ('empty_split', (str(tmp_path / 'test'),)),
    }, report.problems
    details = {p.paths[0]: p.detail for p in report.problems}
    assert 'truncated' in details[str(truncated)] and 'truncated' in details[str(cut_png)]
    assert details[str(wide)] == '40x16, not twice as wide as high'
    assert details[train[1]] == 'the same bytes in train and val'

    result = run_command('p2p_tf.data', 'check', tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert '6 problem(s):' in result.stdout
    assert f'unreadable: {truncated}: image file is truncated' in result.stdout
    assert f'not a pair: {wide}: 40x16' in result.stdout
    assert f'duplicate: {train[1]} = {leaked}: the same bytes in train and val' in result.stdout
    assert f'empty split: {tmp_path / "test"}: no images' in result.stdout


def test_check_a_plain_folder_and_duplicates_within_it(tmp_path):
    paths = write_pairs(tmp_path / 'mine', 3, height=8)
    (tmp_path / 'mine' / 'copy.png').write_bytes(open(paths[2], 'rb').read())
    report = checking.check(tmp_path / 'mine')
    assert [(s.name, len(s.images)) for s in report.splits] == [('mine', 4)]
    assert [(p.kind, p.paths, p.detail) for p in report.problems] == [
        ('duplicate', (paths[2], str(tmp_path / 'mine' / 'copy.png')),
         'the same bytes 2 times in mine')]


# --- check on every layout training reads ---------------------------------------------------


def write_separate(folder, names, seed=0):
    """folder/A/NAME.png and folder/B/NAME.jpg, random 16x16 images; returns the (a, b) paths."""
    pairs = []
    for i, name in enumerate(names):
        pair = (str(folder / 'A' / f'{name}.png'), str(folder / 'B' / f'{name}.jpg'))
        for side, path in enumerate(pair):
            write_image(path, 16, 16, seed=seed + 2 * i + side)
        pairs.append(pair)
    return pairs


def write_manifest(csv_path, pairs, extra_rows=()):
    rows = [[os.path.relpath(path, csv_path.parent) for path in pair] for pair in pairs]
    lines = ['a,b'] + [','.join(row) for row in rows + list(extra_rows)]
    csv_path.write_text('\n'.join(lines) + '\n')


# Each layout of layouts.py, as check names it.
LAYOUTS = {'side_by_side_splits': 'side-by-side files', 'ab_splits': 'A/ and B/ folders',
           'manifests': 'CSV manifest', 'unsplit_side_by_side': 'side-by-side files',
           'unsplit_ab': 'A/ and B/ folders'}


def write_dataset(root, layout):
    """A small dataset in `layout` that training accepts; returns {split name as check names it:
    (pair count, the folder or CSV it is read from)}."""
    if layout == 'side_by_side_splits':
        write_pairs(root / 'train', 4, height=16)
        write_pairs(root / 'val', 2, height=16, seed=1)
        return {'train': (4, root / 'train'), 'val': (2, root / 'val')}
    if layout == 'ab_splits':
        write_separate(root / 'train', ['1', '2', '10', 'x'])
        write_separate(root / 'val', ['1', '2'], seed=10)
        return {'train': (4, root / 'train'), 'val': (2, root / 'val')}
    if layout == 'manifests':
        pairs = write_separate(root / 'images', [str(i) for i in range(1, 7)])
        write_manifest(root / 'train.csv', pairs[:4])
        write_manifest(root / 'val.csv', pairs[4:])
        return {'train': (4, root / 'train.csv'), 'val': (2, root / 'val.csv')}
    if layout == 'unsplit_side_by_side':
        write_pairs(root, 5, height=16)
        return {root.name: (5, root)}
    write_separate(root, ['1', '2', '3', '4', '5'])  # The README's own mine/A and mine/B.
    return {root.name: (5, root)}


@pytest.mark.parametrize('layout', LAYOUTS)
def test_check_passes_every_layout_training_accepts_and_counts_its_pairs(tmp_path, layout):
    root = tmp_path / 'mine'
    expected = write_dataset(root, layout)
    report = checking.check(root)
    assert report.ok, report.problems
    assert {s.name: (len(s.pairs), s.source) for s in report.splits} == {
        name: (count, str(source)) for name, (count, source) in expected.items()}
    # Check reads the pairs training reads.
    train, samples = layouts.training_examples(str(root))
    if layout.startswith('unsplit'):
        (split,) = report.splits
        assert sorted(split.pairs) == sorted(train + samples)
    else:
        pairs = {s.name: s.pairs for s in report.splits}
        assert pairs == {name: layouts.split_pairs(str(root), name) for name in expected}
        assert (pairs['train'], pairs['val']) == (train, samples)
    assert all(len(s.images) == len(s.pairs) * (1 + ('ab' in layout or 'manifest' in layout))
               for s in report.splits)

    result = run_command('p2p_tf.data', 'check', root)
    assert result.returncode == 0, result.stdout + result.stderr
    for name, (count, source) in expected.items():
        assert f'  {name}: {count} pair(s) in {source} ({LAYOUTS[layout]}' in result.stdout
    assert result.stdout.strip().endswith('no problems found')


@pytest.mark.parametrize('layout', LAYOUTS)
def test_check_names_a_truncated_file_in_every_layout(tmp_path, layout, capsys):
    root = tmp_path / 'mine'
    write_dataset(root, layout)
    truncated = sorted(root.rglob('1.png'))[0]
    truncated.write_bytes(truncated.read_bytes()[:300])
    report = checking.check(root)
    assert [(p.kind, p.paths) for p in report.problems] == [('unreadable', (str(truncated),))]
    assert data.main(['check', str(root)]) == 1
    output = capsys.readouterr().out
    assert '1 problem(s):' in output and f'  unreadable: {truncated}: ' in output


def test_check_lists_every_unmatched_file_that_training_refuses(tmp_path):
    write_dataset(tmp_path, 'ab_splits')
    extra = tmp_path / 'train' / 'A' / 'extra.png'
    lonely = tmp_path / 'val' / 'B' / 'lonely.jpg'
    write_image(str(extra), 16, 16, seed=50)
    write_image(str(lonely), 16, 16, seed=51)
    os.makedirs(tmp_path / 'test' / 'A')
    os.makedirs(tmp_path / 'test' / 'B')
    report = checking.check(tmp_path)
    assert [(p.kind, p.paths, p.detail) for p in report.problems] == [
        ('unmatched', (str(extra),), f'no file named extra.* in {tmp_path / "train" / "B"}'),
        ('unmatched', (str(lonely),), f'no file named lonely.* in {tmp_path / "val" / "A"}'),
        ('empty_split', (str(tmp_path / 'test'),), 'no pairs in A/ and B/')]
    assert [len(s.pairs) for s in report.splits] == [4, 2, 0]  # The matched pairs.
    with pytest.raises(UserError, match=r'train/A/extra\.\* has no partner'):
        layouts.split_pairs(str(tmp_path), 'train')

    result = run_command('p2p_tf.data', 'check', tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert '3 problem(s):' in result.stdout
    assert f'  no partner: {extra}: no file named extra.*' in result.stdout
    assert f'  no partner: {lonely}: no file named lonely.*' in result.stdout
    assert f'  empty split: {tmp_path / "test"}: no pairs' in result.stdout


def test_check_a_folder_of_a_and_b_without_splits_and_its_unmatched_files(tmp_path):
    mine = tmp_path / 'mine'
    write_dataset(mine, 'unsplit_ab')
    write_image(str(mine / 'A' / '6.png'), 16, 16, seed=60)
    write_image(str(mine / 'B' / '7.jpg'), 16, 16, seed=61)
    report = checking.check(mine)
    assert [(s.name, s.layout, len(s.pairs)) for s in report.splits] == [
        ('mine', layouts.AB_FOLDERS, 5)]
    assert [(p.kind, p.paths) for p in report.problems] == [
        ('unmatched', (str(mine / 'A' / '6.png'),)), ('unmatched', (str(mine / 'B' / '7.jpg'),))]
    with pytest.raises(UserError, match=r'A/6\.\* has no partner .* \(2 unmatched\)'):
        layouts.training_examples(str(mine))
    result = run_command('p2p_tf.data', 'check', mine)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f'  mine: 5 pair(s) in {mine} (A/ and B/ folders, 10 image(s))' in result.stdout
    assert f'  no partner: {mine / "A" / "6.png"}: no file named 6.* in {mine / "B"}' in (
        result.stdout)


def test_check_names_a_manifest_row_with_a_missing_file_and_a_bad_header(tmp_path):
    pairs = write_separate(tmp_path / 'images', ['1', '2', '3'])
    write_manifest(tmp_path / 'train.csv', pairs[:2])
    write_manifest(tmp_path / 'val.csv', pairs[2:], [['images/A/3.png', 'images/B/9.jpg']])
    (tmp_path / 'test.csv').write_text('input,target\nimages/A/1.png,images/B/1.jpg\n')
    missing = tmp_path / 'images' / 'B' / '9.jpg'
    report = checking.check(tmp_path)
    assert [(p.kind, p.paths, p.detail) for p in report.problems] == [
        ('missing_file', (str(missing),), f'no such file (line 3 of {tmp_path / "val.csv"})'),
        ('bad_manifest', (str(tmp_path / 'test.csv'),), 'needs a header with columns a and b')]
    assert [(s.name, s.layout, len(s.pairs)) for s in report.splits] == [
        ('train', layouts.MANIFEST, 2), ('val', layouts.MANIFEST, 1),
        ('test', layouts.MANIFEST, 0)]
    with pytest.raises(UserError, match=f'val.csv line 3: no file {missing}'):
        layouts.split_pairs(str(tmp_path), 'val')

    result = run_command('p2p_tf.data', 'check', tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f'  missing file: {missing}: no such file (line 3 of' in result.stdout
    assert f'  bad manifest: {tmp_path / "test.csv"}: needs a header' in result.stdout


def test_check_reports_a_and_b_of_different_sizes_as_information(tmp_path):
    write_dataset(tmp_path, 'ab_splits')
    resized = tmp_path / 'val' / 'B' / '2.jpg'
    write_image(str(resized), 24, 20, seed=99)
    report = checking.check(tmp_path)
    assert report.ok, report.problems
    train, val = report.splits
    assert train.resized == []
    assert [(a.path, a.size, b.path, b.size) for a, b in val.resized] == [
        (str(tmp_path / 'val' / 'A' / '2.png'), (16, 16), str(resized), (20, 24))]
    result = run_command('p2p_tf.data', 'check', tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (f'A and B differ in size in 1 pair(s), e.g. {tmp_path / "val" / "A" / "2.png"} '
            f'(16x16) and {resized} (20x24): training resizes both') in result.stdout


def test_check_imports_no_tensorflow(tmp_path):
    write_dataset(tmp_path / 'mine', 'unsplit_ab')
    code = ('import sys; from p2p_tf import data; '
            f'status = data.main(["check", {str(tmp_path / "mine")!r}]); '
            'print(status, "tensorflow" in sys.modules)')
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                            cwd=str(REPO))
    assert result.stdout.strip().splitlines()[-1] == '0 False', result.stdout + result.stderr


@pytest.mark.parametrize('args, message', [
    (['check', 'no/such/folder'], 'data folder no/such/folder does not exist'),
    ([], 'the following arguments are required'),
    (['split', '--src', 'x'], 'the following arguments are required: --out'),
    (['combine', '--a', 'x', '--b', 'y', '--out', 'z', '--format', 'tiff'], 'invalid choice'),
    (['check', '.', '--bogus'], 'unrecognized arguments: --bogus'),
])
def test_bad_usage_is_one_line_and_exit_2(args, message):
    assert message in error_line(run_command('p2p_tf.data', *args))


def test_combine_split_check_make_data_training_reads(tmp_path):
    for i in range(1, 11):
        write_image(str(tmp_path / 'photos' / f'{i}.jpg'), 24, 24, seed=i)
        write_image(str(tmp_path / 'labels' / f'{i}.png'), 24, 24, channels=1, seed=100 + i)
    data_tools.combine(tmp_path / 'photos', tmp_path / 'labels', tmp_path / 'pairs')
    data_tools.split(tmp_path / 'pairs', tmp_path / 'data', val=0.2, test=0.2)
    assert checking.check(tmp_path / 'data').ok
    root = str(tmp_path / 'data')
    files = [p for split in config_lib.SPLITS for p in layouts.split_files(root, split)]
    assert len(files) == 10
    image_files.check_pairs(files, min_side=24)


def test_check_the_shared_facades(shared_data):
    start = time.perf_counter()
    report = checking.check(shared_data / 'facades')
    print(f'check facades: {time.perf_counter() - start:.2f} s')
    assert report.ok, report.problems[:5]
    assert {s.name: len(s.images) for s in report.splits} == {'train': 400, 'val': 100,
                                                               'test': 106}
    for split in report.splits:
        assert split.sizes == {(512, 256): len(split.images)} and split.modes.keys() == {'RGB'}


def test_check_the_shared_maps_in_a_subprocess(shared_data):
    start = time.perf_counter()
    result = run_command('p2p_tf.data', 'check', shared_data / 'maps')
    print(f'check maps: {time.perf_counter() - start:.2f} s')
    assert result.returncode == 0, (result.stdout + result.stderr)[-2000:]
    assert (f'val: 1098 pair(s) in {shared_data / "maps" / "val"} (side-by-side files)'
            in result.stdout)
    assert 'sizes: 1200x600 (1098)' in result.stdout
    assert 'modes: RGB, 3 channel(s) (1098)' in result.stdout
    assert result.stdout.strip().endswith('no problems found')


def test_check_says_when_training_would_find_nothing_to_train_on(tmp_path, capsys):
    write_pairs(tmp_path / 'held_out' / 'val', 2, height=16)
    report = checking.check(tmp_path / 'held_out')
    assert report.ok and report.notes == [
        'no train/ folder or train.csv: training on this folder would stop; translate or '
        'evaluate with it instead']
    with pytest.raises(UserError, match='no train/ split'):
        layouts.training_examples(str(tmp_path / 'held_out'))
    write_pairs(tmp_path / 'one', 1, height=16)
    report = checking.check(tmp_path / 'one')
    assert [problem.kind for problem in report.problems] == ['no_training_pairs']
    with pytest.raises(UserError, match='too few pairs'):
        layouts.training_examples(str(tmp_path / 'one'))
    assert data.main(['check', str(tmp_path / 'one')]) == 1
    assert 'nothing to train on: ' in capsys.readouterr().out
