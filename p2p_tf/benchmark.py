"""Measure speed and memory on this machine: `python -m p2p_tf.benchmark --json=bench.json`.

Prints a table and (with --json) writes the machine, versions, settings and figures:
- training images/s at --image_size and --batch_size on synthetic tensors, for each variant in
  --variants: `reference` is the TensorFlow tutorial's plain float32 step (same networks,
  losses and optimizer, no speed options); `fast` is the project's defaults
  (p2p_tf/training/performance.py); `float32`, `bfloat16`, `float16` and `xla` are `fast` with
  that one setting forced, and `tf_weight_gradients` and `tf_transposed_passes` `fast` with
  that pass in TensorFlow's form (matmul_weight_gradients or fast_transposed_passes off),
  `keras_batch_norm` `fast` with Keras' BatchNorm (fused_batch_norm off);
- `fast` through the real step loop, as a ratio to its bare steps; `fast` reading real data
  through the input pipeline; the input pipeline alone (decode, cache, jitter, mirroring);
- the latency of translating one image: the tutorial's eager `generator(x, training=True)`,
  the same in a tf.function, and the SavedModel (`translate_float`) in paper and eval mode;
- the peak resident memory of each measurement (each runs in its own Python process);
- not by default: `--sections=profile` (minutes), where the step's time goes: this machine's
  float32 matmul peak, then for each of --profile_variants the time, GFLOP/s and fraction of
  the peak of each convolution pass of G and D, the other work, and the step's fraction;
  `--sections=train_interleaved`, the train variants in one process, in alternating windows;
  `--sections=quality` (minutes), whether `fast` trains like the reference: --quality_steps
  steps on the real data at --quality_size, both from one seed, and the reference from another
  as the yardstick; `fast` passes when its --quality_window-step means of the L1 and D losses
  stay as close to the reference's as the reseeded reference's do.
Speeds are medians over --windows timed windows, and ratios to the reference of the same run.
"""

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

from absl import flags

from p2p_tf import cli  # Before TensorFlow loads: it quiets its start-up logging.
from p2p_tf import config as config_lib
from p2p_tf.errors import UserError
from p2p_tf.experiments import benchmark_report

# Training variants: config overrides on top of the project's defaults.
VARIANTS = {
    'reference': dict(precision='float32', xla='off', fused_adam=False, fused_batch_norm=False,
                      matmul_weight_gradients='off', fast_transposed_passes='off'),
    'fast': {},
    'float32': dict(precision='float32'),
    'bfloat16': dict(precision='mixed_bfloat16'),
    'float16': dict(precision='mixed_float16'),
    'xla': dict(xla='on'),
    'tf_weight_gradients': dict(matmul_weight_gradients='off'),
    'tf_transposed_passes': dict(fast_transposed_passes='off'),
    'keras_batch_norm': dict(fused_batch_norm=False),
}
SECTIONS = ('train', 'train_loop', 'train_real_data', 'pipeline', 'inference', 'quality',
            'profile', 'train_interleaved')
DEFAULT_SECTIONS = SECTIONS[:-3]
# The variants the profile sets side by side unless --profile_variants says otherwise.
PROFILED_VARIANTS = ('reference', 'fast')

_VARIANTS = flags.DEFINE_list('variants', ['reference', 'fast'],
                              f'Training variants to measure: {", ".join(VARIANTS)}.')
_SECTIONS = flags.DEFINE_list('sections', list(DEFAULT_SECTIONS),
                              f'What to measure: {", ".join(SECTIONS)}.')
_IMAGE_SIZE = flags.DEFINE_integer('image_size', 256, 'Training and inference image size.')
_BATCH_SIZE = flags.DEFINE_integer('batch_size', 1, 'Training batch size.')
_GENERATOR_FILTERS = flags.DEFINE_integer('generator_filters', 64, 'U-Net base filters.')
_DISCRIMINATOR_FILTERS = flags.DEFINE_integer('discriminator_filters', 64,
                                              'PatchGAN base filters.')
_WARMUP_STEPS = flags.DEFINE_integer('warmup_steps', 3, 'Untimed steps before timing.')
_WINDOWS = flags.DEFINE_integer('windows', 5, 'Timed windows per measurement (the median '
                                'is reported).')
_STEPS_PER_WINDOW = flags.DEFINE_integer('steps_per_window', 4, 'Training steps per window.')
_DATASET = flags.DEFINE_string('dataset', 'facades', 'Named dataset for the real-data '
                               'measurements (see --data_dir).')
