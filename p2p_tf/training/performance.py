"""Speed settings: numeric precision, XLA and the fused Adam update, chosen for the hardware.

None of them changes the networks or the objective; `python -m p2p_tf.benchmark` measures each
against the tutorial's plain float32 step (docs/speed.md).

`config.precision` and `config.xla` default to 'auto', which picks for the machine at hand:
- precision: 'mixed_float16' (with loss scaling) on a GPU, the usual choice for its 16-bit
  matrix units; on a CPU, 'mixed_bfloat16' where a bfloat16 matrix product measures at least
  BF16_MIN_SPEEDUP times as fast as a float32 one (a probe of about a second, only on CPUs that
  report bfloat16 instructions, once per machine: the result is kept in the cache folder,
  `$P2P_TF_CACHE_DIR/bfloat16_probe.json`), 'float32' elsewhere. The flags
  alone are no promise: on one AVX512-BF16 CPU bfloat16 trained 1.4x faster than float32, on
  another 1.3x slower (docs/speed.md).
- xla: on for GPUs, off for CPUs, where it measured slower than graph mode (docs/speed.md).
GPU choices follow common practice and are not yet measured by the project.
`config.fused_adam` (default on) applies each Adam update with TensorFlow's one-kernel
ResourceApplyAdam instead of Keras' six element-wise ops: the same arithmetic, with one pass
over the 57 million weights and moments instead of several. `config.fused_batch_norm`
(default on) does the same for BatchNorm's training-mode calls (p2p_tf/nets/layers.py).
`config.matmul_weight_gradients` and `config.fast_transposed_passes` (default auto) pick how
convolutions compute their passes; their code lives with the layers they change
(p2p_tf/nets/convolution_passes.py). auto: on for CPUs, where each form measured faster
(docs/speed.md); off for GPUs and TPUs, where cuDNN's and XLA's own kernels are the standard
path and the project has not measured them.
"""

import functools
import json
import os
import platform
import time

import keras
import tensorflow as tf

from p2p_tf import workdirs
from p2p_tf.config import AUTO
from p2p_tf.datasets import sources

# CPU feature flags (/proc/cpuinfo) without which bfloat16 is emulated and never measured.
BF16_CPU_FLAGS = ('avx512_bf16', 'amx_bf16')
# auto picks bfloat16 on a CPU only this much faster in the probe: the margin keeps a noisy
# probe from flipping the choice where the two are close and the float32 step is the safe one.
BF16_MIN_SPEEDUP = 1.2
# The probe's square matrices: at 1024 the measured ratio swung from 0.64 to 1.0 between runs
# on one CPU; at 2048 it held, and the probe takes about a second.
BF16_PROBE_SIZE = 2048
# The probe's results, by machine, in the cache folder: a run measures once per machine, not
# once per launch.
BF16_PROBE_FILENAME = 'bfloat16_probe.json'


def _cpuinfo_lines():
    """The lines of /proc/cpuinfo, or none where there is no such file."""
    try:
        with open('/proc/cpuinfo') as cpuinfo:
            return cpuinfo.readlines()
    except OSError:
        return []


@functools.cache
def cpu_flags():
    """The CPU feature flags Linux reports, or an empty set elsewhere."""
    for line in _cpuinfo_lines():
        if line.startswith('flags'):
            return frozenset(line.split(':', 1)[1].split())
    return frozenset()


def has_gpu():
    return bool(tf.config.list_physical_devices('GPU'))


def matmul_gflops(size, dtype='float32', repeats=5):
    """GFLOP/s of the fastest of `repeats` size x size `dtype` matrix products."""
    a, b = (tf.cast(tf.random.uniform([size, size], seed=seed), dtype) for seed in (1, 2))
    # One element fetched: the product is computed whole, but not copied out.
    product = tf.function(lambda: tf.linalg.matmul(a, b)[0, 0])
    product().numpy()
    best = float('inf')
    for _ in range(repeats):
        start = time.perf_counter()
        product().numpy()
        best = min(best, time.perf_counter() - start)
    return 2 * size ** 3 / best / 1e9


