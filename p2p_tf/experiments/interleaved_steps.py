"""Training variants timed side by side in one process, in alternating windows: on a shared
machine whose speed drifts, the variants' ratios hold where rates measured one after another in
separate processes (the benchmark's train section) can swap order from run to run."""

import statistics
import time


def alternating_windows(steps, rounds, steps_per_window, warmup):
    """{name: [seconds per step in each window]} for `steps`, {name: a call that runs one
    training step and waits for it}. Each round times one window of each, in the given order
    in even rounds and the reverse order in odd ones."""
    for step in steps.values():
        for _ in range(warmup):
            step()
    windows = {name: [] for name in steps}
    for index in range(rounds):
        for name in (list(steps) if index % 2 == 0 else list(steps)[::-1]):
            start = time.perf_counter()
            for _ in range(steps_per_window):
                steps[name]()
            windows[name].append((time.perf_counter() - start) / steps_per_window)
    return windows


def measure(variants, make_config, rounds, steps_per_window, warmup):
    """Every variant's trainer on the same synthetic batch, timed by alternating_windows:
    {variant: {step_seconds (median), images_per_second, windows, speed_ratio to the first}}."""
    from p2p_tf.experiments.random_batches import trainer_and_random_batch
    steps = {}
    for variant in variants:
        config = make_config(variant)
        trainer, inputs, targets = trainer_and_random_batch(config)
        steps[variant] = (lambda trainer=trainer, inputs=inputs, targets=targets:
                          float(trainer.train_step(inputs, targets)['gen_total']))
        batch_size = config.batch_size
    windows = alternating_windows(steps, rounds, steps_per_window, warmup)
    results = {}
    for variant, seconds in windows.items():
        median = statistics.median(seconds)
        results[variant] = dict(step_seconds=median, images_per_second=batch_size / median,
                                windows=seconds)
    first = results[variants[0]]['step_seconds']
    for figures in results.values():
        figures['speed_ratio'] = first / figures['step_seconds']
    return results
