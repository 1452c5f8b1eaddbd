"""The paper's loss ablation (Table 1): L1 alone, cGAN alone and L1+cGAN on facades labels ->
photo, each scored by the FCN-score (p2p_tf/evaluation/fcn_score.py) beside the ground-truth row
of real photos.

`run_ablation` is what `python -m p2p_tf.table1` runs. Every stage resumes: a finished run or
scorer in the workdir is reused, so the command can be stopped and started again, and its
report is a pure function of the configs (seeded training and seeded paper-mode translation).
"""

import json
import os

import numpy as np

from p2p_tf import config as config_lib
from p2p_tf import image_sizes, workdirs
from p2p_tf.datasets import examples as examples_lib
from p2p_tf.datasets import input_pipeline
from p2p_tf.errors import UserError
from p2p_tf.evaluation import fcn_score, metrics, scoring
from p2p_tf.nets import generation, images
from p2p_tf.training import pix2pix, scorer_training

SCORER_FOLDER = 'fcn'
REPORT_FILENAME = 'table1.json'
SAMPLES_FILENAME = 'samples.png'
# Tiles of the sample sheet are enlarged (pixels repeated) to at least this width, so a 64x64
# run's images can be looked at.
MIN_TILE_WIDTH = 256


def run_ablation(variant_configs: dict, scorer_config, workdir: str, data_dir: str | None = None,
                 split: str = 'val', sample_images: int = 4, stream=None) -> dict:
    """Trains (or resumes) each variant in WORKDIR/NAME and the scorer in WORKDIR/fcn, scores
    the variants' translations of `split` and the real photos; writes WORKDIR/table1.json and
    WORKDIR/samples.png (rows: input | each variant | target). Returns the report.

    variant_configs: {name: training ConfigDict}, all of one dataset and image size (the
    scorer is trained at that size, so generated and real photos are judged at the size the
    generator produced); scorer_config: the segmenter's ConfigDict (configs/fcn/facades.py).
    """
    resolved = {name: config_lib.resolve(config) for name, config in variant_configs.items()}
    sizes = {config.image_size for config in resolved.values()}
    datasets = {config.dataset for config in resolved.values()}
    if len(sizes) != 1 or len(datasets) != 1:
        raise UserError('the ablation variants must share one dataset and image size, got '
                        f'{sorted(datasets)} and {sorted(sizes)}')
    scorer_config = scorer_config.copy_and_resolve_references()
    scorer_config.image_size = sizes.pop()
    os.makedirs(workdir, exist_ok=True)
    for name, config in variant_configs.items():
        pix2pix.train(config, os.path.join(workdir, name), data_dir, stream)
    scorer_dir = os.path.join(workdir, SCORER_FOLDER)
    scorer_training.train_scorer(scorer_config, scorer_dir, data_dir, stream)

    rows, variants = [], {}
    # Rows are named by their objective (the paper's Table 1), or by variant name when the
    # variants share an objective and differ in other options.
    objectives = {name: fcn_score.objective_name(config) for name, config in resolved.items()}
    distinct = len(set(objectives.values())) == len(objectives)
    for name, config in resolved.items():
        run = os.path.join(workdir, name)
        scores = fcn_score.score_run(scorer_dir, run, split, data_dir)
        quality = scoring.evaluate_run(run, split, data_dir=data_dir, sheet_images=0)
        row = objectives[name] if distinct else name
        variants[name] = dict(
            row=row, fcn_scores=scores, image_metrics=quality['overall'], step=quality['step'],
            l1_weight=config.l1_weight, gan_weight=config.gan_weight)
        rows.append((row, scores))
    ground_truth = fcn_score.score_real(scorer_dir, split, data_dir)
    rows.append((fcn_score.GROUND_TRUTH_ROW, ground_truth))

    write_samples(list(resolved), workdir, split, data_dir, sample_images)
    report = dict(split=split, dataset=datasets.pop(), image_size=scorer_config.image_size,
                  variants=variants, ground_truth=ground_truth,
                  scorer=scorer_config.to_dict(), table=fcn_score.format_table(rows),
                  image_metric_names=list(metrics.METRIC_NAMES))
    with open(os.path.join(workdir, REPORT_FILENAME), 'w') as f:
        json.dump(report, f, indent=2)
        f.write('\n')
    return report


def write_samples(names, workdir, split, data_dir, count):
    """WORKDIR/samples.png: for the first `count` images of the split, input | each run's
    paper-mode translation | target, one row per image, each tile enlarged to at least
    MIN_TILE_WIDTH pixels."""
    config = workdirs.read_config(os.path.join(workdir, names[0]))
    examples = examples_lib.split_examples(config, split, data_dir)
    pairs = list(input_pipeline.eval_dataset(examples, config).take(count))
    outputs = []
    for name in names:
        generator, run_config = workdirs.load_generator(os.path.join(workdir, name))
        # Dropout seeded the way scoring seeds it (generation.seeded_dropout).
        with generation.seeded_dropout(generator, run_config.seed):
            outputs.append(np.concatenate([generation.generate(generator, inputs, 'paper')
                                           for inputs, _ in pairs], axis=0))
    inputs, targets = (np.concatenate(side, axis=0) for side in zip(*pairs))
    strip = np.concatenate(list(images.side_by_side(inputs, *outputs, targets)), axis=0)
    enlarge = -(-MIN_TILE_WIDTH // image_sizes.eval_shape(config)[1])
    strip = np.repeat(np.repeat(strip, enlarge, axis=0), enlarge, axis=1)
    images.write_png(strip, os.path.join(workdir, SAMPLES_FILENAME))


def format_report(report):
    """The console summary: the Table 1 layout, then L1 / PSNR / SSIM of each variant."""
    lines = [f'FCN-scores on {report["dataset"]} {report["split"]} at '
             f'{image_sizes.size_text(report["image_size"])}', report['table'], '',
             f'{"Loss":<10}{"step":>7}' + ''.join(f'{name:>9}'
                                                 for name in report['image_metric_names'])]
    for variant in report['variants'].values():
        lines.append(f'{variant["row"]:<10}{variant["step"]:>7}' + ''.join(
            f'{variant["image_metrics"][name]:>9.4f}' for name in report['image_metric_names']))
    return '\n'.join(lines)
