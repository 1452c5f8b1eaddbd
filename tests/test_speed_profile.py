"""The speed profile (`benchmark --sections=profile`): FLOPs of every convolution pass from the
step's graph, kernel time split where kernels overlap, and rows that add up to the step."""

import re

import pytest
import tensorflow as tf

from p2p_tf.experiments import benchmark_report, speed_profile
from p2p_tf.nets import convolution_passes
from p2p_tf.training.trainer import Trainer

from conftest import trainer_config


def test_overlapping_kernels_share_their_time():
    shares, busy = speed_profile.split_overlaps(
        [(0.0, 2.0, 'a'), (1.0, 3.0, 'b'), (5.0, 6.0, 'a'), (5.0, 6.0, 'a')])
    # 0-1 a alone, 1-2 a and b, 2-3 b alone, 5-6 two a kernels: 4 s busy in all.
    assert busy == pytest.approx(4.0)
    assert shares['a'] == pytest.approx(1.0 + 0.5 + 1.0) and shares['b'] == pytest.approx(1.5)


def conv_passes(name, size):
    """(forward function of (x, kernel, stride), input, kernel, FLOPs of each pass by hand)."""
    image = tf.random.uniform([2, size, size, 5])
    if 'transposed' in name:
        kernel = tf.Variable(tf.random.uniform([4, 4, 3, 5]))  # 5 -> 3 channels, size x 2.
        forward = (convolution_passes.conv2d_transpose if name.startswith('ours') else
                   lambda x, k, s: tf.nn.conv2d_transpose(x, k, [2, 2 * size, 2 * size, 3], s,
                                                          'SAME'))
        return forward, image, kernel, 2 * 2 * size * size * 4 * 4 * 5 * 3
    kernel = tf.Variable(tf.random.uniform([4, 4, 5, 3]))  # 5 -> 3 channels, size / 2.
    forward = ((lambda x, k, s: convolution_passes.conv2d(x, k, s, 'SAME'))
               if name.startswith('ours') else (lambda x, k, s: tf.nn.conv2d(x, k, s, 'SAME')))
    return forward, image, kernel, 2 * 2 * (size // 2) ** 2 * 4 * 4 * 5 * 3


@pytest.mark.parametrize('name, size, weight_gradient_form', [
    ('keras conv', 32, 'Conv2DBackpropFilter'), ('keras transposed', 8, 'Conv2DBackpropFilter'),
    # Ours with matmul weight gradients: patches and a product for an output of 8x8 or an
    # input of 9x9 positions, a forward convolution from 16x16 positions on.
    ('ours conv', 16, 'Einsum'), ('ours transposed', 9, 'Einsum'),
    ('ours conv', 32, 'Conv2D'), ('ours transposed', 16, 'Conv2D')])
def test_every_pass_of_a_convolution_has_its_flops(monkeypatch, name, size,
                                                   weight_gradient_form):
    """2 x kernel weights x positions of the small side, for the forward pass and both
    gradients, of a conv and a transposed conv, of Keras' ops and of ours, each pass found as
    such and attributed to the layer's kernel."""
    monkeypatch.setattr(convolution_passes, 'onednn_kernels', lambda: False)
    forward, image, kernel, flops = conv_passes(name, size)

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(forward(x, kernel, 2))
        return tape.gradient(loss, [x, kernel])

    ops = speed_profile.graph_ops(step.get_concrete_function(image))
    attributed, _ = speed_profile.convolution_rows(ops)
    calls = {op_name: row for op_name, row in attributed.items()
             if row[3] and not op_name.startswith(speed_profile.FUSED_PREFIX)}
    # Forward is told from the input gradient by the network's name scope, absent here.
    assert sorted(kind for _, kind, _, _ in calls.values()) == [
        'input_gradient', 'input_gradient', 'weight_gradient']
    assert {call_flops for _, _, call_flops, _ in calls.values()} == {flops}
    assert len({key for key, _, _, _ in calls.values()}) == 1
    weight_gradient = next(ops[op_name] for op_name, row in calls.items()
                           if row[1] == 'weight_gradient')
    assert weight_gradient.type == weight_gradient_form


def label_flops(label):
    """FLOPs of one call from a row label's first layer: 'G conv 4x4/2 3->8 to 16x16'."""
    kind, kh, kw, stride, c_in, c_out, height, width = re.match(
        r'[GD] (conv|transposed conv) (\d+)x(\d+)/(\d+) (\d+)->(\d+) to (\d+)x(\d+)',
        label).groups()
    positions = int(height) * int(width)
    if kind == 'transposed conv':
        positions //= int(stride) ** 2  # The input's positions.
    return 2 * positions * int(kh) * int(kw) * int(c_in) * int(c_out)


@pytest.mark.parametrize('passes', ['off', 'on'], ids=['tensorflow-passes', 'rewritten-passes'])
def test_the_profile_of_a_tiny_step_covers_every_pass_and_adds_up(passes):
    # 64x64 and 32 filters: a step long enough that the profiler's own cost per kernel and
    # the noise of a shared machine are a small part of it (a 32x32 step of 8 filters is
    # mostly those). Both pass settings off (TensorFlow's kernels) or on (matmul weight
    # gradients, weight-stationary and flipped transposed passes, the narrow weight gradient).
    config = trainer_config(matmul_weight_gradients=passes, fast_transposed_passes=passes,
                            image_size=64, load_size=64, generator_filters=32,
                            discriminator_filters=32)
    trainer = Trainer(config, 10)
    inputs, targets = (tf.random.uniform([1, 64, 64, 3], -1, 1, seed=seed) for seed in (1, 2))
    peak = speed_profile.matmul_peak(sizes=(512, 1024), repeats=2)
    # The shares are timings on a shared machine: the step is measured again (up to five
    # times) until the rows and the untraced step agree within 10%. Beside a second test
    # process (CI) the profiler's own cost made it 11-13%, so the check is 25%: it still
    # fails for double-counted or missing kernels.
    for _ in range(5):
        profile = speed_profile.with_peak(
            speed_profile.profile_step(trainer, inputs, targets, steps=4, windows=9),
            peak['gflops'])
        if abs(profile['accounted_to_measured'] - 1) <= 0.1:
            break
    assert abs(profile['accounted_to_measured'] - 1) <= 0.25, profile['accounted_to_measured']
    # Calls per step, averaged over the traced steps (rounded: the tracer may drop an event).
    calls = {name: round(sum(row['calls'] for row in profile['rows'] if row['pass'] == name))
             for name in speed_profile.PASSES}
    # G: 6 convs and 6 transposed convs; D (70x70 PatchGAN): 5 convs, on the real and the
    # generated pair. Input gradients: not for G's first layer; D's first only for G's update
    # through the generated pair, D's others for D's two pairs and G's one.
    assert calls == {'forward': 12 + 2 * 5, 'weight_gradient': 12 + 2 * 5,
                     'input_gradient': 11 + 1 + 3 * 4}
    for row in profile['rows']:
        assert row['gflop'] * 1e9 == pytest.approx(label_flops(row['layer']) * row['calls'],
                                                   rel=0.1)
        assert row['seconds'] > 0 and 0 < row['share_of_step'] < 1
    assert profile['gflop_per_step'] == pytest.approx(sum(r['gflop'] for r in profile['rows']))
    assert 0 < profile['fraction_of_peak'] < 1
    assert set(profile['other']) >= {speed_profile.IDLE_ROW, 'Adam update', 'BatchNorm'}
    lines = benchmark_report.profile_table(dict(peak=peak, fast=profile, peak_rss_mb=1.0))
    assert lines[0].startswith('float32 matmul peak') and len(lines) == (
        3 + 1 + len(profile['rows']) + len(profile['other']))


def test_a_transposed_conv_on_blocks_is_labelled_and_counted_as_tensorflows():
    """The forward pass of a transposed conv on 2x2 blocks (256 input channels, a 4x4 map) in
    G's scope: one call with the FLOPs and label of TensorFlow's op, and the same row key as
    its weight gradient."""
    kernel = tf.Variable(tf.random.uniform([4, 4, 3, 256]))
    image = tf.random.uniform([1, 4, 4, 256])

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            with tf.name_scope('unet_generator'):
                outputs = convolution_passes.conv2d_transpose(x, kernel, 2,
                                                              fast_transposed_passes=True)
            loss = tf.reduce_sum(outputs)
        return tape.gradient(loss, [x, kernel])

    attributed, labels = speed_profile.convolution_rows(
        speed_profile.graph_ops(step.get_concrete_function(image)))
    calls = [row for name, row in attributed.items()
             if row[3] and convolution_passes.BLOCKS_SCOPE in name]
    assert [kind for _, kind, _, _ in calls] == ['forward']
    (key, _, flops, _), = calls
    assert flops == 2 * 4 * 4 * 16 * 3 * 256
    assert labels[key] == 'G transposed conv 4x4/2 256->3 to 8x8'
    weight_gradient_keys = {row[0] for row in attributed.values() if row[1] == 'weight_gradient'}
    assert weight_gradient_keys == {key}
