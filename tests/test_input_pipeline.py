"""Tests of the tf.data pipelines: batch shapes and ranges, input/target alignment through the
whole pipeline, epoch order, resuming mid-run, the cache, and the evaluation pipeline."""

import numpy as np
import pytest
from PIL import Image

from p2p_tf.datasets import input_pipeline, preprocessing

from conftest import tiny_config, write_pairs


def pipeline_config(**overrides):
    """The tiny config reading pairs A -> B (the facades default it starts from is BtoA)."""
    return tiny_config(**{'direction': 'AtoB', **overrides})


def write_pair(path, a, b):
    Image.fromarray(np.concatenate([a, b], axis=1)).save(path)
    return str(path)


def batches(dataset, count):
    """The first `count` batches of `dataset` as lists of numpy (inputs, targets)."""
    return [(inputs.numpy(), targets.numpy()) for inputs, targets in dataset.take(count)]


def examples(dataset, count):
    """The first `count` examples of a batched dataset, unbatched, as numpy (input, target)."""
    return [(i.numpy(), t.numpy()) for i, t in dataset.unbatch().take(count)]


@pytest.fixture
def random_paths(tmp_path):
    return write_pairs(tmp_path / 'pairs', 5, height=40)


@pytest.fixture
def constant_paths(tmp_path):
    """5 pairs of height 40 where file i has A = 40 * i and B = 255 - 40 * i everywhere."""
    paths = []
    for i in range(5):
        a = np.full([40, 40, 3], 40 * i, np.uint8)
        paths.append(write_pair(tmp_path / f'{i}.png', a, 255 - a))
    return paths


def file_index(image):
    """The index of the constant_paths file that a [-1, 1] input came from."""
    level = preprocessing.to_uint8(image).numpy()
    assert np.all(level == level.flat[0]), 'a constant file gave a non-constant image'
    assert level.flat[0] % 40 == 0
    return int(level.flat[0]) // 40


def test_train_batches_have_the_shape_and_range(random_paths):
    config = pipeline_config(load_size=36, image_size=32, batch_size=2)
    for inputs, targets in batches(input_pipeline.train_dataset(random_paths, config), 4):
        for images in (inputs, targets):
            assert images.shape == (2, 32, 32, 3)
            assert images.dtype == np.float32
            assert images.min() >= -1.0 and images.max() <= 1.0
            assert images.std() > 0.1  # Random pixels, not a constant.


def test_train_batches_have_the_configured_channels(random_paths):
    config = pipeline_config(load_size=36, image_size=32, batch_size=2, input_channels=1,
                             output_channels=3)
    inputs, targets = batches(input_pipeline.train_dataset(random_paths, config), 1)[0]
    assert inputs.shape == (2, 32, 32, 1) and targets.shape == (2, 32, 32, 3)


@pytest.mark.parametrize('direction', ['AtoB', 'BtoA'])
def test_input_and_target_stay_aligned_through_the_pipeline(tmp_path, direction):
    rng = np.random.default_rng(0)
    paths = []
    for i in range(3):
        # Smooth content, so a misaligned crop or flip would differ by far more than the tolerance.
        a = rng.integers(0, 256, size=[5, 5, 3]).astype(np.uint8)
        a = np.array(Image.fromarray(a).resize((40, 40), Image.BILINEAR))
        paths.append(write_pair(tmp_path / f'{i}.png', a, 255 - a))
    config = pipeline_config(load_size=36, image_size=32, batch_size=2, direction=direction)
    for inputs, targets in batches(input_pipeline.train_dataset(paths, config), 6):
        # Bilinear resizing then rounding can break the 255 - x symmetry by one level.
        np.testing.assert_allclose(inputs, -targets, atol=2 / 127.5)
        assert inputs.std() > 0.1


def test_direction_swaps_input_and_target(constant_paths):
    config = pipeline_config(load_size=32, image_size=32, batch_size=1, random_flip=False)
    forward = examples(input_pipeline.train_dataset(constant_paths, config), 5)
    config = pipeline_config(load_size=32, image_size=32, batch_size=1, random_flip=False,
                             direction='BtoA')
    backward = examples(input_pipeline.train_dataset(constant_paths, config), 5)
    for (a, b), (b_again, a_again) in zip(forward, backward):
        np.testing.assert_array_equal(a, a_again)
        np.testing.assert_array_equal(b, b_again)
        assert not np.array_equal(a, b)


def test_resumed_pipeline_continues_the_uninterrupted_one(random_paths):
    # 5 files, batch size 1: examples 3..9 cross the boundary between epochs 0 and 1.
    config = pipeline_config(load_size=36, image_size=32, batch_size=1)
    uninterrupted = batches(input_pipeline.train_dataset(random_paths, config), 10)
    resumed = batches(input_pipeline.train_dataset(random_paths, config, start_example=3), 7)
    for (inputs, targets), (expected_inputs, expected_targets) in zip(resumed, uninterrupted[3:]):
        np.testing.assert_array_equal(inputs, expected_inputs)
        np.testing.assert_array_equal(targets, expected_targets)
    assert len(resumed) == 7


def test_resuming_at_an_epoch_boundary_with_larger_batches(random_paths):
    config = pipeline_config(load_size=36, image_size=32, batch_size=2)
    uninterrupted = examples(input_pipeline.train_dataset(random_paths, config), 14)
    resumed = examples(input_pipeline.train_dataset(random_paths, config, start_example=10), 4)
    for (inputs, targets), (expected_inputs, expected_targets) in zip(resumed, uninterrupted[10:]):
        np.testing.assert_array_equal(inputs, expected_inputs)
        np.testing.assert_array_equal(targets, expected_targets)


