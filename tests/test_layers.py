"""Convolutions with matmul kernel gradients: the same outputs and gradients as Keras' layers."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from p2p_tf.nets import layers, models


def gradients(layer, inputs, output_gradient):
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        outputs = layer(inputs)
        loss = tf.reduce_sum(outputs * output_gradient)
    input_gradient, kernel_gradient = tape.gradient(loss, [inputs, layer.kernel])
    return outputs, input_gradient, kernel_gradient


def twin_layers(keras_class, our_class, **options):
    """A Keras layer and ours with the same kernel."""
    theirs, ours = keras_class(**options), our_class(**options)
    return theirs, ours


@pytest.mark.parametrize('kernel_size, strides, padding, shape', [
    (4, 2, 'same', (2, 16, 12, 3)),
    (4, 1, 'valid', (1, 10, 10, 5)),
    (1, 1, 'same', (2, 6, 6, 4)),
    (4, 2, 'same', (1, 2, 2, 8)),  # The U-Net's innermost layer: a 2x2 map.
])
@pytest.mark.parametrize('in_function', [False, True], ids=['eager', 'tf.function'])
def test_conv2d_matches_keras(kernel_size, strides, padding, shape, in_function):
    options = dict(filters=6, kernel_size=kernel_size, strides=strides, padding=padding,
                   use_bias=True)
    theirs, ours = twin_layers(keras.layers.Conv2D, layers.Conv2D, **options)
    inputs = tf.random.normal(shape, seed=1)
    theirs.build(shape), ours.build(shape)
    ours.set_weights([w + 0.1 * np.float32(i) for i, w in enumerate(theirs.get_weights())])
    theirs.set_weights(ours.get_weights())
    output_gradient = tf.random.normal(theirs.compute_output_shape(shape), seed=2)
    run = tf.function(gradients) if in_function else gradients
    for expected, actual in zip(run(theirs, inputs, output_gradient),
                                run(ours, inputs, output_gradient)):
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('shape', [(2, 4, 6, 5), (1, 1, 1, 8), (1, 8, 8, 3)])
@pytest.mark.parametrize('in_function', [False, True], ids=['eager', 'tf.function'])
def test_conv2d_transpose_matches_keras(shape, in_function):
    options = dict(filters=4, kernel_size=4, strides=2, padding='same', use_bias=True,
                   activation='tanh')
    theirs, ours = twin_layers(keras.layers.Conv2DTranspose, layers.Conv2DTranspose, **options)
    inputs = tf.random.normal(shape, seed=3)
    theirs.build(shape), ours.build(shape)
    ours.set_weights(theirs.get_weights())
    output_gradient = tf.random.normal([shape[0], 2 * shape[1], 2 * shape[2], 4], seed=4)
    run = tf.function(gradients) if in_function else gradients
    results = [run(layer, inputs, output_gradient) for layer in (theirs, ours)]
    assert results[1][0].shape == (shape[0], 2 * shape[1], 2 * shape[2], 4)
    for expected, actual in zip(*results):
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5)


def test_switching_matmul_gradients_off_gives_keras_own_layers_results():
    ours = layers.Conv2D(3, 4, strides=2, padding='same', matmul_weight_gradients=False)
    assert layers.Conv2D.from_config(ours.get_config()).matmul_weight_gradients is False
    inputs = tf.random.normal([1, 8, 8, 2])
    outputs, _, kernel_gradient = gradients(ours, inputs, tf.ones([1, 4, 4, 3]))
    assert outputs.shape == (1, 4, 4, 3) and kernel_gradient.shape == (4, 4, 2, 3)


def test_networks_get_the_same_gradients_either_way():
    inputs = tf.random.uniform([1, 32, 32, 3], -1, 1, seed=5)
    targets = tf.random.uniform([1, 32, 32, 3], -1, 1, seed=6)
    results = []
    for matmul in (False, True):
        keras.utils.set_random_seed(0)
        generator = models.unet_generator(5, base_filters=4, dropout_rate=0.0,
                                          matmul_weight_gradients=matmul)
        discriminator = models.patchgan_discriminator(2, base_filters=4,
                                                      matmul_weight_gradients=matmul)
        with tf.GradientTape() as tape:
            generated = generator(inputs, training=True)
            loss = (tf.reduce_mean(discriminator([inputs, generated], training=True))
                    + tf.reduce_mean(tf.abs(generated - targets)))
        variables = generator.trainable_variables + discriminator.trainable_variables
        results.append(tape.gradient(loss, variables))
    for keras_gradient, matmul_gradient in zip(*results):
        np.testing.assert_allclose(matmul_gradient, keras_gradient, rtol=1e-4, atol=1e-6)
