"""Tests of the cGAN + L1 objective against values computed by hand with numpy."""

import math

import numpy as np
import pytest
import tensorflow as tf

from p2p_tf.nets import losses


def numpy_cross_entropy(label, logits):
    """Mean of -[label * log(sigmoid(z)) + (1 - label) * log(1 - sigmoid(z))]."""
    logits = np.asarray(logits, np.float64)
    probability = 1.0 / (1.0 + np.exp(-logits))
    return float(np.mean(-(label * np.log(probability) + (1 - label) * np.log(1 - probability))))


REAL_LOGITS = np.array([[[[2.0], [-1.0]], [[0.5], [0.0]]]], np.float32)  # [1, 2, 2, 1]
FAKE_LOGITS = np.array([[[[-3.0], [1.5]], [[0.25], [-0.5]]]], np.float32)


def test_cross_entropy_of_a_zero_logit_is_log_2():
    for label in (0.0, 1.0):
        value = losses.sigmoid_cross_entropy(label, tf.zeros([2, 3, 3, 1]))
        assert float(value) == pytest.approx(math.log(2.0), abs=1e-6)


def test_cross_entropy_of_single_logits():
    assert float(losses.sigmoid_cross_entropy(1.0, tf.constant([[2.0]]))) == pytest.approx(
        math.log(1 + math.exp(-2.0)), abs=1e-6)
    assert float(losses.sigmoid_cross_entropy(0.0, tf.constant([[2.0]]))) == pytest.approx(
        math.log(1 + math.exp(2.0)), abs=1e-6)


def test_cross_entropy_averages_over_all_logits():
    for label in (0.0, 1.0):
        assert float(losses.sigmoid_cross_entropy(label, tf.constant(REAL_LOGITS))) == \
            pytest.approx(numpy_cross_entropy(label, REAL_LOGITS), abs=1e-6)


def test_cross_entropy_keeps_the_logits_dtype():
    value = losses.sigmoid_cross_entropy(1, tf.constant([[0.0]], tf.float64))
    assert value.dtype == tf.float64


def test_generator_loss_is_gan_plus_weighted_l1():
    generated = np.array([[[[0.5, -1.0]], [[0.0, 0.25]]]], np.float32)  # [1, 2, 1, 2]
    target = np.array([[[[1.0, -0.5]], [[-0.75, 0.25]]]], np.float32)
    expected_l1 = (0.5 + 0.5 + 0.75 + 0.0) / 4
    expected_gan = numpy_cross_entropy(1.0, FAKE_LOGITS)  # The generator wants D to say "real".

    total, gan, l1 = losses.generator_loss(tf.constant(FAKE_LOGITS), tf.constant(generated),
                                           tf.constant(target), l1_weight=10.0)
    assert float(l1) == pytest.approx(expected_l1, abs=1e-6)
    assert float(gan) == pytest.approx(expected_gan, abs=1e-6)
    assert float(total) == pytest.approx(expected_gan + 10.0 * expected_l1, abs=1e-5)


@pytest.mark.parametrize('l1_weight, gan_weight', [(100.0, 0.0), (0.0, 1.0), (10.0, 2.0)],
                         ids=['l1_only', 'cgan_only', 'both_weighted'])
def test_generator_loss_weights_each_term(l1_weight, gan_weight):
    generated = tf.zeros([1, 2, 2, 1])
    target = tf.fill([1, 2, 2, 1], 0.5)
    total, gan, l1 = losses.generator_loss(tf.zeros([1, 1, 1, 1]), generated, target,
                                           l1_weight=l1_weight, gan_weight=gan_weight)
    assert float(total) == pytest.approx(gan_weight * math.log(2.0) + l1_weight * 0.5, abs=1e-5)
    # The unweighted terms are still reported, so the ablations' logs stay comparable.
    assert (float(gan), float(l1)) == pytest.approx((math.log(2.0), 0.5), abs=1e-6)


def test_generator_loss_default_l1_weight_is_100():
    generated = tf.zeros([1, 2, 2, 1])
    target = tf.fill([1, 2, 2, 1], 0.5)
    total, gan, l1 = losses.generator_loss(tf.zeros([1, 1, 1, 1]), generated, target)
    assert float(l1) == pytest.approx(0.5, abs=1e-6)
    assert float(total) == pytest.approx(math.log(2.0) + 100.0 * 0.5, abs=1e-5)


def test_generator_loss_l1_is_zero_for_a_perfect_output():
    images = tf.random.stateless_uniform([2, 4, 4, 3], seed=[0, 0], minval=-1, maxval=1)
    total, gan, l1 = losses.generator_loss(tf.constant(FAKE_LOGITS), images, images)
    assert float(l1) == 0.0
    assert float(total) == pytest.approx(float(gan), abs=1e-6)


def test_discriminator_loss_is_half_the_sum_of_real_and_fake():
    expected_real = numpy_cross_entropy(1.0, REAL_LOGITS)
    expected_fake = numpy_cross_entropy(0.0, FAKE_LOGITS)
    total, real, fake = losses.discriminator_loss(tf.constant(REAL_LOGITS),
                                                  tf.constant(FAKE_LOGITS))
    assert float(real) == pytest.approx(expected_real, abs=1e-6)
    assert float(fake) == pytest.approx(expected_fake, abs=1e-6)
    assert float(total) == pytest.approx(0.5 * (expected_real + expected_fake), abs=1e-6)


def test_discriminator_loss_is_small_when_it_is_right_and_large_when_wrong():
    confident = tf.fill([1, 3, 3, 1], 10.0)
    right, _, _ = losses.discriminator_loss(confident, -confident)
    wrong, _, _ = losses.discriminator_loss(-confident, confident)
    assert float(right) == pytest.approx(math.log(1 + math.exp(-10.0)), abs=1e-6)
    assert float(wrong) == pytest.approx(10.0 + math.log(1 + math.exp(-10.0)), abs=1e-5)


def test_losses_are_differentiable_scalars():
    logits = tf.Variable(FAKE_LOGITS)
    with tf.GradientTape() as tape:
        total, _, _ = losses.discriminator_loss(tf.constant(REAL_LOGITS), logits)
    assert total.shape == ()
    grad = tape.gradient(total, logits).numpy()
    # d/dz of 0.5 * mean(softplus(z)) over 4 logits is 0.5 * sigmoid(z) / 4.
    np.testing.assert_allclose(grad, 0.5 * (1 / (1 + np.exp(-FAKE_LOGITS))) / 4, atol=1e-6)
