"""Tests of the per-example image ops, each run both eagerly and inside tf.data.Dataset.map."""

import numpy as np
import pytest
import tensorflow as tf

from p2p_tf.datasets import preprocessing

LOAD, CROP = 36, 32


def run_both(op, *args):
    """Runs op(*args) eagerly and inside Dataset.map, asserts the results equal; returns them."""
    eager = tf.nest.map_structure(lambda t: tf.convert_to_tensor(t).numpy(), op(*args))
    mapped = tf.data.Dataset.from_tensors(tuple(args)).map(lambda *a: op(*a))
    graph = tf.nest.map_structure(lambda t: t.numpy(), mapped.get_single_element())
    tf.nest.assert_same_structure(eager, graph)
    for e, g in zip(tf.nest.flatten(eager), tf.nest.flatten(graph)):
        assert e.dtype == g.dtype
        np.testing.assert_array_equal(e, g)
    return eager


def random_uint8(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


def coordinate_image(size=LOAD):
    """uint8 [size, size, 3] with pixel (y, x) = (y, x, 100): a crop shows where it came from."""
    y, x = np.meshgrid(np.arange(size), np.arange(size), indexing='ij')
    return np.stack([y, x, np.full_like(y, 100)], axis=-1).astype(np.uint8)


def jitter_seed(number):
    return tf.constant([0, number], tf.int64)


def crop_position(cropped):
    """(row, column, flipped) of a crop of coordinate_image(), checking that it is one."""
    row, column = int(cropped[0, 0, 0]), int(cropped[0, :, 1].min())
    flipped = bool(cropped[0, 0, 1] > cropped[0, -1, 1])
    expected = coordinate_image()[row:row + CROP, column:column + CROP]
    np.testing.assert_array_equal(cropped, expected[:, ::-1] if flipped else expected)
    return row, column, flipped


@pytest.fixture
def pair():
    """(encoded PNG of A|B side by side, A, B) with random 8x8 RGB halves."""
    a, b = random_uint8([8, 8, 3], seed=1), random_uint8([8, 8, 3], seed=2)
    return tf.io.encode_png(np.concatenate([a, b], axis=1)), a, b


@pytest.mark.parametrize('direction', ['AtoB', 'BtoA'])
def test_decode_pair_splits_the_halves_in_the_direction(pair, direction):
    contents, a, b = pair
    source, target = run_both(lambda c: preprocessing.decode_pair(c, direction=direction),
                              contents)
    expected = (a, b) if direction == 'AtoB' else (b, a)
    assert source.dtype == np.uint8 and source.shape == (8, 8, 3)
    np.testing.assert_array_equal(source, expected[0])
    np.testing.assert_array_equal(target, expected[1])


def test_decode_pair_converts_a_side_to_grayscale(pair):
    contents, a, b = pair
    source, target = run_both(
        lambda c: preprocessing.decode_pair(c, input_channels=1, target_channels=3), contents)
    assert source.shape == (8, 8, 1) and target.shape == (8, 8, 3)
    np.testing.assert_array_equal(source, tf.image.rgb_to_grayscale(a).numpy())
    np.testing.assert_array_equal(target, b)
    source, target = run_both(
        lambda c: preprocessing.decode_pair(c, input_channels=3, target_channels=1), contents)
    np.testing.assert_array_equal(source, a)
    np.testing.assert_array_equal(target, tf.image.rgb_to_grayscale(b).numpy())


def test_decode_pair_reads_grayscale_files_as_rgb():
    a, b = random_uint8([8, 8, 1], seed=1), random_uint8([8, 8, 1], seed=2)
    contents = tf.io.encode_png(np.concatenate([a, b], axis=1))
    source, target = run_both(preprocessing.decode_pair, contents)
    np.testing.assert_array_equal(source, np.repeat(a, 3, axis=-1))
    np.testing.assert_array_equal(target, np.repeat(b, 3, axis=-1))


def test_decode_pair_of_an_odd_width_gives_equal_halves():
    image = random_uint8([8, 17, 3])
    source, target = run_both(preprocessing.decode_pair, tf.io.encode_png(image))
    np.testing.assert_array_equal(source, image[:, :8])
    np.testing.assert_array_equal(target, image[:, 8:16])


@pytest.mark.parametrize('channels, size', [(3, 36), (1, 24), (3, 50)])
def test_resize_gives_uint8_of_the_size(channels, size):
    resized = run_both(lambda image: preprocessing.resize(image, size),
                       random_uint8([40, 30, channels]))
    assert resized.dtype == np.uint8
    assert resized.shape == (size, size, channels)


@pytest.mark.parametrize('size', [20, 64])
def test_resize_keeps_a_constant_image_constant(size):
    image = np.full([40, 40, 3], [7, 128, 250], np.uint8)
    resized = run_both(lambda x: preprocessing.resize(x, size), image)
    np.testing.assert_array_equal(resized, np.full([size, size, 3], [7, 128, 250], np.uint8))


def test_resize_to_the_same_size_is_the_identity():
    image = random_uint8([32, 32, 3])
    np.testing.assert_array_equal(run_both(lambda x: preprocessing.resize(x, 32), image), image)


def jitter(source, target, number, flip=True):
    return run_both(lambda s, t, seed: preprocessing.random_jitter(s, t, seed, CROP, flip),
                    source, target, jitter_seed(number))


def test_random_jitter_crops_and_flips_source_and_target_alike():
    source = coordinate_image()
    target = 255 - source
    for number in range(20):
        source_out, target_out = jitter(source, target, number)
        assert source_out.shape == (CROP, CROP, 3) and target_out.shape == (CROP, CROP, 3)
        crop_position(source_out)
        np.testing.assert_array_equal(target_out, 255 - source_out)


def test_random_jitter_aligns_sides_with_different_channel_counts():
    coordinates = coordinate_image()
    columns = 255 - coordinates[..., 1:2]  # [H, W, 1]
    for number in range(10):
        source_out, target_out = jitter(coordinates, columns, number)
        assert source_out.shape == (CROP, CROP, 3) and target_out.shape == (CROP, CROP, 1)
        np.testing.assert_array_equal(target_out[..., 0], 255 - source_out[..., 1])
        rows = coordinates[..., :1]
        source_out, target_out = jitter(rows, coordinates, number)
        assert source_out.shape == (CROP, CROP, 1) and target_out.shape == (CROP, CROP, 3)
        np.testing.assert_array_equal(source_out[..., 0], target_out[..., 0])
        crop_position(target_out)


def test_random_jitter_varies_with_the_seed_and_flips_some():
    source = coordinate_image()
    positions = [crop_position(jitter(source, source, number)[0]) for number in range(30)]
    assert len({(row, column) for row, column, _ in positions}) > 10
    flips = [flipped for _, _, flipped in positions]
    assert 5 < sum(flips) < 25


def test_random_jitter_without_flip_never_flips():
    source = coordinate_image()
    for number in range(20):
        assert not crop_position(jitter(source, source, number, flip=False)[0])[2]


def test_random_jitter_is_a_function_of_the_seed():
    source = random_uint8([LOAD, LOAD, 3])
    target = random_uint8([LOAD, LOAD, 3], seed=1)
    first = jitter(source, target, 7)
    second = jitter(source, target, 7)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    other = jitter(source, target, 8)
    assert not np.array_equal(first[0], other[0])


def test_to_unit_range_maps_0_to_minus_1_and_255_to_1():
    values = run_both(preprocessing.to_unit_range, np.array([0, 255, 127, 128], np.uint8))
    assert values.dtype == np.float32
    np.testing.assert_allclose(values[:2], [-1.0, 1.0], atol=1e-7)
    # The midpoint 0 sits at 127.5, halfway between 127 and 128.
    assert values[2] == pytest.approx(-values[3], abs=1e-6)
    assert values[3] == pytest.approx(0.5 / 127.5, abs=1e-6)


def test_to_uint8_inverts_to_unit_range_for_every_value():
    levels = np.arange(256, dtype=np.uint8)
    round_trip = run_both(lambda x: preprocessing.to_uint8(preprocessing.to_unit_range(x)), levels)
    assert round_trip.dtype == np.uint8
    np.testing.assert_array_equal(round_trip, levels)


def test_to_uint8_clips_out_of_range_values():
    clipped = run_both(preprocessing.to_uint8, np.array([-3.0, -1.0, 1.0, 2.5], np.float32))
    np.testing.assert_array_equal(clipped, [0, 0, 255, 255])


def dihedral_variants(image):
    """The 8 images reachable by flips and 90-degree rotations."""
    variants = []
    for turns in range(4):
        rotated = np.rot90(image, turns)
        variants += [rotated, rotated[::-1]]
    return variants


def test_vertical_flip_and_rotations_move_source_and_target_alike():
    """With the crop as large as the image, each output is one of the 8 flips/rotations of the
    input, the same one for source and target, and several of them occur."""
    source = coordinate_image()[:CROP, :CROP]
    target = 255 - source
    seen = set()
    for number in range(40):
        source_out, target_out = run_both(
            lambda s, t, seed: preprocessing.random_jitter(
                s, t, seed, CROP, flip=True, vertical_flip=True, rotate90=True),
            source, target, jitter_seed(number))
        np.testing.assert_array_equal(target_out, 255 - source_out)
        matches = [i for i, variant in enumerate(dihedral_variants(source))
                   if np.array_equal(variant, source_out)]
        assert len(matches) == 1
        seen.add(matches[0])
    assert len(seen) >= 6


def test_extra_augmentations_leave_crops_and_mirrors_unchanged():
    """Turning the extra augmentations on keeps each example's crop and mirror (their seeds are
    separate), so only the added transforms differ."""
    source = coordinate_image()
    for number in range(10):
        plain, _ = jitter(source, source, number)
        rotated, _ = run_both(
            lambda s, t, seed: preprocessing.random_jitter(s, t, seed, CROP, rotate90=True),
            source, source, jitter_seed(number))
        assert any(np.array_equal(plain, np.rot90(rotated, -turns)) for turns in range(4))
