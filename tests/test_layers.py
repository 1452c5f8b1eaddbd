"""Convolutions whose passes take other forms (matmul kernel gradients, weight-stationary and
flipped transposed passes): the same outputs and gradients as Keras' layers."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from p2p_tf.experiments import speed_profile
from p2p_tf.nets import convolution_passes, layers, models

# (matmul_weight_gradients, fast_transposed_passes): each setting alone and both.
PASS_SETTINGS = [(True, False), (False, True), (True, True)]
PASS_IDS = ['matmul-weights', 'fast-transposed', 'both']


@pytest.fixture(autouse=True)
def products_on_every_cpu(monkeypatch):
    """The forms under test on every machine: on one where TensorFlow runs oneDNN's kernels
    the narrowest layers' weight gradients would otherwise stay TensorFlow's."""
    monkeypatch.setattr(convolution_passes, 'onednn_kernels', lambda: False)


def gradients(layer, inputs, output_gradient):
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        outputs = layer(inputs)
        loss = tf.reduce_sum(outputs * output_gradient)
    input_gradient, kernel_gradient = tape.gradient(loss, [inputs, layer.kernel])
    return outputs, input_gradient, kernel_gradient


def twin_layers(keras_class, our_class, settings, **options):
    """A Keras layer and ours with the same kernel."""
    matmul, fast = settings
    theirs = keras_class(**options)
    ours = our_class(matmul_weight_gradients=matmul, fast_transposed_passes=fast, **options)
    return theirs, ours


def scopes_traced(layer, inputs, output_gradient):
    """The rewritten-pass name scopes in the graph of the layer's gradients."""
    graph = tf.function(gradients).get_concrete_function(layer, inputs, output_gradient).graph
    names = ' '.join(op.name for op in graph.get_operations())
    return {scope for scope in (convolution_passes.WEIGHT_STATIONARY_SCOPE,
                                convolution_passes.FLIPPED_CONV_SCOPE,
                                convolution_passes.BLOCKS_SCOPE) if scope in names}


@pytest.mark.parametrize('kernel_size, strides, padding, shape, filters, rewritten', [
    (4, 2, 'same', (2, 16, 12, 3), 6, None),
    # The PatchGAN's stride-1 layers: the input gradient as a flipped forward conv, the
    # kernel gradient of few outputs by rows (6 <= NARROW_OUTPUT_CHANNELS) and of more (12).
    (4, 1, 'valid', (1, 10, 10, 5), 6, convolution_passes.FLIPPED_CONV_SCOPE),
    (4, 1, 'valid', (2, 9, 7, 3), 12, convolution_passes.FLIPPED_CONV_SCOPE),
    (1, 1, 'same', (2, 6, 6, 4), 6, None),
    # The U-Net's innermost layer, a 2x2 map, and a wide layer on a small rectangular map: the
    # input gradient weight-stationary (a kernel of more than 4x the values of the map).
    (4, 2, 'same', (1, 2, 2, 8), 6, convolution_passes.WEIGHT_STATIONARY_SCOPE),
    (4, 2, 'same', (2, 4, 6, 16), 32, convolution_passes.WEIGHT_STATIONARY_SCOPE),
    # 256 outputs on larger maps (a kernel of at most 4x the values of the output gradient):
    # the input gradient on 2x2 blocks, also for odd sizes.
    (4, 2, 'same', (1, 8, 8, 3), 256, convolution_passes.BLOCKS_SCOPE),
    (4, 2, 'same', (2, 9, 7, 2), 256, convolution_passes.BLOCKS_SCOPE),
])
@pytest.mark.parametrize('settings', PASS_SETTINGS, ids=PASS_IDS)
@pytest.mark.parametrize('in_function', [False, True], ids=['eager', 'tf.function'])
def test_conv2d_matches_keras(kernel_size, strides, padding, shape, filters, rewritten,
                              settings, in_function):
    options = dict(filters=filters, kernel_size=kernel_size, strides=strides, padding=padding,
                   use_bias=True)
    theirs, ours = twin_layers(keras.layers.Conv2D, layers.Conv2D, settings, **options)
    inputs = tf.random.normal(shape, seed=1)
    theirs.build(shape), ours.build(shape)
    ours.set_weights([w + 0.1 * np.float32(i) for i, w in enumerate(theirs.get_weights())])
    theirs.set_weights(ours.get_weights())
    output_gradient = tf.random.normal(theirs.compute_output_shape(shape), seed=2)
    run = tf.function(gradients) if in_function else gradients
    for expected, actual in zip(run(theirs, inputs, output_gradient),
                                run(ours, inputs, output_gradient)):
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5)
    expected_scopes = {rewritten} if rewritten and settings[1] else set()
    assert scopes_traced(ours, inputs, output_gradient) == expected_scopes


