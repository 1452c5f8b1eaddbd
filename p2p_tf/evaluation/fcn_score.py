"""The paper's FCN-score (Isola et al. 2017, Sec. 4.2) without Caffe: a segmentation network
trained on real photos judges generated ones by how well it recovers their labels.

Labels -> photo is scored by translating a split's label maps, segmenting the generated photos
and comparing the predicted classes with the ground truth: per-pixel accuracy, per-class
accuracy and class IoU. The same scores on the real photos are the ceiling (the paper's
"ground truth" row). The segmenter is p2p_tf/nets/segmenter.py, trained by
p2p_tf/training/scorer_training.py; label colours become classes in
p2p_tf/datasets/label_maps.py.

`score_run` / `score_real` / `fcn_report` are what `python -m p2p_tf.fcn_score evaluate` runs.
"""

import os

import numpy as np
import tensorflow as tf

from p2p_tf import image_sizes, workdirs
from p2p_tf.datasets import examples as examples_lib
from p2p_tf.datasets import label_maps, preprocessing
from p2p_tf.errors import UserError
from p2p_tf.nets import generation, segmenter


def load_scorer(fcn_dir):
    """The trained segmenter in fcn_dir and its resolved config: (model, config). UserError
    if there is none or its training is unfinished."""
    config = workdirs.read_scorer_config(fcn_dir)
    model, step = segmenter.scorer_variables(config)
    folder = workdirs.checkpoints_dir(fcn_dir)
    path = tf.train.latest_checkpoint(folder)
    if not path:
        raise UserError(f'no scorer checkpoint in {folder}; train it with '
                        f'`python -m p2p_tf.fcn_score train --fcn_dir={fcn_dir}`')
    tf.train.Checkpoint(model=model, step=step).restore(path).expect_partial() \
        .assert_existing_objects_matched()
    if int(step) < config.steps:
        raise UserError(f'the scorer in {fcn_dir} is trained to step {int(step)} of '
                        f'{config.steps}; run `python -m p2p_tf.fcn_score train '
                        f'--fcn_dir={fcn_dir}` again to finish it')
    return model, config


def confusion_matrix(truth, predicted, num_classes):
    """Counts int64 [K, K] (rows: true class 1..K, columns: predicted class 1..K) of the
    pixels whose true class is not label_maps.VOID. truth, predicted: int [...] of the same
    shape."""
    truth, predicted = np.asarray(truth).ravel(), np.asarray(predicted).ravel()
    valid = truth != label_maps.VOID
    pairs = (truth[valid].astype(np.int64) - 1) * num_classes + predicted[valid] - 1
    return np.bincount(pairs, minlength=num_classes ** 2).reshape(num_classes, num_classes)


def scores_from_confusion(confusion, names):
    """The paper's three FCN-scores from a confusion matrix [K, K] (rows: truth): per-pixel
    accuracy, per-class accuracy (mean over the classes present in the truth of their recall)
    and class IoU (mean over the classes present in truth or prediction), with per_class_iou
    {class name: IoU, or None for a class in neither}; all in [0, 1]."""
    confusion = np.asarray(confusion, np.float64)
    hits, true_counts, predicted_counts = (np.diag(confusion), confusion.sum(axis=1),
                                           confusion.sum(axis=0))
    union = true_counts + predicted_counts - hits
    with np.errstate(invalid='ignore', divide='ignore'):
        recall, iou = hits / true_counts, hits / union
    total = confusion.sum()
    return dict(
        per_pixel_accuracy=float(hits.sum() / total) if total else 0.0,
        per_class_accuracy=float(np.nanmean(recall)) if true_counts.any() else 0.0,
        class_iou=float(np.nanmean(iou)) if union.any() else 0.0,
        per_class_iou={name: None if np.isnan(value) else float(value)
                       for name, value in zip(names, iou)})


def predict_classes(model, photos):
    """uint8 [batch, S, S, 3] photos -> int32 [batch, S, S] classes 1..K."""
    logits = model(preprocessing.to_unit_range(photos), training=False)
    return tf.argmax(logits, axis=-1, output_type=tf.int32) + 1


def score_photos(model, config, examples, photo_for):
    """Segments one photo per example and scores it against the example's true classes.

    photo_for(labels, photo): full-size uint8 [H, W, 3] label colours and real photo -> the
    uint8 [S, S, 3] photo to segment. Returns the scores dict of score_real.
    """
    num_classes = len(label_maps.PALETTES[config.palette])
    confusion = np.zeros([num_classes, num_classes], np.int64)
    off_palette = []
    for labels, photo in label_maps.read_pairs(examples, config.direction):
        classes, off = label_maps.true_classes(labels, config, config.image_size)
        predicted = predict_classes(model, photo_for(labels, photo)[tf.newaxis])[0]
        confusion += confusion_matrix(classes, predicted, num_classes)
        off_palette.append(int(off))
    if not off_palette:
        raise UserError('the split has no images to score')
    return dict(scores_from_confusion(confusion, label_maps.class_names(config.palette)),
                images=len(off_palette), off_palette_pixels=sum(off_palette),
                off_palette_images=int(np.count_nonzero(off_palette)))


