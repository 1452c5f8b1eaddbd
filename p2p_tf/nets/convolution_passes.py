"""How each pass of a convolution is computed in training: the same arithmetic as TensorFlow's
kernels, in forms that run faster on the CPUs we measure on (docs/speed.md#profile).

A convolution has three passes: the forward one, the input gradient and the weight gradient.
A transposed convolution is the input gradient of a convolution, so its forward pass and a
convolution's input gradient are the same computation ("the transposed passes"). Two settings
pick the forms (p2p_tf/training/performance.py chooses them for the hardware):

- `matmul_weight_gradients`: the kernel gradient as patches(x)^T . dy, an image-patch
  extraction and one matrix product, instead of Conv2DBackpropFilter, which is slowest on the
  small, wide layers near the U-Net's bottleneck (for a stride-1 layer with few outputs, the
  windows along the width only and one product per kernel row). On maps of 16x16 positions
  and more, whose patch matrix is large, the kernel gradient is instead a forward
  convolution: the input, padded and for stride 2 rearranged by space_to_depth so that the
  convolution has stride 1, with channels and batch swapped, convolved with the output
  gradient as its kernel; TensorFlow's forward convolution never builds the patch matrix.
  Where TensorFlow runs oneDNN's kernels, their weight gradient stays for the narrowest layers
  and the large maps, where it is faster.
- `fast_transposed_passes`:
  - on small maps (a kernel with more weights than SMALL_MAP_RATIO times the values of the
    map it is applied to: the U-Net's 1x1 to 16x16 maps of 512-1024 channels), a 4x4 stride-2
    transposed pass is one weight-stationary matrix product, kernel . x^T, whose large operand
    (the kernel) is read in the order it is stored, and an overlap-add of the 16 taps by
    output phase. TensorFlow's CPU kernel and a product read the other way round both
    reorder the kernel first, which costs more than the arithmetic on these maps (about 40 ms
    for a 1024 -> 512 kernel on a 2x2 map, against 9 ms this way);
  - on larger maps of 256 channels or more (the U-Net's 32x32 and 64x64 decoder inputs, the
    input gradients of the 128 -> 256 layers), a 4x4 stride-2 transposed pass runs on 2x2
    blocks (space_to_depth): there it is a stride-1 convolution's input gradient, which is a
    forward convolution with the kernel flipped, cropped back to the map (a 512 -> 128
    transposed layer on 32x32 measured 36.5 -> 33.1 ms alone; training steps timed in one
    process, 1.02x and 1.04x as fast with it). On maps of unknown size (the eval-mode
    SavedModel) TensorFlow's op stays: the kernel's rearrangement on every call ate the gain;
  - a stride-1 'VALID' convolution's input gradient (the PatchGAN's last two layers) is a
    forward convolution of the zero-padded output gradient with the kernel flipped in space
    and its channels swapped, which runs faster on CPU than Conv2DBackpropInput.
  Anything else (other kernel sizes or strides) uses TensorFlow's own ops. On maps of unknown
  size (a SavedModel's translation of any size) a transposed convolution's forward pass
  holds both forms and picks by the same rule at run time.

The results equal TensorFlow's up to float rounding (tests/test_layers.py). The ops of each
rewritten pass are placed in a name scope (the *_SCOPE names below) so that
the speed profile attributes them to their layer (p2p_tf/experiments/speed_profile.py).
"""

import functools

import tensorflow as tf