@pytest.mark.parametrize('shape, rewritten', [
    ((2, 4, 6, 5), None), ((1, 8, 8, 3), None),
    # Small maps: the forward pass weight-stationary (a kernel of more than 4x the values).
    ((1, 1, 1, 8), convolution_passes.WEIGHT_STATIONARY_SCOPE),
    ((2, 2, 3, 16), convolution_passes.WEIGHT_STATIONARY_SCOPE),
    # Larger maps of 256 channels: on 2x2 blocks.
    ((1, 4, 4, 256), convolution_passes.BLOCKS_SCOPE),
    ((2, 3, 5, 256), convolution_passes.BLOCKS_SCOPE)])
@pytest.mark.parametrize('settings', PASS_SETTINGS, ids=PASS_IDS)
@pytest.mark.parametrize('in_function', [False, True], ids=['eager', 'tf.function'])
def test_conv2d_transpose_matches_keras(shape, rewritten, settings, in_function):
    options = dict(filters=4, kernel_size=4, strides=2, padding='same', use_bias=True,
                   activation='tanh')
    theirs, ours = twin_layers(keras.layers.Conv2DTranspose, layers.Conv2DTranspose, settings,
                               **options)
    inputs = tf.random.normal(shape, seed=3)
    theirs.build(shape), ours.build(shape)
    ours.set_weights(theirs.get_weights())
    output_gradient = tf.random.normal([shape[0], 2 * shape[1], 2 * shape[2], 4], seed=4)
    run = tf.function(gradients) if in_function else gradients
    results = [run(layer, inputs, output_gradient) for layer in (theirs, ours)]
    assert results[1][0].shape == (shape[0], 2 * shape[1], 2 * shape[2], 4)
    for expected, actual in zip(*results):
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5)
    expected_scopes = {rewritten} if rewritten and settings[1] else set()
    assert scopes_traced(ours, inputs, output_gradient) == expected_scopes


@pytest.mark.parametrize('size, small', [(1, True), (8, False)])
def test_maps_of_unknown_size_pick_the_form_at_run_time(size, small):
    """An export traces maps of unknown size: both forms in the graph, the weight-stationary
    one run on small maps (kernel 4x4x4x8 = 512 values > 4 x 1x1x8, not > 4 x 8x8x8), the
    same values either way."""
    theirs, ours = (cls(4, 4, strides=2, padding='same')
                    for cls in (keras.layers.Conv2DTranspose, layers.Conv2DTranspose))
    inputs = tf.random.normal([1, size, size, 8], seed=7)
    theirs(inputs)
    ours.fast_transposed_passes = True
    ours(inputs)
    ours.set_weights(theirs.get_weights())
    traced = tf.function(ours, input_signature=[tf.TensorSpec([None, None, None, 8])])
    ops = speed_profile.graph_ops(traced.get_concrete_function())  # With the cond's branches.
    assert any(convolution_passes.WEIGHT_STATIONARY_SCOPE in name for name in ops)
    assert 'Conv2DBackpropInput' in {op.type for op in ops.values()}
    np.testing.assert_allclose(traced(inputs), theirs(inputs), rtol=1e-5, atol=1e-5)
    # The same rule on static shapes: the weight-stationary form holds the only MatMul.
    run_graph = tf.function(ours).get_concrete_function(inputs).graph
    assert ('MatMul' in {op.type for op in run_graph.get_operations()}) == small


@pytest.mark.parametrize('transposed, size, channels, filters, tensorflows', [
    (False, 8, 3, 16, True), (False, 8, 6, 16, True), (False, 8, 16, 1, True),
    (False, 8, 16, 16, False), (False, 60, 16, 16, True), (False, 58, 16, 16, False),
    (True, 4, 16, 3, True), (True, 4, 16, 16, False), (True, 30, 16, 16, True)],
    ids=['3-inputs', '6-inputs', '1-output', 'wide-on-4x4', 'wide-on-30x30', 'wide-on-29x29',
         'transposed-3-outputs', 'transposed-from-4x4', 'transposed-from-30x30'])
