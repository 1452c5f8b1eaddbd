"""Where a training step's time goes, against what this machine's matrix units can do: what
`python -m p2p_tf.benchmark --sections=profile` measures (docs/speed.md#profile).

- `matmul_peak`: the matrix-product rate of this process (float32, or the 16-bit type a mixed
  precision step computes in), the best of a few runs of square products from 1024 to 4096.
- `profile_step`: a few train steps of a Trainer, traced by TensorFlow's profiler. Every
  kernel that ran is attributed to a row: each convolution's forward pass, input gradient and
  weight gradient, with its FLOPs from the static shapes of the step's graph, or one of the
  kinds of non-matrix work (BatchNorm, activations, dropout, concatenations, the Adam update,
  losses and the rest). Time during which two kernels ran at once (the executor runs
  independent ops on two threads) is split between them, and time in which no kernel ran is
  the dispatch/host row, so the rows add up to the traced step. A row's GFLOP/s is its FLOPs
  over the time its kernels ran (not split): a lower bound where they shared the cores. Set
  beside the same steps timed without the profiler, that says how far the trace can be
  trusted.
"""

import collections
import glob
import os
import re
import statistics
import tempfile
import time

import tensorflow as tf

from p2p_tf.nets import convolution_passes
from p2p_tf.training import performance

MATRIX_SIZES = (1024, 2048, 4096)
PASSES = ('forward', 'input_gradient', 'weight_gradient')
# Kernels that are convolutions or their gradients, by op type (ExtractImagePatches builds
# the matrix of the matmul weight gradient, p2p_tf/nets/convolution_passes.py).
CONVOLUTION_OPS = ('Conv2D', 'Conv2DBackpropInput', 'Conv2DBackpropFilter', 'Einsum')
PATCHES_OP = 'ExtractImagePatches'
BIAS_OPS = ('BiasAdd', 'Add', 'AddV2')
FUSED_OP = 'FusedConv2D'  # Also _MklNativeFusedConv2D: the kernel's type names the fusion.
FUSED_PREFIX = 'fused:'
# The name scopes of passes computed in other forms (convolution_passes), whose ops all belong
# to one call of one pass: {scope: the op type that is the call}.
REWRITTEN_SCOPES = {convolution_passes.WEIGHT_STATIONARY_SCOPE: 'MatMul',
                    convolution_passes.FLIPPED_CONV_SCOPE: 'Conv2D',
                    convolution_passes.NARROW_WEIGHT_GRADIENT_SCOPE: PATCHES_OP,
                    convolution_passes.WEIGHT_GRADIENT_AS_CONV_SCOPE: 'Conv2D',
                    convolution_passes.BLOCKS_SCOPE: 'Conv2D'}
WEIGHT_GRADIENT_SCOPES = (convolution_passes.NARROW_WEIGHT_GRADIENT_SCOPE,
                          convolution_passes.WEIGHT_GRADIENT_AS_CONV_SCOPE)
SCOPE_PATTERN = re.compile(r'^(.*?(%s)(_\d+)?)/' % '|'.join(REWRITTEN_SCOPES))
NETWORKS = {'unet_generator': 'G', 'patchgan_discriminator': 'D'}
# The non-matrix rows, tried in order on each kernel's name and type (lowercase).
OTHER_ROWS = (
    ('Adam update', ('adam', 'applyadam')),
    ('BatchNorm', ('batch_normalization', 'fusedbatchnorm', 'group_normalization')),
    ('dropout', ('dropout', 'statelessrandom')),
    ('concatenations', ('concatenate', 'concatv2')),
    ('activations', ('leaky_re_lu', 'leakyrelu', 'relu', 'tanh', 'sigmoid')),
)
OTHER_ROW = 'losses and other element-wise'
IDLE_ROW = 'dispatch / host (no kernel running)'


def matmul_peak(sizes=MATRIX_SIZES, repeats=5, dtype='float32'):
    """{'gflops': best GFLOP/s, 'by_size': {n: best at n x n}} of `dtype` products."""
    by_size = {n: performance.matmul_gflops(n, dtype, repeats) for n in sizes}
    return dict(gflops=max(by_size.values()), by_size=by_size)


