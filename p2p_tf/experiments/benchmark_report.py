"""What `python -m p2p_tf.benchmark` reports besides its measurements: the machine that ran
it, every speed as a ratio to the reference measured in the same run, and the printed table."""

import os
import platform


def machine():
    """What ran the benchmark: CPU model, cores, GPUs, library versions."""
    import keras
    import tensorflow as tf

    import p2p_tf
    from p2p_tf.training import performance
    model = platform.processor()
    try:
        with open('/proc/cpuinfo') as cpuinfo:
            model = next((line.split(':', 1)[1].strip() for line in cpuinfo
                          if line.startswith('model name')), model)
    except OSError:
        pass
    gpus = [tf.config.experimental.get_device_details(gpu).get('device_name', gpu.name)
            for gpu in tf.config.list_physical_devices('GPU')]
    flags_of_note = ('avx2', 'avx512f', 'avx512_bf16', 'amx_bf16', 'amx_tile')
    return dict(cpu=model, cpu_cores=os.cpu_count(),
                cpu_flags=[f for f in flags_of_note if f in performance.cpu_flags()],
                gpus=gpus, python=platform.python_version(), tensorflow=tf.__version__,
                keras=keras.__version__, p2p_tf=p2p_tf.__version__)


def add_ratios(results):
    """Speed and memory relative to the reference (and the pipeline relative to training)."""
    reference = results.get('train', {}).get('reference')
    for figures in list(results.get('train', {}).values()) + [results.get('train_real_data')]:
        if figures and reference:
            figures['speed_ratio'] = figures['images_per_second'] / reference['images_per_second']
            figures['memory_ratio'] = figures['peak_rss_mb'] / reference['peak_rss_mb']
    consumer = results.get('train_real_data') or results.get('train', {}).get('fast')
    if 'pipeline' in results and consumer:
        results['pipeline']['ratio_to_training'] = (
            results['pipeline']['images_per_second'] / consumer['images_per_second'])
    loop = results.get('train_loop')
    bare = results.get('train', {}).get('fast')
    if loop and bare:
        loop['ratio_to_bare_steps'] = loop['images_per_second'] / bare['images_per_second']
    inference = results.get('inference')
    if inference:
        eager = inference['latency']['eager_training_call']['milliseconds']
        for figures in inference['latency'].values():
            figures['speedup_over_eager'] = eager / figures['milliseconds']