_DATA_DIR = flags.DEFINE_string('data_dir', None, 'Folder with a local copy of the dataset; '
                                'default $P2P_TF_DATA_DIR.')
_FOLDER = flags.DEFINE_string('folder', None, 'A folder of your own pairs to use instead of '
                              '--dataset (as for --dataset=folder).')
_QUALITY_SIZE = flags.DEFINE_integer('quality_size', 128, 'Image size of the quality check.')
_QUALITY_STEPS = flags.DEFINE_integer('quality_steps', 300, 'Steps of each quality-check run.')
_QUALITY_WINDOW = flags.DEFINE_integer('quality_window', 50, 'Steps per loss mean compared.')
_PROFILE_STEPS = flags.DEFINE_integer('profile_steps', 3, 'Steps traced per profiled variant.')
_PROFILE_VARIANTS = flags.DEFINE_list(
    'profile_variants', list(PROFILED_VARIANTS), 'Training variants the profile section traces '
    '(e.g. reference,tf_transposed_passes,fast for the step before and after a setting).')
_MATMUL_SIZES = flags.DEFINE_list('matmul_sizes', ['1024', '2048', '4096'],
                                  'Square matmul sizes whose best rate is the peak.')
_JSON = flags.DEFINE_string('json', None, 'Write the results here as JSON.')
_CASE = flags.DEFINE_string('case', None, 'Internal: run one measurement and print its JSON.')


