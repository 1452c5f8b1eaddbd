"""Measuring translation quality: L1, PSNR and SSIM (metrics.py) of a generator's outputs
against the targets of a held-out split, per image and overall.

`evaluate_run(workdir, ...)` is what `python -m p2p_tf.evaluate` runs: it restores a run's
generator, scores a split of its dataset and writes metrics.json and a contact sheet. Training
scores its generator with the same `Evaluator` every eval_every steps (p2p_tf/training/periodic.py).

Each image is translated alone, as in the paper (batch 1): in 'paper' mode BatchNorm normalises
with the statistics of the batch being translated, so in a batch of several each output would
depend on the other images. The dropout of paper mode draws from states seeded by the run's seed,
so scoring the same checkpoint twice gives the same numbers.
"""

import dataclasses
import json
import os

import numpy as np
import tensorflow as tf

from p2p_tf import config as config_lib
from p2p_tf import image_sizes, workdirs
from p2p_tf.datasets import examples as examples_lib
from p2p_tf.datasets import image_files, input_pipeline
from p2p_tf.errors import UserError
from p2p_tf.evaluation import metrics
from p2p_tf.nets import generation, images

METRICS_FILENAME = 'metrics.json'
SHEET_FILENAME = 'contact_sheet.png'
# The table lists this many images with the worst L1.
WORST_SHOWN = 5


@dataclasses.dataclass
class Scores:
    """What one evaluation measured.

    per_image: {metric name: float64 numpy [count]} for metrics.METRIC_NAMES, in example order.
    sheet: float32 numpy [rows, S, 3S, 3] in [-1, 1]: input | output | target of the first
    images (rows may be 0).
    """
    per_image: dict
    sheet: np.ndarray

    @property
    def count(self):
        return len(self.per_image[metrics.L1])

    def overall(self):
        """{metric name: mean over the images}."""
        return {name: float(np.mean(values)) for name, values in self.per_image.items()}


class Evaluator:
    """Scores one generator on paired examples, one image per call; keeps the traced function
    so that repeated evaluations (every eval_every steps in training) trace once.

    mode: 'paper' or 'eval' (p2p_tf/nets/generation.py); seed: the dropout seed of paper mode.
    """

    def __init__(self, generator, mode='paper', seed=0):
        generation.check_mode(mode)
        self.generator, self.mode, self.seed = generator, mode, seed
        self._traced_translate_and_score = tf.function(self.translate_and_score)

    def translate_and_score(self, inputs, targets):
        """inputs [1, S, S, C_in], targets [1, S, S, C_out], float32 in [-1, 1] -> (outputs
        [1, S, S, C_out] in [-1, 1], {metric name: float32 [1]})."""
        outputs = generation.generate(self.generator, inputs, self.mode)
        return outputs, metrics.image_metrics(outputs, targets)

    def __call__(self, examples, config, max_images=0, sheet_images=0):
        """Scores the generator's translations of `examples` (as for
        input_pipeline.eval_dataset: resized to the eval size, no jitter); max_images > 0:
        only the first max_images. Returns Scores with a contact sheet of the first
        sheet_images. The generator's variables are left as they were."""
        dataset = input_pipeline.eval_dataset(examples, config, batch_size=1)
        if max_images:
            dataset = dataset.take(max_images)
        per_image = {name: [] for name in metrics.METRIC_NAMES}
        rows = []
        with generation.seeded_dropout(self.generator, self.seed):
            for inputs, targets in dataset:
                outputs, values = self._traced_translate_and_score(inputs, targets)
                for name, value in values.items():
                    per_image[name].append(float(value[0]))
                if len(rows) < sheet_images:
                    rows.append(np.asarray(images.side_by_side(inputs, outputs, targets)[0]))
        height, width = image_sizes.eval_shape(config)
        sheet = np.stack(rows) if rows else np.zeros([0, height, 3 * width, 3], np.float32)
        return Scores({name: np.array(values) for name, values in per_image.items()}, sheet)


def example_names(examples, count):
    """Names of the first `count` examples: the file name of a side-by-side pair or of the A
    side of separate images, or a TFDS record's file_name."""
    if isinstance(examples, (list, tuple)):
        return [os.path.basename(example if isinstance(example, str) else example[0])
                for example in examples[:count]]
    return [examples[i]['file_name'].decode() for i in range(count)]


def default_output_dir(workdir, split, step, mode='paper', dataset=None, max_images=0):
    """WORKDIR/eval/[DATASET-]SPLIT-stepN[-eval][-firstN], naming only what differs from the
    defaults (the run's dataset, paper mode, every image), so other evaluations of a step do
    not overwrite the default one."""
    parts = ([dataset] if dataset else []) + [split, f'step{step}']
    parts += ([mode] if mode != 'paper' else []) + ([f'first{max_images}'] if max_images else [])
    return os.path.join(workdir, workdirs.EVAL, '-'.join(parts))