# A transposed pass is computed weight-stationary when its kernel holds more than this many
# times the values of its input map. Measured on the 2-core CPU (256x256, batch 1): faster
# than TensorFlow's kernel for the U-Net's 1x1 to 16x16 maps (e.g. 76 -> 31 ms for
# 1024 -> 256 channels on 16x16), slower from 32x32 on (26 -> 43 ms for 512 -> 128), where
# the kernel is at most twice the map.
SMALL_MAP_RATIO = 4
# A stride-1 convolution with at most this many outputs gets narrow_weight_gradient: for the
# PatchGAN's 512 -> 1 layer at 30x30 it measured 10 ms against 29 ms with the full patches.
NARROW_OUTPUT_CHANNELS = 8
# Where TensorFlow runs oneDNN's kernels (by default on x86 CPUs with AVX-512 VNNI or newer),
# their weight gradient beats a matrix product whose patches or outputs are this narrow: the
# first layers of G and D (3 and 6 input channels) and D's 512 -> 1 layer measured 0.7, 2.3 and
# 2.3 ms per step there against 3.3, 4.5 and 6.7 as products (256x256, float32);
ONEDNN_NARROW_CHANNELS = 8
# and one that sums over this many positions or more (30x30: the PatchGAN's stride-1 layers and
# everything on larger maps), e.g. the 64 -> 128 layers at 64x64, 9.9 against 13.6 ms in
# bfloat16 and 14.0 against 19.0 in float32. On smaller maps the product stays far faster
# (G's 512 -> 512 layer on 8x8: 1.2 against 8.0 ms in bfloat16).
ONEDNN_MANY_POSITIONS = 30 * 30
# Without oneDNN, a kernel gradient that sums over at least this many positions per image is
# computed as a forward convolution (weight_gradient_as_conv). Measured alone on the AVX2 CPU
# (256x256, float32, ms as patches and product -> as a convolution): D's 256 -> 512 layer on
# 31x31 73 -> 35, the 64 -> 128 layers on 64x64 40 -> 18, G's 256 -> 64 transposed layer
# (summing over its 64x64 input) 49 -> 38, the 256 -> 512 layer on 16x16 19 -> 15; on 8x8
# maps the product stays faster (G's 512 -> 512 layer: 11 against 14).
CONV_WEIGHT_GRADIENT_POSITIONS = 16 * 16
WEIGHT_STATIONARY_SCOPE = 'weight_stationary_transposed_conv'
FLIPPED_CONV_SCOPE = 'input_gradient_as_conv'
NARROW_WEIGHT_GRADIENT_SCOPE = 'narrow_weight_gradient'
BLOCKS_SCOPE = 'transposed_pass_on_blocks'
# A 4x4 stride-2 transposed pass on a map of at least this many channels that is not
# weight-stationary is computed on space_to_depth blocks (transposed_pass_on_blocks).
BLOCKS_MIN_CHANNELS = 256
WEIGHT_GRADIENT_AS_CONV_SCOPE = 'weight_gradient_as_conv'


def patches(images, kernel_size, stride, padding):
    """[batch, H', W', kh * kw * C] windows of `images`, laid out as a conv kernel's
    [kh, kw, C] and placed as a conv with this stride and padding ('SAME'/'VALID') places them."""
    return tf.image.extract_patches(images, [1, kernel_size[0], kernel_size[1], 1],
                                    [1, stride, stride, 1], [1, 1, 1, 1], padding)


def fully_known(*tensors):
    return all(t.shape.is_fully_defined() for t in tensors)


def weight_stationary_applies(inputs, kernel, stride):
    """Whether the transposed pass of `kernel` ([4, 4, A, B]) on `inputs` ([b, H, W, B]) is
    computed as a weight-stationary product (see the module docstring)."""
    return (stride == 2 and tuple(kernel.shape[:2]) == (4, 4) and fully_known(inputs, kernel)
            and kernel.shape.num_elements() > SMALL_MAP_RATIO * inputs.shape.num_elements())