def test_with_onednn_narrow_layers_and_large_maps_keep_tensorflows_weight_gradient(
        monkeypatch, transposed, size, channels, filters, tensorflows):
    """The kernel gradient sums over the output positions of a conv (30x30 and more keep
    TensorFlow's), over the input positions of a transposed conv."""
    monkeypatch.setattr(convolution_passes, 'onednn_kernels', lambda: True)
    stride, padding = (1, 'valid') if filters == 1 else (2, 'same')
    options = dict(filters=filters, kernel_size=4, strides=stride, padding=padding)
    keras_class, our_class = ((keras.layers.Conv2DTranspose, layers.Conv2DTranspose)
                              if transposed else (keras.layers.Conv2D, layers.Conv2D))
    theirs, ours = twin_layers(keras_class, our_class, (True, True), **options)
    inputs = tf.random.normal([1, size, size, channels], seed=3)
    theirs(inputs), ours(inputs)
    ours.set_weights(theirs.get_weights())
    output_gradient = tf.random.normal(theirs.compute_output_shape(inputs.shape), seed=4)
    graph = tf.function(gradients).get_concrete_function(ours, inputs, output_gradient).graph
    types = {op.type for op in graph.get_operations()}
    assert ('Conv2DBackpropFilter' in types) == tensorflows
    assert ('Einsum' in types) == (not tensorflows)
    for expected, actual in zip(gradients(theirs, inputs, output_gradient),
                                gradients(ours, inputs, output_gradient)):
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize('transposed, shape, stride, padding, filters, as_conv', [
    (False, (2, 32, 34, 3), 2, 'same', 6, True), (False, (1, 33, 31, 3), 2, 'same', 6, True),
    (False, (1, 20, 19, 4), 1, 'valid', 12, True), (False, (1, 30, 30, 3), 2, 'same', 6, False),
    (True, (1, 16, 16, 8), 2, 'same', 4, True), (True, (2, 15, 17, 8), 2, 'same', 4, False)],
    ids=['16x17', 'odd-sizes', 'stride-1', '15x15', 'transposed-from-16x16',
         'transposed-from-15x17'])
def test_kernel_gradients_summed_over_many_positions_are_a_forward_convolution(
        transposed, shape, stride, padding, filters, as_conv):
    """From 16x16 positions (a conv's output, a transposed conv's input) on: the kernel
    gradient as one forward convolution, equal to Keras' (padding, cropping and
    space_to_depth of the stride-2 layers included)."""
    options = dict(filters=filters, kernel_size=4, strides=stride, padding=padding)
    keras_class, our_class = ((keras.layers.Conv2DTranspose, layers.Conv2DTranspose)
                              if transposed else (keras.layers.Conv2D, layers.Conv2D))
    theirs, ours = twin_layers(keras_class, our_class, (True, True), **options)
    inputs = tf.random.normal(shape, seed=5)
    theirs(inputs), ours(inputs)
    ours.set_weights(theirs.get_weights())
    output_gradient = tf.random.normal(theirs.compute_output_shape(inputs.shape), seed=6)
    graph = tf.function(gradients).get_concrete_function(ours, inputs, output_gradient).graph
    names = ' '.join(op.name for op in graph.get_operations())
    assert (convolution_passes.WEIGHT_GRADIENT_AS_CONV_SCOPE in names) == as_conv
    assert ('Einsum' in {op.type for op in graph.get_operations()}) == (not as_conv)
    for expected, actual in zip(gradients(theirs, inputs, output_gradient),
                                gradients(ours, inputs, output_gradient)):
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-4)


def test_switching_matmul_gradients_off_gives_keras_own_layers_results():
    ours = layers.Conv2D(3, 4, strides=2, padding='same', matmul_weight_gradients=False,
                         fast_transposed_passes=True)
    restored = layers.Conv2D.from_config(ours.get_config())
    assert restored.matmul_weight_gradients is False and restored.fast_transposed_passes is True
    inputs = tf.random.normal([1, 8, 8, 2])
    outputs, _, kernel_gradient = gradients(ours, inputs, tf.ones([1, 4, 4, 3]))
    assert outputs.shape == (1, 4, 4, 3) and kernel_gradient.shape == (4, 4, 2, 3)