def peak_rss_mb():
    """Peak resident memory of this process so far, MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def base_config(variant='fast', image_size=None, seed=0):
    config = config_lib.get_config()
    config.dataset = _FOLDER.value and config_lib.FOLDER_DATASET or _DATASET.value
    config.image_size = image_size or _IMAGE_SIZE.value
    # The paper's jitter ratio, 286 / 256.
    config.load_size = config.image_size * 286 // 256
    config.seed = seed
    config.batch_size = _BATCH_SIZE.value
    config.generator_filters = _GENERATOR_FILTERS.value
    config.discriminator_filters = _DISCRIMINATOR_FILTERS.value
    config.steps = 1
    config.update(VARIANTS[variant])
    import tensorflow as tf

    from p2p_tf.training import distribution
    return distribution.resolve_run(config, tf.distribute.get_strategy())


def timed_windows(run_steps, steps):
    """Images/s of `run_steps(steps)` over --windows windows, after the warm-up."""
    run_steps(_WARMUP_STEPS.value)
    rates = []
    for _ in range(_WINDOWS.value):
        start = time.perf_counter()
        run_steps(steps)
        rates.append(steps * _BATCH_SIZE.value / (time.perf_counter() - start))
    return rates


def training_examples(config):
    from p2p_tf.datasets import examples
    return examples.training_data(config, _FOLDER.value or _DATA_DIR.value)[0]


def measure_training(variant, real_data):
    from p2p_tf.datasets import input_pipeline
    from p2p_tf.experiments.random_batches import trainer_and_random_batch
    config = base_config(variant)
    trainer, inputs, targets = trainer_and_random_batch(config)
    if real_data:
        batches = iter(input_pipeline.train_dataset(training_examples(config), config))
    else:
        batches = iter(lambda: (inputs, targets), None)

    def run_steps(count):
        for _ in range(count):
            losses = trainer.train_step(*next(batches))
        float(losses['gen_total'])  # Waits for the last step to finish.

    rates = timed_windows(run_steps, _STEPS_PER_WINDOW.value)
    return dict(images_per_second=statistics.median(rates), windows=rates,
                precision=config.precision, xla=config.xla, fused_adam=config.fused_adam,
                fused_batch_norm=config.fused_batch_norm,
                matmul_weight_gradients=config.matmul_weight_gradients,
                fast_transposed_passes=config.fast_transposed_passes)


def measure_loop():
    """The fast variant through the real step loop (pix2pix.run_loop: progress, losses fetched
    every log_every steps, summaries) on synthetic tensors, to set against the bare steps."""
    import io

    import tensorflow as tf

    from p2p_tf.experiments.random_batches import trainer_and_random_batch
    from p2p_tf.training import pix2pix
    from p2p_tf.training.progress import Progress
    config = base_config('fast')
    trainer, inputs, targets = trainer_and_random_batch(config)
    batches = iter(tf.data.Dataset.from_tensors((inputs, targets)).repeat())
    progress = Progress(10 ** 9, config.batch_size, config.log_every, io.StringIO())

    def run_steps(count):
        pix2pix.run_loop(trainer, batches, None, progress, int(trainer.step) + count)

    rates = timed_windows(run_steps, _STEPS_PER_WINDOW.value)
    return dict(images_per_second=statistics.median(rates), windows=rates,
                log_every=config.log_every)


def measure_pipeline():
    from p2p_tf.datasets import input_pipeline
    config = base_config()
    examples = training_examples(config)
    start = time.perf_counter()
    batches = iter(input_pipeline.train_dataset(examples, config))
    next(batches)
    first_batch_seconds = time.perf_counter() - start
    steps = max(50, 4 * len(examples) // config.batch_size)

    def run_steps(count):
        for _ in range(count):
            next(batches)

    rates = timed_windows(run_steps, steps)
    return dict(images_per_second=statistics.median(rates), windows=rates,
                examples=len(examples), first_batch_seconds=first_batch_seconds)


def measure_inference():
    import tensorflow as tf

    from p2p_tf.nets import models
    from p2p_tf.serving import export as export_lib
    config = base_config()
    # The tutorial's generator: Keras' own layers, float32.
    generator = models.generator_from_config(config, matmul_weight_gradients=False)
    size = config.image_size
    image = tf.random.uniform([1, size, size, config.input_channels], -1, 1, seed=3)
    compiled = tf.function(lambda x: generator(x, training=True))
    latencies = {
        'eager_training_call': lambda: generator(image, training=True),
        'tf_function_training_call': lambda: compiled(image),
    }
    with tempfile.TemporaryDirectory() as folder:
        for mode in ('paper', 'eval'):
            metadata = export_lib.export_metadata(config, 0, mode)
            path = os.path.join(folder, mode)
            # As the export command writes it (its eval mode picks the transposed
            # convolutions' form at run time).
            export_lib.write_saved_model(generator, metadata, path, fast_transposed_passes=True)
            translate = tf.saved_model.load(path).signatures['translate_float']
            latencies[f'saved_model_{mode}'] = (
                lambda translate=translate: translate(images=image))
        latency = {}
        for name, call in latencies.items():
            for _ in range(_WARMUP_STEPS.value):
                tf.nest.map_structure(lambda t: t.numpy(), call())
            times = []
            for _ in range(_WINDOWS.value * _STEPS_PER_WINDOW.value):
                start = time.perf_counter()
                tf.nest.map_structure(lambda t: t.numpy(), call())
                times.append(1000 * (time.perf_counter() - start))
            latency[name] = dict(milliseconds=statistics.median(times), samples=len(times))
    # Each latency against this machine's matmul peak, measured in this process after them,
    # for the generator's convolution FLOPs.
    from p2p_tf.experiments import speed_profile
    gflop = speed_profile.forward_flops(generator, image) / 1e9
    peak = speed_profile.matmul_peak([int(n) for n in _MATMUL_SIZES.value])
    for figures in latency.values():
        figures['fraction_of_peak'] = gflop / (figures['milliseconds'] / 1000) / peak['gflops']
    return dict(latency=latency, generator_gflop=gflop, peak=peak)


def quality_run(variant, seed):
    """Means of gen_l1 and disc over each --quality_window of the first --quality_steps steps
    on the real data."""
    import keras

    from p2p_tf.datasets import input_pipeline
    from p2p_tf.training.trainer import Trainer
    config = base_config(variant, image_size=_QUALITY_SIZE.value, seed=seed)
    keras.utils.set_random_seed(seed)
    trainer = Trainer(config, total_steps=_QUALITY_STEPS.value)
    batches = iter(input_pipeline.train_dataset(training_examples(config), config))
    sums, means = {'gen_l1': 0.0, 'disc': 0.0}, {'gen_l1': [], 'disc': []}
    for step in range(1, _QUALITY_STEPS.value + 1):
        losses = trainer.train_step(*next(batches))
        for name in sums:
            sums[name] += float(losses[name])
        if step % _QUALITY_WINDOW.value == 0:
            for name in sums:
                means[name].append(sums[name] / _QUALITY_WINDOW.value)
            sums = dict.fromkeys(sums, 0.0)
    return means


def measure_quality():
    runs = {'reference': quality_run('reference', 0), 'fast': quality_run('fast', 0),
            'reference_seed_1': quality_run('reference', 1)}

    def largest_gap(first, second):
        return {name: max(abs(a - b) for a, b in zip(runs[first][name], runs[second][name]))
                for name in ('gen_l1', 'disc')}

    fast_gap, seed_gap = largest_gap('fast', 'reference'), largest_gap('reference_seed_1',
                                                                      'reference')
    return dict(window_means=runs, fast_vs_reference=fast_gap, seed_1_vs_seed_0=seed_gap,
                passed=all(fast_gap[name] <= seed_gap[name] for name in fast_gap))


def measure_profile():
    """The matmul peak, then the traced step of each of --profile_variants, in one process."""
    from p2p_tf.experiments import speed_profile
    return speed_profile.profile_variants(
        _PROFILE_VARIANTS.value, base_config, [int(n) for n in _MATMUL_SIZES.value],
        _PROFILE_STEPS.value, _WARMUP_STEPS.value, _WINDOWS.value)


def run_case(case):
    """One measurement in this process -> its figures and this process's peak memory."""
    if case.startswith('train:'):
        result = measure_training(case.split(':', 1)[1], real_data=False)
    elif case == 'train_loop':
        result = measure_loop()
    elif case == 'train_real_data':
        result = measure_training('fast', real_data=True)
    elif case == 'pipeline':
        result = measure_pipeline()
    elif case == 'inference':
        result = measure_inference()
    elif case == 'quality':
        result = measure_quality()
    elif case == 'profile':
        result = measure_profile()
    elif case == 'train_interleaved':
        from p2p_tf.experiments import interleaved_steps
        result = interleaved_steps.measure(train_variants(), base_config, _WINDOWS.value,
                                           _STEPS_PER_WINDOW.value, _WARMUP_STEPS.value)
    else:
        raise UserError(f'unknown case {case!r}')
    result['peak_rss_mb'] = peak_rss_mb()
    return result