def evaluate_run(workdir: str, split: str | None = None, dataset: str | None = None,
                 data_dir: str | None = None, checkpoint: str | None = None, mode: str = 'paper',
                 max_images: int = 0, sheet_images: int = 8,
                 output_dir: str | None = None, overwrite: bool = False) -> dict:
    """Scores a training run's generator on one split and writes METRICS_FILENAME (and
    SHEET_FILENAME when sheet_images > 0) into output_dir. Returns the report written to the
    JSON: run facts (workdir, checkpoint, step, dataset, split, mode, image_size, count, ...),
    `overall` ({metric: mean}) and `images` ([{name, l1, psnr, ssim}, ...] in split order).

    workdir, checkpoint: as workdirs.find_checkpoint (checkpoint 'best': WORKDIR/best);
    split: None for the split training evaluates (config.eval_split; AUTO: val, else test);
    dataset, data_dir: another dataset than the run's (e.g. 'folder' with a data_dir);
    max_images: 0 for all of the split; output_dir: None for default_output_dir(...), which
    each evaluation of the same step and settings refreshes; an explicit output_dir that holds
    files already is a UserError unless `overwrite`.
    """
    if output_dir and not overwrite and os.path.isdir(output_dir) and os.listdir(output_dir):
        raise UserError(f'{output_dir} holds files already; pass --overwrite to write the '
                        'evaluation there anyway, or choose another --output')
    workdir, path = workdirs.find_checkpoint(workdir, checkpoint)
    generator, config = workdirs.load_generator(workdir, path)
    other_dataset = dataset if dataset and dataset != config.dataset else None
    if other_dataset:
        config_lib.dataset_facts(other_dataset)  # An unknown name is an error.
        config.dataset = other_dataset
    split = split or examples_lib.resolve_eval_split(config, data_dir)
    if split is None:
        raise UserError(f'{config.dataset} has no val or test split; name one with --split')
    examples = examples_lib.split_examples(config, split, data_dir)
    if isinstance(examples, list):
        image_files.check_examples(examples[:max_images or None], min_side=1)
    try:
        scores = Evaluator(generator, mode, config.seed)(examples, config, max_images,
                                                         sheet_images)
    except tf.errors.InvalidArgumentError:
        bad = image_files.undecodable_example(examples[:max_images or None]
                                           if isinstance(examples, list) else examples)
        if bad:  # A header can be fine while the data is truncated.
            raise UserError(f'cannot decode image {bad[0]}: {bad[1]}') from None
        raise
    names = example_names(examples, scores.count)
    step = workdirs.checkpoint_step(path)
    report = dict(
        workdir=workdir, checkpoint=path, step=step, dataset=config.dataset, data_dir=data_dir,
        split=split, direction=config.direction, mode=mode, seed=config.seed,
        image_size=image_sizes.canonical_size(image_sizes.eval_shape(config)),
        count=scores.count, overall=scores.overall(),
        images=[dict(name=name, **{metric: float(scores.per_image[metric][i])
                                   for metric in metrics.METRIC_NAMES})
                for i, name in enumerate(names)])
    output_dir = output_dir or default_output_dir(workdir, split, step, mode, other_dataset,
                                                  max_images)
    os.makedirs(output_dir, exist_ok=True)
    with open(os.path.join(output_dir, METRICS_FILENAME), 'w') as f:
        json.dump(report, f, indent=2)
        f.write('\n')
    if len(scores.sheet):
        images.write_png(np.concatenate(scores.sheet, axis=0),
                         os.path.join(output_dir, SHEET_FILENAME))
    report['output_dir'] = output_dir
    return report


def format_report(report, worst=WORST_SHOWN):
    """The console summary of an evaluate_run report: the run facts, mean / median / min / max
    of each metric, and the `worst` images by L1."""
    lines = [f'{report["count"]} {report["split"]} images of {report["dataset"]}, step '
             f'{report["step"]} ({report["checkpoint"]}), {report["mode"]} mode, '
             f'{image_sizes.size_text(report["image_size"])}',
             f'{"metric":<8}{"better":>8}{"mean":>10}{"median":>10}{"min":>10}{"max":>10}']
    for name in metrics.METRIC_NAMES:
        values = np.array([image[name] for image in report['images']])
        better = 'higher' if metrics.HIGHER_IS_BETTER[name] else 'lower'
        lines.append(f'{name:<8}{better:>8}' + ''.join(
            f'{value:>10.4f}' for value in (report['overall'][name], np.median(values),
                                            values.min(), values.max())))
    by_l1 = sorted(report['images'], key=lambda image: image[metrics.L1], reverse=True)
    lines.append(f'worst {min(worst, len(by_l1))} by l1:')
    lines += [f'  {image["name"]:<24}' + ' '.join(f'{name}={image[name]:.4f}'
                                                 for name in metrics.METRIC_NAMES)
              for image in by_l1[:worst]]
    return '\n'.join(lines)