def overlap_add(taps, axis):
    """Sums the 4 taps of a 4x4 stride-2 'SAME' transposed convolution along one spatial axis
    into a map twice as long: `taps` holds them at axis 0 and the positions at `axis` (of the
    tensor without axis 0). Output 2m gets tap 1 of position m and tap 3 of m - 1; output
    2m + 1 gets tap 2 of m and tap 0 of m + 1."""
    tap0, tap1, tap2, tap3 = tf.unstack(taps, 4, axis=0)
    rank = len(tap0.shape)

    def shifted(tap, later):
        # tap[m - 1] (later) or tap[m + 1], zero beyond the ends.
        padding = [[0, 0]] * rank
        padding[axis] = [1, 0] if later else [0, 1]
        begin = [0] * rank
        begin[axis] = 0 if later else 1
        return tf.slice(tf.pad(tap, padding), begin, tf.shape(tap))

    even, odd = tap1 + shifted(tap3, later=True), tap2 + shifted(tap0, later=False)
    phases = tf.stack([even, odd], axis=axis + 1)
    shape = tf.shape(phases)
    return tf.reshape(phases, tf.concat([shape[:axis], [2 * shape[axis]], shape[axis + 2:]], 0))


def weight_stationary_transposed_conv(inputs, kernel):
    """tf.nn.conv2d_transpose(inputs, kernel, stride 2, 'SAME') for a 4x4 kernel [4, 4, A, B]
    and inputs [b, H, W, B] (B known) -> [b, 2H, 2W, A], as kernel . inputs^T and an
    overlap-add. The taps stay in the product's layout, channels first, so that only the
    output (a quarter of their size) is transposed."""
    with tf.name_scope(WEIGHT_STATIONARY_SCOPE):
        dynamic = tf.shape(inputs)
        batch, height, width = (inputs.shape[i] if inputs.shape[i] is not None else dynamic[i]
                                for i in range(3))
        channels, outputs = inputs.shape[3], kernel.shape[2]
        taps = tf.linalg.matmul(tf.reshape(kernel, [16 * outputs, channels]),
                                tf.reshape(inputs, [-1, channels]), transpose_b=True)
        taps = tf.reshape(taps, [4, 4, outputs, batch, height, width])
        rows_added = overlap_add(taps, axis=3)  # [4 (kw), A, b, 2H, W]
        return tf.transpose(overlap_add(rows_added, axis=3), [1, 2, 3, 0])


def narrow_weight_gradient(inputs, output_gradient, kernel_shape):
    """The kernel gradient of a stride-1 'VALID' convolution with few output channels (the
    PatchGAN's 1-channel logits layer): windows along the width only, then one product per
    kernel row over a slab of input rows. The full patch matrix would hold kh * kw copies of
    the input for a product with one column."""
    with tf.name_scope(NARROW_WEIGHT_GRADIENT_SCOPE):
        height, width = kernel_shape[:2]
        out_height, out_width = output_gradient.shape[1:3]
        rows = tf.image.extract_patches(inputs, [1, 1, width, 1], [1, 1, 1, 1], [1, 1, 1, 1],
                                        'VALID')  # [b, H, W', kw * C_in]
        per_row = [tf.einsum('bhwp,bhwo->po', rows[:, row:row + out_height, :out_width],
                             output_gradient) for row in range(height)]
        return tf.reshape(tf.stack(per_row), kernel_shape)