def run_in_subprocess(case):
    """Runs one case in a fresh interpreter with this command's flags; returns its JSON."""
    argv = [a for a in sys.argv[1:] if not a.startswith(('--json', '--case'))]
    command = [sys.executable, '-m', 'p2p_tf.benchmark', f'--case={case}'] + argv
    print(f'measuring {case} ...', file=sys.stderr, flush=True)
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise UserError(f'measuring {case} failed:\n{done.stderr.strip()[-3000:]}')
    return json.loads(done.stdout.strip().splitlines()[-1])


def train_variants():
    return ['reference'] + [v for v in _VARIANTS.value if v != 'reference']


def collect():
    """Runs every requested measurement; returns the report dict."""
    unknown = sorted(set(_VARIANTS.value + _PROFILE_VARIANTS.value) - set(VARIANTS)) + sorted(
        set(_SECTIONS.value) - set(SECTIONS))
    if unknown:
        raise UserError(f'unknown variant or section {unknown[0]!r}')
    results = {}
    if 'train' in _SECTIONS.value:
        results['train'] = {v: run_in_subprocess(f'train:{v}') for v in train_variants()}
    for section in SECTIONS[1:]:
        if section in _SECTIONS.value:
            results[section] = run_in_subprocess(section)
    benchmark_report.add_ratios(results)
    config = base_config()
    settings = dict(image_size=config.image_size, batch_size=config.batch_size,
                    generator_filters=config.generator_filters,
                    discriminator_filters=config.discriminator_filters,
                    dataset=config.dataset, warmup_steps=_WARMUP_STEPS.value,
                    windows=_WINDOWS.value, steps_per_window=_STEPS_PER_WINDOW.value,
                    **(dict(quality_size=_QUALITY_SIZE.value, quality_steps=_QUALITY_STEPS.value,
                            quality_window=_QUALITY_WINDOW.value)
                       if 'quality' in _SECTIONS.value else {}))
    report = dict(command=' '.join(['python -m p2p_tf.benchmark'] + sys.argv[1:]),
                  date=time.strftime('%Y-%m-%d %H:%M:%S %Z'),
                  machine=benchmark_report.machine(), settings=settings, results=results)
    if 'profile' in results:
        # At the top level: profile.fast.fraction_of_peak and so on.
        report['profile'] = results.pop('profile')
    return report


def main():
    if _CASE.value:
        print(json.dumps(run_case(_CASE.value)))
        return
    report = collect()
    print('\n'.join(benchmark_report.table(report)))
    if _JSON.value:
        with open(_JSON.value, 'w') as f:
            json.dump(report, f, indent=2)
        print(f'wrote {_JSON.value}')


def run():
    cli.run(main)


if __name__ == '__main__':
    run()