def test_networks_get_the_same_gradients_either_way():
    inputs = tf.random.uniform([1, 32, 32, 3], -1, 1, seed=5)
    targets = tf.random.uniform([1, 32, 32, 3], -1, 1, seed=6)
    results = []
    for matmul, fast in [(False, False)] + PASS_SETTINGS:
        keras.utils.set_random_seed(0)
        # Keras' own layers first; then the fast passes, with the fused BatchNorm.
        passes = dict(matmul_weight_gradients=matmul, fast_transposed_passes=fast,
                      fused_batch_norm=matmul or fast)
        generator = models.unet_generator(5, base_filters=4, dropout_rate=0.0, **passes)
        discriminator = models.patchgan_discriminator(2, base_filters=4, **passes)
        with tf.GradientTape() as tape:
            generated = generator(inputs, training=True)
            loss = (tf.reduce_mean(discriminator([inputs, generated], training=True))
                    + tf.reduce_mean(tf.abs(generated - targets)))
        variables = generator.trainable_variables + discriminator.trainable_variables
        results.append(tape.gradient(loss, variables))
    for other in results[1:]:
        for keras_gradient, gradient in zip(results[0], other):
            np.testing.assert_allclose(gradient, keras_gradient, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize('policy', ['float32', 'mixed_bfloat16'])
@pytest.mark.parametrize('shape', [(2, 8, 6, 5), (1, 2, 2, 3), (1, 1, 1, 4)],
                         ids=['2x8x6', '2x2', '1x1'])
@pytest.mark.parametrize('in_function', [False, True], ids=['eager', 'tf.function'])
def test_fused_batch_norm_matches_keras(policy, shape, in_function):
    """Outputs, gradients and both moving averages (the biased batch variance, also for a
    single value per channel) after two training-mode calls, then an inference call."""
    inputs = tf.random.normal(shape, seed=1) * 3 + 1
    output_gradient = tf.random.normal(shape, seed=2)
    theirs = keras.layers.BatchNormalization(
        dtype=policy, gamma_initializer=keras.initializers.RandomNormal(1.0, 0.02, seed=3))
    ours = layers.FusedBatchNormalization(dtype=policy)
    theirs.build(shape), ours.build(shape)
    ours.set_weights(theirs.get_weights())

    def step(layer):
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            outputs = layer(inputs, training=True)
            loss = tf.reduce_sum(tf.cast(outputs, tf.float32) * output_gradient)
        return [outputs, *tape.gradient(loss, [inputs] + layer.trainable_variables)]

    run = tf.function(step) if in_function else step
    tolerance = 1e-4 if policy == 'float32' else 3e-2  # bfloat16 outputs: 8 bits of mantissa.
    for _ in range(2):
        for expected, actual in zip(run(theirs), run(ours)):
            assert actual.dtype == expected.dtype
            np.testing.assert_allclose(tf.cast(actual, tf.float32),
                                       tf.cast(expected, tf.float32), rtol=tolerance,
                                       atol=tolerance)
    for expected, actual in zip(theirs.non_trainable_variables, ours.non_trainable_variables):
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)
    assert ours.fuses(inputs, True, None) and not ours.fuses(inputs, False, None)
    np.testing.assert_allclose(tf.cast(ours(inputs, training=False), tf.float32),
                               tf.cast(theirs(inputs, training=False), tf.float32),
                               rtol=tolerance, atol=tolerance)


def test_networks_use_the_fused_batch_norm_only_when_asked_and_not_synchronized():
    def norm_classes(**options):
        generator = models.unet_generator(5, base_filters=4, **options)
        return {type(layer) for block in generator.layers for layer in getattr(block, 'layers', [])
                if isinstance(layer, keras.layers.BatchNormalization)}
    assert norm_classes() == {keras.layers.BatchNormalization}
    assert norm_classes(fused_batch_norm=True) == {layers.FusedBatchNormalization}
    assert norm_classes(fused_batch_norm=True, synchronized_batch_norm=True) == {
        keras.layers.BatchNormalization}