def timed(call):
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def graph_ops(function):
    """{op name: tf.Operation} of a concrete function's graph and the functions it calls."""
    ops, graphs = {}, [function.graph]
    while graphs:
        graph = graphs.pop()
        ops.update((op.name, op) for op in graph.get_operations())
        graphs.extend(f.graph for f in graph._functions.values() if hasattr(f, 'graph'))
    return ops


def static(shape):
    return [int(d) for d in shape]


def convolution_of(op):
    """(kernel shape, FLOPs) of a convolution kernel or gradient op with static shapes: the
    kernel as its variable holds it ([kh, kw, A, B]; for the matmul weight gradient the
    flattened [kh * kw * A, B]) and 2 multiply-adds per kernel weight and output position."""
    if op.type == 'Einsum':
        windows = static(op.inputs[0].shape)
        kernel = static(op.outputs[0].shape)
        return tuple(kernel), 2 * windows[0] * windows[1] * windows[2] * kernel[0] * kernel[1]
    if op.type == 'Conv2DBackpropFilter':
        kernel = static(op.outputs[0].shape)
        gradient = static(op.inputs[2].shape)
    elif op.type == 'Conv2DBackpropInput':
        kernel = static(op.inputs[1].shape)
        gradient = static(op.inputs[2].shape)
    else:
        kernel = static(op.inputs[1].shape)
        gradient = static(op.outputs[0].shape)
    # Positions of the small side (the conv's output, the transposed conv's input).
    positions = gradient[0] * gradient[1] * gradient[2]
    flops = 2 * positions * kernel[0] * kernel[1] * kernel[2] * kernel[3]
    return (kernel[0] * kernel[1] * kernel[2], kernel[3]), flops


def rewritten_convolution(scope, call, scope_ops):
    """(kernel shape key, FLOPs, forward label or None) of a rewritten pass, from the op
    that is its call and the ops of its scope; the key as convolution_of gives it for the
    layer, the FLOPs those of TensorFlow's form of the pass."""
    if call.type == 'MatMul':  # kernel [16 A, B] . inputs [b H W, B]^T
        kernel_rows, channels = static(call.inputs[0].shape)
        batch, height, width, _ = static(call.inputs[1].op.inputs[0].shape)
        label = (f'{network_of(call.name)} transposed conv 4x4/2 {channels}->'
                 f'{kernel_rows // 16} to {2 * height}x{2 * width}')
        return (kernel_rows, channels), 2 * kernel_rows * channels * batch * height * width, label
    if scope == convolution_passes.WEIGHT_GRADIENT_AS_CONV_SCOPE:
        # [s s C, H_s, W_s, b] inputs * [H', W', b, O] output gradient -> [s s C, kh/s, kw/s, O]
        view_channels, taps_high, taps_wide, outputs = static(call.outputs[0].shape)
        height, width, batch, _ = static(call.inputs[1].shape)
        rows = view_channels * taps_high * taps_wide
        return (rows, outputs), 2 * height * width * batch * rows * outputs, None
    if call.type == 'Conv2D':  # The flipped kernel [kh, kw, B, A] over the padded gradient,
        kh, kw, channels, outputs = static(call.inputs[1].shape)  # on blocks A = s s C.
        batch, height, width, _ = static(call.outputs[0].shape)
        positions = batch * (height - kh + 1) * (width - kw + 1)
        block = next((op.get_attr('block_size') for op in scope_ops
                      if op.type == 'DepthToSpace'), None)
        label = block and (f'{network_of(call.name)} transposed conv {kh * block}x{kw * block}/'
                           f'{block} {channels}->{outputs // block ** 2} to '
                           f'{block * (height - kh + 1)}x{block * (width - kw + 1)}')
        return (kh * kw * outputs, channels), 2 * positions * kh * kw * outputs * channels, label
    # The narrow weight gradient: one einsum per kernel row.
    einsums = [op for op in scope_ops if op.type == 'Einsum']
    row_key, flops = convolution_of(einsums[0])
    return (row_key[0] * len(einsums), row_key[1]), flops * len(einsums), None