def score_real(fcn_dir: str, split: str = 'val', data_dir: str | None = None) -> dict:
    """FCN-scores of the real photos of `split` (the paper's "ground truth" row): dict with
    per_pixel_accuracy, per_class_accuracy, class_iou (floats in [0, 1]), per_class_iou
    ({class name: float, or None where the class is in neither truth nor prediction}),
    images, off_palette_pixels, off_palette_images (counts)."""
    model, config = load_scorer(fcn_dir)
    examples = examples_lib.split_examples(config, split, data_dir)
    return score_photos(model, config, examples,
                        lambda labels, photo: preprocessing.resize(photo, config.image_size))


def score_run(fcn_dir: str, workdir: str, split: str = 'val', data_dir: str | None = None,
              checkpoint: str | None = None, mode: str = 'paper') -> dict:
    """FCN-scores of a labels -> photo run's translations of `split` (dict as score_real).

    Each label map is resized to the run's image size and translated alone (batch 1: paper
    mode normalises with the batch's statistics), with dropout seeded by the run's seed so the
    scores are reproducible; the output is resized to the scorer's size if it differs.
    workdir, checkpoint: as workdirs.find_checkpoint; mode: 'paper' or 'eval'.
    """
    model, config = load_scorer(fcn_dir)
    generator, run_config = workdirs.load_generator(os.fspath(workdir), checkpoint)
    if run_config.output_channels != 3:
        raise UserError(f'the run in {workdir} makes {run_config.output_channels}-channel '
                        'images; the scorer segments RGB photos')
    if run_config.dataset == config.dataset and run_config.direction != config.direction:
        raise UserError(f'the run in {workdir} translates photos to labels '
                        f'({run_config.direction}); the FCN-score judges labels -> photo '
                        f'({config.direction})')
    generation.check_mode(mode)
    examples = examples_lib.split_examples(config, split, data_dir)
    translate = tf.function(lambda inputs: generation.generate(generator, inputs, mode))

    def generated_photo(labels, photo):
        # At the size the run is evaluated at, then at the scorer's.
        inputs = preprocessing.resize(preprocessing.to_channels(labels, run_config.input_channels),
                                      image_sizes.eval_shape(run_config))
        generated = preprocessing.to_uint8(
            translate(preprocessing.to_unit_range(inputs)[tf.newaxis])[0])
        if image_sizes.eval_shape(run_config) == (config.image_size, config.image_size):
            return generated
        return preprocessing.resize(generated, config.image_size)

    with generation.seeded_dropout(generator, run_config.seed):
        return score_photos(model, config, examples, generated_photo)


def fcn_report(fcn_dir: str, workdir: str, split: str = 'val', data_dir: str | None = None,
               checkpoint: str | None = None, mode: str = 'paper') -> dict:
    """score_run of a run and score_real of the same split, with what was scored: dict with
    workdir, checkpoint, step, objective (the run's Table 1 row name), dataset, split, mode,
    image_size (the scorer's), run and ground_truth (scores dicts), table (format_table)."""
    workdir, path = workdirs.find_checkpoint(os.fspath(workdir), checkpoint)
    config = workdirs.read_scorer_config(fcn_dir)
    run_scores = score_run(fcn_dir, workdir, split, data_dir, path, mode)
    truth = score_real(fcn_dir, split, data_dir)
    objective = objective_name(workdirs.read_config(workdir))
    return dict(workdir=workdir, checkpoint=path, step=workdirs.checkpoint_step(path),
                objective=objective, dataset=config.dataset, split=split, mode=mode,
                image_size=config.image_size, run=run_scores, ground_truth=truth,
                table=format_table([(objective, run_scores), (GROUND_TRUTH_ROW, truth)]))


def format_report(report):
    """The console summary of an fcn_report: what was scored, the table, off-palette counts."""
    run, truth = report['run'], report['ground_truth']
    return '\n'.join([
        f'FCN-scores of {report["workdir"]} (step {report["step"]}, {report["mode"]} mode) on '
        f'{report["dataset"]} {report["split"]}: {run["images"]} images segmented at '
        f'{image_sizes.size_text(report["image_size"])}',
        report['table'],
        f'{truth["off_palette_pixels"]} off-palette label pixel(s) in '
        f'{truth["off_palette_images"]} image(s), left out of the scores'])


def objective_name(run_config):
    """The paper's Table 1 name of a run's loss: 'L1', 'cGAN' or 'L1+cGAN'."""
    if not run_config.gan_weight:
        return 'L1'
    return 'L1+cGAN' if run_config.l1_weight else 'cGAN'


GROUND_TRUTH_ROW = 'Ground truth'  # The real photos' row of Table 1.
TABLE_COLUMNS = (('Per-pixel acc.', 'per_pixel_accuracy'),
                 ('Per-class acc.', 'per_class_accuracy'), ('Class IOU', 'class_iou'))


def format_table(rows):
    """The layout of the paper's Table 1 as a Markdown table, scores to two decimals.

    rows: [(name, scores dict as score_run returns), ...], e.g. ('L1+cGAN', ...),
    ('Ground truth', ...).
    """
    width = max([len('Loss')] + [len(name) for name, _ in rows])
    header = [f'{"Loss":<{width}}'] + [title for title, _ in TABLE_COLUMNS]
    lines = ['| ' + ' | '.join(header) + ' |',
             '|' + '|'.join('-' * (len(cell) + 1) + ('-' if i == 0 else ':')
                            for i, cell in enumerate(header)) + '|']
    for name, scores in rows:
        cells = [f'{name:<{width}}'] + [f'{scores[key]:>{len(title)}.2f}'
                                        for title, key in TABLE_COLUMNS]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)