def windows_extent(size, kernel_size, output_size, stride, padding):
    """(rows before the map that `padding` adds, rows the windows span) along one axis of a
    convolution of a map of `size` rows into `output_size` rows: TensorFlow's 'SAME' puts the
    odd row of padding after the map."""
    extent = (output_size - 1) * stride + kernel_size
    return (max(extent - size, 0) // 2 if padding == 'SAME' else 0), extent


def stride_one_view(inputs, kernel_size, stride, padding, output_size):
    """`inputs` [b, H, W, C] as the input of a stride-1 'VALID' convolution with a kernel of
    kernel_size / stride taps that reads the same windows: padded as `padding` pads for this
    output size, cropped to the rows and columns the windows read and, for stride > 1, each
    stride x stride block moved into the channels (space_to_depth: channel (row, column, C))."""
    extents = [windows_extent(*axis, stride, padding)
               for axis in zip(inputs.shape[1:3], kernel_size, output_size)]
    padded = tf.pad(inputs, [[0, 0]] + [[before, max(extent - size - before, 0)]
                                        for size, (before, extent)
                                        in zip(inputs.shape[1:3], extents)] + [[0, 0]])
    view = padded[:, :extents[0][1], :extents[1][1]]
    return tf.nn.space_to_depth(view, stride) if stride > 1 else view


def weight_gradient_as_conv(inputs, output_gradient, kernel_shape, stride, padding):
    """The kernel gradient of a convolution (kernel [kh, kw, C, O], kh and kw multiples of the
    stride) as one forward convolution: sum over batch and positions of inputs' windows times
    output_gradient, i.e. the stride-1 view of the inputs with channels as the batch and the
    batch as the channel, convolved with output_gradient [b, H', W', O] as a [H', W', b, O]
    kernel. The result's taps, [stride * stride * C, kh / stride, kw / stride, O], are put
    back in the kernel's order."""
    with tf.name_scope(WEIGHT_GRADIENT_AS_CONV_SCOPE):
        height, width, channels, outputs = kernel_shape
        view = stride_one_view(inputs, (height, width), stride, padding,
                               output_gradient.shape[1:3])
        taps = tf.nn.conv2d(tf.transpose(view, [3, 1, 2, 0]),
                            tf.transpose(output_gradient, [1, 2, 0, 3]), 1, 'VALID')
        # Axes (block row, block column, C, tap row, tap column, O); kernel row is
        # stride * tap row + block row, and likewise for columns.
        taps = tf.reshape(taps, [stride, stride, channels, height // stride, width // stride,
                                 outputs])
        return tf.reshape(tf.transpose(taps, [3, 0, 4, 1, 2, 5]), kernel_shape)


def weight_gradient_as_conv_applies(inputs, output_gradient, kernel, stride, padding):
    """Whether a kernel gradient takes weight_gradient_as_conv's form (module docstring)."""
    height, width = kernel.shape[:2]
    return (not onednn_kernels() and fully_known(inputs, output_gradient, kernel)
            and height % stride == 0 and width % stride == 0 and padding in ('SAME', 'VALID')
            and output_gradient.shape[1] * output_gradient.shape[2]
            >= CONV_WEIGHT_GRADIENT_POSITIONS)


def transposed_pass_on_blocks(output_gradient, kernel, stride, input_size=None):
    """The input gradient of a 'SAME' convolution (kernel [kh, kw, C, O], kh and kw multiples
    of the stride), i.e. a transposed convolution of output_gradient [b, H', W', O] into input_size
    (default: stride x H' by stride x W', a transposed convolution's 'SAME' output), on
    stride x stride blocks: the stride-1 'VALID' convolution with
    kernel / stride taps over the blocks (stride_one_view) has its input gradient as a
    forward convolution with the flipped kernel, whose output, back from blocks
    (depth_to_space), is cropped to the input's rows and columns."""
    with tf.name_scope(BLOCKS_SCOPE):
        height, width, channels, outputs = kernel.shape
        taps_high, taps_wide = height // stride, width // stride
        on_blocks = tf.reshape(tf.transpose(
            tf.reshape(kernel, [taps_high, stride, taps_wide, stride, channels, outputs]),
            [0, 2, 1, 3, 4, 5]), [taps_high, taps_wide, stride * stride * channels, outputs])
        flipped = tf.transpose(tf.reverse(on_blocks, [0, 1]), [0, 1, 3, 2])
        padded = tf.pad(output_gradient, [[0, 0], [taps_high - 1, taps_high - 1],
                                          [taps_wide - 1, taps_wide - 1], [0, 0]])
        blocks = tf.nn.depth_to_space(tf.nn.conv2d(padded, flipped, 1, 'VALID'), stride)
        if input_size is None:
            input_size = [stride * d for d in output_gradient.shape[1:3]]
        begin = [windows_extent(*axis, stride, 'SAME')[0]
                 for axis in zip(input_size, (height, width), output_gradient.shape[1:3])]
        return tf.slice(blocks, [0, *begin, 0], [-1, *input_size, -1])


def on_blocks_applies(output_gradient, kernel, stride):
    """Whether a transposed pass (module docstring) is computed on blocks."""
    return (stride == 2 and tuple(kernel.shape[:2]) == (4, 4)
            and fully_known(output_gradient, kernel)
            and output_gradient.shape[3] >= BLOCKS_MIN_CHANNELS)


def transposed_conv_forward(inputs, kernel, output_shape, fast):
    """The forward pass of a 4x4 stride-2 'SAME' transposed convolution (kernel [4, 4, A, B])
    in the form `fast` picks: weight-stationary on small maps, decided from the static shapes,
    or for maps of unknown size (exports) at run time, with both forms in the graph."""
    if fast and weight_stationary_applies(inputs, kernel, 2):
        return weight_stationary_transposed_conv(inputs, kernel)
    if fast and on_blocks_applies(inputs, kernel, 2):
        return transposed_pass_on_blocks(inputs, kernel, 2)
    def tensorflows():
        return tf.nn.conv2d_transpose(inputs, kernel, output_shape, 2, 'SAME')
    if not (fast and tuple(kernel.shape[:2]) == (4, 4) and kernel.shape.is_fully_defined()
            and inputs.shape[3] is not None and not inputs.shape.is_fully_defined()):
        return tensorflows()
    small = kernel.shape.num_elements() > SMALL_MAP_RATIO * tf.size(inputs)
    return tf.cond(small, lambda: weight_stationary_transposed_conv(inputs, kernel),
                   tensorflows)


def flipped_conv_input_gradient(output_gradient, kernel):
    """The input gradient of a stride-1 'VALID' convolution, as a forward convolution."""
    with tf.name_scope(FLIPPED_CONV_SCOPE):
        height, width = kernel.shape[:2]
        flipped = tf.transpose(tf.reverse(kernel, [0, 1]), [0, 1, 3, 2])
        padded = tf.pad(output_gradient, [[0, 0], [height - 1, height - 1],
                                          [width - 1, width - 1], [0, 0]])
        return tf.nn.conv2d(padded, flipped, 1, 'VALID')


@functools.cache
def onednn_kernels():
    """Whether this process runs TensorFlow's oneDNN CPU kernels (TF_ENABLE_ONEDNN_OPTS, or
    TensorFlow's default for this CPU). TensorFlow has no public call for it."""
    try:
        from tensorflow.python.util import _pywrap_util_port
        return bool(_pywrap_util_port.IsMklEnabled())
    except (ImportError, AttributeError):
        return False


def tensorflows_weight_gradient_is_faster(kernel, summed_map):
    """Whether a kernel gradient is left to TensorFlow under matmul_weight_gradients: with
    oneDNN's kernels, for narrow layers and for those whose gradient sums over many positions
    of `summed_map` (a convolution's output gradient, a transposed convolution's input)."""
    if not onednn_kernels():
        return False
    if min(kernel.shape[2], kernel.shape[3]) <= ONEDNN_NARROW_CHANNELS:
        return True
    height, width = summed_map.shape[1:3]
    return height is not None and width is not None and height * width >= ONEDNN_MANY_POSITIONS


def narrow(inputs, kernel, stride, padding):
    """Whether a convolution's kernel gradient takes narrow_weight_gradient's form."""
    return (stride == 1 and padding == 'VALID' and fully_known(inputs, kernel)
            and kernel.shape[3] <= NARROW_OUTPUT_CHANNELS)


def conv2d_input_gradient(inputs, kernel, output_gradient, stride, padding, fast):
    if fast and stride == 1 and padding == 'VALID' and fully_known(kernel):
        return flipped_conv_input_gradient(output_gradient, kernel)
    if (fast and padding == 'SAME' and weight_stationary_applies(output_gradient, kernel, stride)
            and fully_known(inputs)
            and tuple(inputs.shape[1:3]) == tuple(2 * d for d in output_gradient.shape[1:3])):
        return weight_stationary_transposed_conv(output_gradient, kernel)
    if (fast and padding == 'SAME' and on_blocks_applies(output_gradient, kernel, stride)
            and fully_known(inputs)):
        return transposed_pass_on_blocks(output_gradient, kernel, stride, inputs.shape[1:3])
    return tf.raw_ops.Conv2DBackpropInput(
        input_sizes=tf.shape(inputs), filter=kernel, out_backprop=output_gradient,
        strides=[1, stride, stride, 1], padding=padding)


def conv2d_kernel_gradient(inputs, kernel, output_gradient, stride, padding,
                           matmul_weight_gradients):
    """The gradient of tf.nn.conv2d(inputs, kernel) with respect to the kernel, in the form
    matmul_weight_gradients picks (module docstring); for a transposed convolution, that of
    the convolution it transposes."""
    if (not matmul_weight_gradients
            or tensorflows_weight_gradient_is_faster(kernel, output_gradient)):
        return tf.raw_ops.Conv2DBackpropFilter(
            input=inputs, filter_sizes=tf.shape(kernel), out_backprop=output_gradient,
            strides=[1, stride, stride, 1], padding=padding)
    if narrow(inputs, kernel, stride, padding):
        return narrow_weight_gradient(inputs, output_gradient, kernel.shape)
    if weight_gradient_as_conv_applies(inputs, output_gradient, kernel, stride, padding):
        return weight_gradient_as_conv(inputs, output_gradient, kernel.shape, stride, padding)
    windows = patches(inputs, kernel.shape[:2], stride, padding)
    return tf.reshape(tf.einsum('bhwp,bhwo->po', windows, output_gradient), tf.shape(kernel))


def conv2d(inputs, kernel, stride, padding, matmul_weight_gradients=True,
           fast_transposed_passes=False):
    """tf.nn.conv2d (kernel [kh, kw, C_in, C_out]) with its gradients in the forms the two
    settings pick (module docstring)."""
    @tf.custom_gradient
    def convolve(inputs, kernel):
        def gradient(output_gradient):
            input_gradient = conv2d_input_gradient(inputs, kernel, output_gradient, stride,
                                                   padding, fast_transposed_passes)
            return input_gradient, conv2d_kernel_gradient(
                inputs, kernel, output_gradient, stride, padding, matmul_weight_gradients)
        return tf.nn.conv2d(inputs, kernel, stride, padding), gradient
    # A tensor, not the variable: custom_gradient would otherwise want variable gradients.
    return convolve(inputs, tf.convert_to_tensor(kernel))


def conv2d_transpose(inputs, kernel, stride, matmul_weight_gradients=True,
                     fast_transposed_passes=False):
    """tf.nn.conv2d_transpose with 'SAME' padding (kernel [kh, kw, C_out, C_in], output
    [batch, stride H, stride W, C_out]) with its passes in the forms the two settings pick."""
    @tf.custom_gradient
    def convolve(inputs, kernel):
        shape = tf.shape(inputs)
        output_shape = tf.stack([shape[0], stride * shape[1], stride * shape[2],
                                 kernel.shape[2]])

        def gradient(output_gradient):
            input_gradient = tf.nn.conv2d(output_gradient, kernel, stride, 'SAME')
            # That of the convolution of output_gradient whose output is inputs.
            return input_gradient, conv2d_kernel_gradient(
                output_gradient, kernel, inputs, stride, 'SAME', matmul_weight_gradients)
        if stride == 2:
            outputs = transposed_conv_forward(inputs, kernel, output_shape,
                                              fast_transposed_passes)
        else:
            outputs = tf.nn.conv2d_transpose(inputs, kernel, output_shape, stride, 'SAME')
        return outputs, gradient
    return convolve(inputs, tf.convert_to_tensor(kernel))