def table(report):
    """The report as aligned text lines."""
    results = report['results']
    lines = [f"{report['machine']['cpu']}, {report['machine']['cpu_cores']} cores"
             + (f", GPU: {', '.join(report['machine']['gpus'])}" if report['machine']['gpus']
                else ', no GPU')
             + f"; TensorFlow {report['machine']['tensorflow']}",
             f"{report['settings']['image_size']}x{report['settings']['image_size']}, batch "
             f"{report['settings']['batch_size']}", '',
             f"{'measurement':34} {'speed':>14} {'vs reference':>13} {'peak memory':>12}"]

    def row(name, speed, ratio, memory):
        ratio = f'{ratio:.2f}x' if ratio is not None else ''
        lines.append(f'{name:34} {speed:>14} {ratio:>13} {memory:>9.0f} MB')

    for variant, figures in results.get('train', {}).items():
        label = f"train {variant} ({figures['precision']}, xla {figures['xla']})"
        row(label[:34], f"{figures['images_per_second']:.3f} img/s",
            figures.get('speed_ratio'), figures['peak_rss_mb'])
    interleaved = results.get('train_interleaved', {})
    for variant, figures in interleaved.items():
        if isinstance(figures, dict):  # Not the case's peak memory.
            row(f'interleaved {variant}'[:34], f"{figures['images_per_second']:.3f} img/s",
                figures['speed_ratio'], interleaved['peak_rss_mb'])
    if 'train_real_data' in results:
        figures = results['train_real_data']
        row('train fast, real data', f"{figures['images_per_second']:.3f} img/s",
            figures.get('speed_ratio'), figures['peak_rss_mb'])
    if 'train_loop' in results:
        figures = results['train_loop']
        row('train fast, the real step loop', f"{figures['images_per_second']:.3f} img/s",
            figures.get('speed_ratio'), figures['peak_rss_mb'])
        if 'ratio_to_bare_steps' in figures:
            lines.append(f"{'':34} {figures['ratio_to_bare_steps']:.3f}x the bare steps")
    if 'pipeline' in results:
        figures = results['pipeline']
        row('input pipeline alone', f"{figures['images_per_second']:.0f} img/s", None,
            figures['peak_rss_mb'])
        if 'ratio_to_training' in figures:
            lines.append(f"{'':34} {figures['ratio_to_training']:.0f}x what training consumes")
    for name, figures in results.get('inference', {}).get('latency', {}).items():
        lines.append(f"{'inference ' + name:34} {figures['milliseconds']:>11.1f} ms "
                     f"{figures['speedup_over_eager']:>7.2f}x eager "
                     f"{figures['fraction_of_peak']:>5.0%} of peak")
    if 'inference' in results:
        inference = results['inference']
        lines.append(f"{'':34} (inference peak memory {inference['peak_rss_mb']:.0f} MB, all "
                     f"four in one process; {inference['generator_gflop']:.1f} GFLOP per image "
                     f"against the {inference['peak']['gflops']:.1f} GFLOP/s matmul peak)")
    quality = results.get('quality')
    if quality:
        settings = report['settings']
        lines.append(f"quality, {settings['quality_steps']} steps at {settings['quality_size']}"
                     f"x{settings['quality_size']}, largest gap between "
                     f"{settings['quality_window']}-step loss means:")
        for name in ('gen_l1', 'disc'):
            lines.append(f"  {name:8} fast vs reference {quality['fast_vs_reference'][name]:.4f}"
                         f"; reference seed 1 vs seed 0 {quality['seed_1_vs_seed_0'][name]:.4f}")
        lines.append(f"  {'passed' if quality['passed'] else 'FAILED'}: the fast run stays as "
                     'close to the reference as a reseeded reference')
    if 'profile' in report:
        lines += [''] + profile_table(report['profile'])
    return lines


def profile_table(profile):
    """The profile section as lines: the peak, then per variant its step and its rows."""
    peak = profile['peak']
    lines = [f"float32 matmul peak {peak['gflops']:.1f} GFLOP/s (best of "
             + ', '.join(f'{n}: {rate:.1f}' for n, rate in peak['by_size'].items()) + ')'
             + ''.join(f'; {dtype} {rate:.1f}' for dtype, rate in peak.get('by_dtype', {}).items()
                       if dtype != 'float32')]
    for variant, figures in profile.items():
        if variant == 'peak' or not isinstance(figures, dict):
            continue  # The peak, or the case's peak memory.
        lines += ['', f"{variant}: step {figures['step_seconds'] * 1000:.0f} ms (traced "
                  f"{figures['traced_step_seconds'] * 1000:.0f} ms), "
                  f"{figures['gflop_per_step']:.1f} GFLOP of convolutions, "
                  f"{figures['fraction_of_peak']:.0%} of the peak"
                  + (f" ({figures['fraction_of_precision_peak']:.0%} of the "
                     f"{figures['compute_dtype']} peak)"
                     if figures.get('compute_dtype', 'float32') != 'float32' else '')
                  + "; the rows add up to "
                  f"{figures['accounted_to_measured']:.0%} of the step",
                  f"  {'convolution':48} {'pass':15} {'calls':>5} {'GFLOP':>7} {'ms':>8} "
                  f"{'GFLOP/s':>8} {'of peak':>7} {'share':>6}"]
        for row in figures['rows']:
            lines.append(f"  {row['layer'][:48]:48} {row['pass']:15} {row['calls']:>5.0f} "
                         f"{row['gflop']:>7.3f} {row['seconds'] * 1000:>8.1f} "
                         f"{row['gflops']:>8.1f} {row['fraction_of_peak']:>7.0%} "
                         f"{row['share_of_step']:>6.1%}")
        for name, seconds in sorted(figures['other'].items(), key=lambda item: -item[1]):
            lines.append(f"  {name[:64]:64} {seconds * 1000:>8.1f} {'':>8} {'':>7} "
                         f"{figures['other_shares'][name]:>6.1%}")
    return lines