def network_of(op_name):
    """'G' or 'D' for an op in a network's name scope (a forward op), else None."""
    top = op_name.split('/', 1)[0]
    return next((label for prefix, label in NETWORKS.items() if top.startswith(prefix)), None)


def is_weight_gradient(op):
    return op.type in ('Conv2DBackpropFilter', 'Einsum', PATCHES_OP)


def describe(op):
    """A forward convolution op as 'G conv 4x4/2 3->64 to 128x128' (its output size)."""
    kernel = static(op.inputs[1].shape)
    height, width = static(op.outputs[0].shape)[1:3]
    if op.type == 'Conv2D':
        kind, (c_in, c_out) = 'conv', kernel[2:]
    else:  # A transposed convolution's forward op.
        kind, (c_out, c_in) = 'transposed conv', kernel[2:]
    stride = op.get_attr('strides')[1]
    return (f'{network_of(op.name)} {kind} {kernel[0]}x{kernel[1]}/{stride} {c_in}->{c_out} '
            f'to {height}x{width}')


def pass_of(op):
    if is_weight_gradient(op):
        return 'weight_gradient'
    forward = not op.name.startswith('gradient_tape') and network_of(op.name) is not None
    return 'forward' if forward else 'input_gradient'


def bias_adds_after(op):
    """The bias adds that read `op`'s output, directly or through identities (a custom
    gradient's IdentityN)."""
    adds, pending = [], [op.outputs[0]]
    while pending:
        tensor = pending.pop()
        for consumer in tensor.consumers():
            if consumer.type in BIAS_OPS:
                adds.append(consumer)
            elif consumer.type in ('Identity', 'IdentityN'):
                # An identity's output i passes its input i through.
                pending.extend(consumer.outputs[i] for i, x in enumerate(consumer.inputs)
                               if x is tensor)
    return adds


def convolution_rows(ops):
    """{op name: (row key, pass, FLOPs, whether it is a call)} for the step's convolution
    kernels, and {row key: label}. A row is one kernel shape and FLOP count: the layers of one
    shape (G's and D's second layers at 256x256) share it."""
    attributed, labels = {}, collections.defaultdict(set)
    scopes = collections.defaultdict(list)
    for op in ops.values():
        match = SCOPE_PATTERN.match(op.name)
        if match:
            scopes[(match.group(1), match.group(2))].append(op)
    for (_, scope), scope_ops in scopes.items():
        call = next((op for op in scope_ops if op.type == REWRITTEN_SCOPES[scope]), None)
        if call is None:
            continue
        try:
            key, flops, label = rewritten_convolution(scope, call, scope_ops)
        except (TypeError, ValueError, IndexError):
            continue  # Shapes not static.
        kind = 'weight_gradient' if scope in WEIGHT_GRADIENT_SCOPES else pass_of(call)
        for op in scope_ops:
            attributed[op.name] = ((key, flops), kind, flops if op is call else 0, op is call)
        if kind == 'forward':
            labels[(key, flops)].add(label)
    for op in ops.values():
        if op.type not in CONVOLUTION_OPS or op.name in attributed:
            continue
        try:
            kernel, flops = convolution_of(op)
        except (TypeError, ValueError, IndexError):
            continue  # Not a 2-D convolution with static shapes.
        kind = pass_of(op)
        attributed[op.name] = ((kernel, flops), kind, flops, True)
        if kind == 'forward':
            labels[(kernel, flops)].add(describe(op))
            # Grappler fuses a convolution with the bias add after it into one kernel that
            # bears the add's name (D's last layer when its passes are TensorFlow's).
            for add in bias_adds_after(op):
                attributed[FUSED_PREFIX + add.name] = attributed[op.name]
    for op in ops.values():
        # The patch matrix of a matmul weight gradient belongs to the einsum that reads it.
        if op.type == PATCHES_OP and op.name not in attributed:
            reader = next((c for c in op.outputs[0].consumers() if c.name in attributed), None)
            if reader is not None:
                attributed[op.name] = (attributed[reader.name][0], 'weight_gradient', 0, False)
    return attributed, {key: ' + '.join(sorted(names)) for key, names in labels.items()}