def machine_key():
    """What the probe's result depends on: the CPU, its flags, the cores TensorFlow may use and
    TensorFlow's version (its kernels)."""
    model = next((line.split(':', 1)[1].strip() for line in _cpuinfo_lines()
                  if line.startswith('model name')), platform.processor())
    return '|'.join([model, ' '.join(sorted(cpu_flags())), f'{os.cpu_count()} cores',
                     f'tensorflow {tf.__version__}'])


def read_probe_results(path):
    """{machine key: speedup} saved at `path`; empty if missing or unreadable."""
    try:
        with open(path) as f:
            known = json.load(f)
    except (OSError, ValueError):
        return {}
    return known if isinstance(known, dict) else {}


@functools.cache
def bfloat16_speedup():
    """How many times as fast a bfloat16 matrix product runs as a float32 one on this
    machine: the probe, measured once per machine and kept in the cache folder (a cache that
    cannot be read or written only costs a new measurement)."""
    path = os.path.join(sources.cache_dir(), BF16_PROBE_FILENAME)
    key = machine_key()
    known = read_probe_results(path)
    if isinstance(known.get(key), float):
        return known[key]
    float32 = matmul_gflops(BF16_PROBE_SIZE, 'float32', repeats=3)
    speedup = matmul_gflops(BF16_PROBE_SIZE, 'bfloat16', repeats=3) / float32
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        workdirs.write_json(path, {**known, key: speedup})
    except OSError:
        pass
    return speedup


def choose_precision(setting):
    """'auto' or one of config.PRECISIONS -> one of config.PRECISIONS for this machine."""
    if setting != AUTO:
        return setting
    if has_gpu():
        return 'mixed_float16'
    if cpu_flags() & set(BF16_CPU_FLAGS) and bfloat16_speedup() >= BF16_MIN_SPEEDUP:
        return 'mixed_bfloat16'
    return 'float32'


def choose_xla(setting):
    """'auto', 'on' or 'off' -> 'on' or 'off' for this machine."""
    if setting != AUTO:
        return setting
    return 'on' if has_gpu() else 'off'


# The config fields of the convolution pass settings, each 'auto', 'on' or 'off'.
CONVOLUTION_PASS_FIELDS = ('matmul_weight_gradients', 'fast_transposed_passes')


def choose_convolution_passes(setting, accelerator=None):
    """'auto', 'on' or 'off' -> 'on' or 'off'; accelerator: whether the run is on GPUs or
    TPUs (default: whether this machine has a GPU)."""
    if setting != AUTO:
        return setting
    return 'off' if (has_gpu() if accelerator is None else accelerator) else 'on'


class FusedAdam(keras.optimizers.Adam):
    """keras.optimizers.Adam whose per-variable update is TensorFlow's fused ResourceApplyAdam
    kernel. Same variables (so checkpoints are interchangeable with keras Adam) and the same
    formula: m += (g - m)(1 - b1); v += (g^2 - v)(1 - b2);
    w -= lr sqrt(1 - b2^t) / (1 - b1^t) m / (sqrt(v) + epsilon)."""

    def __init__(self, *args, name='adam', **kwargs):
        super().__init__(*args, name=name, **kwargs)

    def update_step(self, gradient, variable, learning_rate):
        if self.amsgrad:
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        index = self._get_variable_index(variable)
        step = tf.cast(self.iterations + 1, dtype)
        beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle, m=self._momentums[index].handle,
            v=self._velocities[index].handle, beta1_power=tf.pow(beta_1, step),
            beta2_power=tf.pow(beta_2, step), lr=tf.cast(learning_rate, dtype), beta1=beta_1,
            beta2=beta_2, epsilon=tf.cast(self.epsilon, dtype), grad=tf.cast(gradient, dtype))


def adam(fused, learning_rate, beta_1, beta_2, precision):
    """The Adam optimizer for one network: fused or Keras', wrapped in a LossScaleOptimizer
    under mixed_float16 (float16 gradients underflow without loss scaling)."""
    optimizer = (FusedAdam if fused else keras.optimizers.Adam)(
        learning_rate, beta_1=beta_1, beta_2=beta_2)
    if precision == 'mixed_float16':
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer
