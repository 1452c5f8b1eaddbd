"""Image-quality metrics: hand-computed values, shapes, the PSNR cap, SSIM's size limit."""

import numpy as np
import pytest
import tensorflow as tf

from p2p_tf.evaluation import metrics
from p2p_tf.nets import losses


def random_images(shape, seed, low=-1.0, high=1.0):
    return tf.random.stateless_uniform(shape, [seed, 0], low, high)


@pytest.mark.parametrize('channels', [1, 3])
def test_identical_images_score_perfectly(channels):
    images = random_images([2, 32, 32, channels], seed=0)
    values = metrics.image_metrics(images, images)
    np.testing.assert_array_equal(values['l1'], [0.0, 0.0])
    np.testing.assert_allclose(values['psnr'], [metrics.PSNR_CAP_DB] * 2, rtol=1e-6)
    np.testing.assert_allclose(values['ssim'], [1.0, 1.0], rtol=1e-6)


def test_a_constant_shift_gives_hand_computed_l1_and_psnr():
    outputs = random_images([3, 16, 16, 3], seed=1, high=0.8)
    targets = outputs + 0.2  # 0.1 on the [0, 1] scale: MSE 0.01, PSNR 10 log10(1 / 0.01).
    np.testing.assert_allclose(metrics.l1(outputs, targets), [0.2] * 3, rtol=1e-5)
    np.testing.assert_allclose(metrics.psnr(outputs, targets), [20.0] * 3, rtol=1e-5)


def test_ssim_of_constant_images_is_the_luminance_term():
    # 0.25 and 0.75 on the [0, 1] scale: no variance, so SSIM = (2ab + C1) / (a² + b² + C1).
    outputs = tf.fill([1, 16, 16, 3], -0.5)
    targets = tf.fill([1, 16, 16, 3], 0.5)
    c1 = metrics.SSIM_K1 ** 2
    expected = (2 * 0.25 * 0.75 + c1) / (0.25 ** 2 + 0.75 ** 2 + c1)
    # float32 rounding of the (zero) variances is of order 1e-7, divided by C2 = 9e-4.
    np.testing.assert_allclose(metrics.ssim(outputs, targets), [expected], rtol=5e-4)


def test_ssim_of_a_different_image_is_below_one():
    images = random_images([2, 32, 32, 3], seed=2)
    others = random_images([2, 32, 32, 3], seed=3)
    values = metrics.ssim(images, others).numpy()
    assert values.shape == (2,) and (values < 0.5).all()
    blurred = tf.nn.avg_pool2d(images, 3, 1, 'SAME')
    assert 0.0 < float(metrics.ssim(images, blurred)[0]) < 1.0


def test_one_value_per_image_that_matches_the_training_l1():
    outputs, targets = random_images([4, 32, 32, 3], 4), random_images([4, 32, 32, 3], 5)
    values = metrics.image_metrics(outputs, targets)
    assert set(values) == set(metrics.METRIC_NAMES)
    for name in metrics.METRIC_NAMES:
        assert values[name].shape == (4,) and values[name].dtype == tf.float32, name
    _, _, gen_l1 = losses.generator_loss(tf.zeros([4, 2, 2, 1]), outputs, targets)
    np.testing.assert_allclose(np.mean(values['l1']), gen_l1, rtol=1e-6)
    # Each image's value is its own: scoring one image alone gives the same.
    alone = metrics.image_metrics(outputs[2:3], targets[2:3])
    for name in metrics.METRIC_NAMES:
        np.testing.assert_allclose(alone[name][0], values[name][2], rtol=1e-5)


def test_in_a_tf_function_with_unknown_sizes():
    outputs, targets = random_images([2, 24, 40, 3], 6), random_images([2, 24, 40, 3], 7)
    spec = tf.TensorSpec([None, None, None, 3])
    traced = tf.function(metrics.image_metrics, input_signature=[spec, spec])
    eager = metrics.image_metrics(outputs, targets)
    for name, value in traced(outputs, targets).items():
        np.testing.assert_allclose(value, eager[name], rtol=1e-5)
    with pytest.raises(tf.errors.InvalidArgumentError, match='at least 11x11'):
        traced(outputs[:, :8, :8], targets[:, :8, :8])


def test_ssim_refuses_images_smaller_than_its_filter():
    images = random_images([1, 8, 32, 3], seed=8)
    with pytest.raises(ValueError, match='at least 11x11 pixels.*got 8x32'):
        metrics.ssim(images, images)


def test_better_directions():
    assert metrics.is_better('l1', 0.1, 0.2) and not metrics.is_better('l1', 0.2, 0.1)
    assert metrics.is_better('psnr', 21.0, 20.0) and metrics.is_better('ssim', 0.6, 0.5)
    assert not metrics.is_better('ssim', 0.5, 0.5)  # Ties are not improvements.
    assert all(metrics.is_better(name, 0.0, None) for name in metrics.METRIC_NAMES)