def forward_flops(model, inputs):
    """The convolution FLOPs of one eval-mode call of `model` on `inputs` (static shapes)."""
    concrete = tf.function(lambda x: model(x, training=False)).get_concrete_function(inputs)
    attributed, _ = convolution_rows(graph_ops(concrete))
    return sum(flops for name, (_, _, flops, _) in attributed.items()
               if not name.startswith(FUSED_PREFIX))


def other_row(name, op_type):
    text = f'{name} {op_type}'.lower()
    return next((row for row, words in OTHER_ROWS if any(w in text for w in words)), OTHER_ROW)


def kernel_events(logdir):
    """[(start, end, op name, op type)] in seconds of every kernel in a profiler trace."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2
    space = xplane_pb2.XSpace()
    for path in glob.glob(os.path.join(logdir, '**', '*.xplane.pb'), recursive=True):
        with open(path, 'rb') as f:
            space.MergeFromString(f.read())
    events = []
    for plane in (p for p in space.planes if p.name.startswith('/host:CPU')
                  or p.name.startswith('/device:')):
        for line in plane.lines:
            if line.name == 'python':
                continue
            base = line.timestamp_ns * 1e-9
            # A kernel runs inside the executor's Process event of its thread; other events
            # with an op-like name (a function's whole run) are not kernels.
            process_end = -1
            for event in sorted(line.events, key=lambda e: e.offset_ps):
                name = plane.event_metadata[event.metadata_id].name
                if name == 'ExecutorState::Process':
                    process_end = event.offset_ps + event.duration_ps
                    continue
                # Started inside it: its end may be stamped a little after the Process's.
                if ':' not in name or event.offset_ps > process_end:
                    continue
                op_name, op_type = name.rsplit(':', 1)
                start = base + event.offset_ps * 1e-12
                events.append((start, start + event.duration_ps * 1e-12, op_name, op_type))
    return events


def split_overlaps(intervals):
    """{row: seconds} of [(start, end, row)], each instant shared equally by the rows of the
    intervals that cover it; and the length of their union."""
    points = sorted([(start, 1, row) for start, _, row in intervals]
                    + [(end, -1, row) for _, end, row in intervals], key=lambda p: p[:2])
    shares, active, busy, previous = collections.Counter(), collections.Counter(), 0.0, None
    for point, change, row in points:
        count = sum(active.values())
        if previous is not None and count:
            for name, n in active.items():
                shares[name] += (point - previous) * n / count
            busy += point - previous
        active[row] += change
        if not active[row]:
            del active[row]
        previous = point
    return shares, busy


def profile_step(trainer, inputs, targets, steps=3, warmup=2, windows=5):
    """The profile of `trainer`'s train step on one batch: step seconds without and with the
    profiler, rows of convolution passes and of other work, FLOPs per step."""
    for _ in range(warmup):
        float(trainer.train_step(inputs, targets)['gen_total'])
    def step_seconds():
        return timed(lambda: float(trainer.train_step(inputs, targets)['gen_total']))

    # Untraced steps before and after the traced ones, so that a machine whose speed drifts
    # (shared, throttled) moves both figures alike.
    bare = [step_seconds() for _ in range(windows - windows // 2)]
    ops = graph_ops(trainer._train_step.get_concrete_function(inputs, targets))
    attributed, labels = convolution_rows(ops)
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        start = time.perf_counter()
        for _ in range(steps):
            float(trainer.train_step(inputs, targets)['gen_total'])
        traced = (time.perf_counter() - start) / steps
        tf.profiler.experimental.stop()
        events = kernel_events(logdir)
    bare = statistics.median(bare + [step_seconds() for _ in range(windows // 2)])
    intervals, calls, flops = [], collections.Counter(), collections.Counter()
    running = collections.Counter()  # Seconds each row's kernels ran, overlaps not split.
    other_types = collections.Counter()
    for start, end, name, op_type in events:
        if FUSED_OP in op_type and name not in attributed:
            name = FUSED_PREFIX + name
        if name in attributed:
            key, kind, op_flops, is_call = attributed[name]
            row = (key, kind)
            calls[row] += is_call
            flops[row] += op_flops
            running[row] += end - start
        else:
            row = other_row(name, op_type)
            if row == OTHER_ROW:
                other_types[op_type] += (end - start) / steps
        intervals.append((start, end, row))
    shares, busy = split_overlaps(intervals)
    rows = []
    for (key, kind), count in sorted(calls.items(), key=lambda item: -shares[item[0]]):
        seconds = shares[(key, kind)] / steps
        rows.append({'layer': labels.get(key, 'unlabelled'), 'kernel': list(key[0]),
                     'pass': kind, 'calls': count / steps,
                     'gflop': flops[(key, kind)] / steps / 1e9, 'seconds': seconds,
                     'running_seconds': running[(key, kind)] / steps})
    other = {row: seconds / steps for row, seconds in shares.items() if isinstance(row, str)}
    other[IDLE_ROW] = max(traced - busy / steps, 0.0)
    # What the catch-all row holds: the op types with the most kernel time (not split).
    top_types = dict(other_types.most_common(8))
    return dict(step_seconds=bare, traced_step_seconds=traced, rows=rows, other=other,
                other_op_types=top_types, gflop_per_step=sum(row['gflop'] for row in rows))


def profile_variants(variants, make_config, sizes, steps, warmup, windows):
    """The float32 matmul peak, then the traced step of each variant (make_config(variant):
    a resolved config) in this process, then the peaks again: the best of both holds (a shared
    machine is slower at times, never faster). Each profile gets its fraction of the float32
    peak and of the peak of the type it computes in (`fraction_of_precision_peak`)."""
    from p2p_tf.experiments.random_batches import trainer_and_random_batch
    peak = matmul_peak(sizes)
    profiles = {}
    for variant in variants:
        config = make_config(variant)
        trainer, inputs, targets = trainer_and_random_batch(config)
        profiles[variant] = profile_step(trainer, inputs, targets, steps=steps, warmup=warmup,
                                         windows=windows)
        # The type it multiplies in: 'mixed_bfloat16' -> 'bfloat16'.
        profiles[variant]['compute_dtype'] = config.precision.replace('mixed_', '')
        del trainer
    again = matmul_peak(sizes)
    peak['by_size'] = {n: max(peak['by_size'][n], again['by_size'][n]) for n in sizes}
    peak['gflops'] = max(peak['by_size'].values())
    peak['by_dtype'] = {'float32': peak['gflops']}
    for dtype in sorted({p['compute_dtype'] for p in profiles.values()} - {'float32'}):
        peak['by_dtype'][dtype] = matmul_peak(sizes, dtype=dtype)['gflops']
    for profile in profiles.values():
        with_peak(profile, peak['gflops'], peak['by_dtype'][profile['compute_dtype']])
    return dict(peak=peak, **profiles)


def with_peak(profile, peak_gflops, precision_peak_gflops=None):
    """Adds GFLOP/s, fraction of the peak and share of the step to a profile_step result (and
    the fraction of the peak of the step's own compute type, the float32 one if not given)."""
    step = profile['step_seconds']
    for row in profile['rows']:
        # The rate while the row's kernels ran: a kernel sharing the two cores with another
        # is slowed by it, and its split share of the time would overstate its rate.
        running = row['running_seconds']
        row['gflops'] = row['gflop'] / running if running else 0.0
        row['fraction_of_peak'] = row['gflops'] / peak_gflops
        row['share_of_step'] = row['seconds'] / profile['traced_step_seconds']
    profile['other_shares'] = {name: seconds / profile['traced_step_seconds']
                               for name, seconds in profile['other'].items()}
    profile['fraction_of_peak'] = profile['gflop_per_step'] / step / peak_gflops
    profile['fraction_of_precision_peak'] = (profile['gflop_per_step'] / step
                                             / (precision_peak_gflops or peak_gflops))
    accounted = sum(row['seconds'] for row in profile['rows']) + sum(profile['other'].values())
    profile['accounted_to_measured'] = accounted / step
    return profile