def test_each_epoch_visits_every_file_once(constant_paths):
    config = pipeline_config(load_size=32, image_size=32, batch_size=1, random_flip=False)
    order = [file_index(inputs)
             for inputs, _ in examples(input_pipeline.train_dataset(constant_paths, config), 15)]
    epochs = [order[i:i + 5] for i in range(0, 15, 5)]
    for epoch in epochs:
        assert sorted(epoch) == [0, 1, 2, 3, 4]
    # Each epoch is shuffled with its own seed.
    assert len({tuple(epoch) for epoch in epochs}) > 1


def test_a_file_gets_a_new_jitter_in_every_epoch(random_paths):
    # One file: every example is the same pair, so only the jitter can tell them apart.
    config = pipeline_config(load_size=36, image_size=32, batch_size=1)
    result = examples(input_pipeline.train_dataset(random_paths[:1], config), 6)
    distinct = {inputs.tobytes() for inputs, _ in result}
    assert len(distinct) >= 4


def test_train_pairs_keep_their_files_together(constant_paths):
    config = pipeline_config(load_size=32, image_size=32, batch_size=1)
    for inputs, targets in examples(input_pipeline.train_dataset(constant_paths, config), 10):
        np.testing.assert_allclose(inputs, -targets, atol=1e-6)


def test_the_seed_changes_the_order(constant_paths):
    def order(seed):
        config = pipeline_config(load_size=32, image_size=32, batch_size=1, random_flip=False,
                                 seed=seed)
        dataset = input_pipeline.train_dataset(constant_paths, config)
        return [file_index(inputs) for inputs, _ in examples(dataset, 10)]

    assert order(0) == order(0)
    assert order(0) != order(1)


@pytest.mark.parametrize('start_example', [0, 3])
def test_cache_does_not_change_the_batches(random_paths, start_example):
    config = pipeline_config(load_size=36, image_size=32, batch_size=2)
    cached = batches(input_pipeline.train_dataset(random_paths, config, start_example, cache=True),
                     4)
    streamed = batches(
        input_pipeline.train_dataset(random_paths, config, start_example, cache=False), 4)
    for (inputs, targets), (expected_inputs, expected_targets) in zip(cached, streamed):
        np.testing.assert_array_equal(inputs, expected_inputs)
        np.testing.assert_array_equal(targets, expected_targets)


def expected_eval_pair(path, size):
    """What eval_dataset should give for one file, computed with PIL and the resize op."""
    pixels = np.array(Image.open(path).convert('RGB'))
    half = pixels.shape[1] // 2
    return tuple(preprocessing.to_unit_range(preprocessing.resize(side, size)).numpy()
                 for side in (pixels[:, :half], pixels[:, half:]))


def test_pipelines_run_without_the_autotune_thread(random_paths):
    # Its wake-ups delayed the end of training runs (input_pipeline.without_autotune_thread).
    config = tiny_config()
    for dataset in (input_pipeline.train_dataset(random_paths, config),
                    input_pipeline.eval_dataset(random_paths, config)):
        assert dataset.options().autotune.enabled is False


def test_eval_dataset_resizes_in_file_order_without_jitter(random_paths):
    config = pipeline_config(load_size=36, image_size=32)
    dataset = input_pipeline.eval_dataset(random_paths, config, batch_size=2)
    result = batches(dataset, 10)
    assert [inputs.shape[0] for inputs, _ in result] == [2, 2, 1]  # Finite, keeps the remainder.
    inputs = np.concatenate([i for i, _ in result])
    targets = np.concatenate([t for _, t in result])
    assert inputs.shape == (5, 32, 32, 3) and inputs.dtype == np.float32
    for path, image, target in zip(random_paths, inputs, targets):
        expected_image, expected_target = expected_eval_pair(path, 32)
        np.testing.assert_array_equal(image, expected_image)
        np.testing.assert_array_equal(target, expected_target)
    again = batches(dataset, 10)
    for (a, b), (c, d) in zip(result, again):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)


def test_eval_dataset_follows_the_direction(random_paths):
    config = pipeline_config(direction='BtoA')
    inputs, targets = batches(input_pipeline.eval_dataset(random_paths[:1], config), 1)[0]
    expected_image, expected_target = expected_eval_pair(random_paths[0], 32)
    np.testing.assert_array_equal(inputs[0], expected_target)
    np.testing.assert_array_equal(targets[0], expected_image)


def test_example_order_numbers_examples_and_permutes_each_epoch():
    order = list(input_pipeline.example_order(num_files=4, seed=0).take(8).as_numpy_iterator())
    numbers = [number for number, _ in order]
    indices = [index for _, index in order]
    assert numbers == list(range(8))
    assert sorted(indices[:4]) == [0, 1, 2, 3]
    assert sorted(indices[4:]) == [0, 1, 2, 3]


def test_example_order_resumes_mid_epoch():
    full = list(input_pipeline.example_order(num_files=4, seed=3).take(12).as_numpy_iterator())
    for start in (1, 4, 6):
        resumed = input_pipeline.example_order(num_files=4, seed=3, start_example=start)
        assert list(resumed.take(12 - start).as_numpy_iterator()) == full[start:]


def test_example_order_depends_on_the_seed():
    def indices(seed):
        order = input_pipeline.example_order(num_files=6, seed=seed).take(12)
        return [int(index) for _, index in order]

    assert indices(0) == indices(0)
    assert indices(0) != indices(1)
