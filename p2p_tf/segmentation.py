"""The paper's FCN-score (Isola et al. 2017, Sec. 4.2) without Caffe: a small segmentation
network trained on real photos judges generated ones by how well it recovers their labels.

Labels -> photo is scored by translating a split's label maps, segmenting the generated photos
and comparing the predicted classes with the ground truth: per-pixel accuracy, per-class
accuracy and class IoU. The same scores on the real photos are the ceiling (the paper's
"ground truth" row). The paper used an FCN-8s trained on Cityscapes; here a compact U-Net
(`segmentation_unet`) is trained on the dataset's own training photos, in minutes on a CPU.

The classes come from the colour-coded label half of each side-by-side pair, mapped to the
nearest palette colour (`colours_to_classes`) at the file's full resolution: a bilinearly
resized label image holds blends of two colours that can land near a third. Pixels far from
every palette colour are off-palette: counted, reported and left out of the scores (VOID).

`train_scorer` and `score_run` / `score_real` are what `python -m p2p_tf.fcn_score train` and
`... evaluate` run. The scorer's folder (fcn_dir) holds its resolved config (config.json) and
its checkpoints.
"""

import difflib
import json
import math
import os

import keras
import ml_collections
import numpy as np
import tensorflow as tf

from p2p_tf import config as config_lib
from p2p_tf import inference, input_pipeline, models, preprocessing, serving, training
from p2p_tf.errors import UserError
from p2p_tf.progress import Progress

# Class names and label colours, in class order 1, 2, ...; class 0 is VOID.
PALETTES = {
    # CMP Facade Database: label_names.txt and the colours of its PNG palette.
    'facades': (
        ('background', (0, 0, 170)),
        ('facade', (0, 0, 255)),
        ('window', (0, 85, 255)),
        ('door', (0, 170, 255)),
        ('cornice', (0, 255, 255)),
        ('sill', (85, 255, 170)),
        ('balcony', (170, 255, 85)),
        ('blind', (255, 255, 0)),
        ('deco', (255, 170, 0)),
        ('molding', (255, 85, 0)),
        ('pillar', (255, 0, 0)),
        ('shop', (170, 0, 0)),
    ),
}
VOID = 0

# RGB -> (Y, Cb, Cr), JPEG's (JFIF) colour transform, rows Y, Cb, Cr.
RGB_TO_YCBCR = ((0.299, 0.587, 0.114),
                (-0.168736, -0.331264, 0.5),
                (0.5, -0.418688, -0.081312))
# Colour distances count chroma at a tenth: JPEG stores chroma at half resolution (4:2:0), so
# at a colour edge a pixel's chroma is a blend of its neighbours' while its luma stays close.
# On the 400 facades training label halves the nearest colour agrees with the exact class maps
# for 99.21% of the pixels this way, for 92.99% by plain RGB distance.
CHROMA_WEIGHT = 0.1
# Largest colour distance (luma levels, chroma at CHROMA_WEIGHT) of a label pixel from its
# palette colour; farther pixels are off-palette. No pixel of the 606 facades label halves is
# farther than 25.2 (JPEG artefacts at edges), so real facades report none. Within the
# palette's luma range (black, greys, pure green) every colour is closer than this: there JPEG
# blends of two palette colours land too, so only colours like white are caught.
OFF_PALETTE_TOLERANCE = 28.0

CONFIG_FILENAME = config_lib.CONFIG_FILENAME
CHECKPOINT_FOLDER = 'checkpoints'
# Fields that may change when a scorer is trained further; any other change is an error.
RESUMABLE_CHANGES = ('steps', 'log_every', 'checkpoint_every')


def get_config():
    """The scorer's defaults for facades, 128x128 (also the default config file of
    `python -m p2p_tf.fcn_score`; configs/fcn/facades.py returns them)."""
    config = ml_collections.ConfigDict()
    config.dataset = 'facades'
    config.palette = config_lib.AUTO  # A name in PALETTES; AUTO: the dataset's name.
    # Direction of labels -> photo inside the side-by-side files (BtoA: labels on the right),
    # as for pix2pix runs; AUTO: the dataset's (config.DATASET_FACTS).
    config.direction = config_lib.AUTO
    config.train_split = 'train'
    config.off_palette_tolerance = OFF_PALETTE_TOLERANCE

    config.image_size = 128  # Photos are segmented at image_size x image_size.
    # Training photos and class maps are resized to load_size and cropped at random to
    # image_size, the random jitter of pix2pix (paper appendix 6.2: 286 -> 256); 0: that
    # ratio, image_size * 286 // 256. It raised class IoU on facades val from 0.31 to 0.32.
    config.load_size = config_lib.AUTO_NUMBER
    # U-Net poolings (after a stride-2 stem); image_size must be a multiple of 2**(levels + 1).
    config.levels = 4
    config.filters = 16  # Filters of the first level, doubled per level up to 8x.

    config.steps = 2000
    config.batch_size = 8
    config.learning_rate = 2e-3
    config.seed = 0
    config.log_every = 100
    config.checkpoint_every = 500
    return config


def resolve_config(config):
    """A copy of the scorer's `config` with AUTO fields filled in, checked: UserError names the
    first field that cannot work."""
    defaults = get_config()
    unknown = sorted(set(config) - set(defaults))
    if unknown:
        suggestions = difflib.get_close_matches(unknown[0], list(defaults), n=1)
        hint = f' (did you mean {suggestions[0]!r}?)' if suggestions else ''
        raise UserError(f'unknown scorer config field {unknown[0]!r}{hint}')
    config = ml_collections.ConfigDict({**defaults.to_dict(), **config.to_dict()})
    if config.palette == config_lib.AUTO:
        config.palette = config.dataset
    if config.palette not in PALETTES:
        raise UserError(f'no label colour palette for {config.palette!r} (palettes: '
                        f'{", ".join(PALETTES)}); for a dataset whose label maps use one of '
                        'them, set --config.palette')
    if config.direction == config_lib.AUTO:
        config.direction = config_lib.dataset_facts(config.dataset)['direction']
    if config.load_size == config_lib.AUTO_NUMBER:
        config.load_size = config.image_size * 286 // 256
    if config.direction not in ('AtoB', 'BtoA'):
        raise UserError(f"direction must be 'AtoB' or 'BtoA', got {config.direction!r}")
    for name in ('levels', 'filters', 'steps', 'batch_size', 'log_every', 'checkpoint_every'):
        if config[name] < 1:
            raise UserError(f'{name} must be positive, got {config[name]}')
    multiple = 2 ** (config.levels + 1)
    if config.image_size < multiple or config.image_size % multiple:
        raise UserError(f'image_size must be a multiple of 2**(levels + 1) = {multiple}, got '
                        f'{config.image_size}')
    if config.load_size < config.image_size:
        raise UserError(f'load_size ({config.load_size}) is smaller than image_size '
                        f'({config.image_size}): the random crop would not fit')
    if config.learning_rate <= 0 or config.off_palette_tolerance <= 0:
        raise UserError('learning_rate and off_palette_tolerance must be positive')
    return config


def load_config(fcn_dir):
    """The resolved config a scorer saved in fcn_dir, or a UserError if there is none. Fields
    added to the project after it was trained take their (resolved) defaults."""
    path = os.path.join(fcn_dir, CONFIG_FILENAME)
    if not os.path.isfile(path):
        raise UserError(f'no FCN scorer in {fcn_dir} (no {CONFIG_FILENAME}); train one with '
                        f'`python -m p2p_tf.fcn_score train --fcn_dir={fcn_dir}`')
    with open(path) as f:
        return resolve_config(ml_collections.ConfigDict(json.load(f)))


def class_names(palette):
    """Names of the classes 1..K of a palette in PALETTES."""
    return [name for name, _ in PALETTES[palette]]


def colours_to_classes(labels, palette='facades', tolerance=OFF_PALETTE_TOLERANCE):
    """Colour-coded label image -> class indices, by nearest palette colour.

    labels: uint8 [..., H, W, 3] RGB, at the resolution it was drawn (never resized
    bilinearly); palette: a name in PALETTES. Distances are in luma levels with chroma counted
    at CHROMA_WEIGHT. Returns int32 [..., H, W]: classes 1..K, VOID (0) where the nearest
    colour is farther than `tolerance` (off-palette). Works eagerly and in tf.data.
    """
    to_ycbcr = tf.constant(RGB_TO_YCBCR, tf.float32)
    weights = tf.constant([1.0, CHROMA_WEIGHT, CHROMA_WEIGHT])
    colours = tf.constant([colour for _, colour in PALETTES[palette]], tf.float32)
    pixels = tf.linalg.matvec(to_ycbcr, tf.cast(labels, tf.float32)[..., tf.newaxis, :])
    references = tf.linalg.matvec(to_ycbcr, colours)
    squared = tf.reduce_sum(tf.square((pixels - references) * weights), axis=-1)
    classes = tf.argmin(squared, axis=-1, output_type=tf.int32) + 1
    return tf.where(tf.reduce_min(squared, axis=-1) > tolerance ** 2, VOID, classes)


def read_pairs(examples, direction):
    """Dataset of (labels, photo) uint8 [H, W, 3] at full size, in example order.

    examples: as input_pipeline.example_reader (training.split_examples gives them).
    """
    count, read = input_pipeline.example_reader(examples)
    # Decoded at full size: the label colours must not go through a resize.
    dataset = tf.data.Dataset.range(count).map(
        lambda index: input_pipeline.decode_example(*read(index), 3, 3, direction),
        input_pipeline.AUTOTUNE)
    return input_pipeline.without_autotune_thread(dataset.prefetch(input_pipeline.AUTOTUNE))


def true_classes(labels, config, size):
    """Full-size label colours uint8 [H, W, 3] -> (classes uint8 [size, size] in 0..K, mapped
    at full size then resized with nearest neighbour; number of off-palette pixels at full
    size, int32 scalar). config: the scorer's (palette, off_palette_tolerance)."""
    classes = colours_to_classes(labels, config.palette, config.off_palette_tolerance)
    off_palette = tf.reduce_sum(tf.cast(classes == VOID, tf.int32))
    resized = tf.image.resize(classes[..., tf.newaxis], [size, size], method='nearest')
    return tf.cast(resized[..., 0], tf.uint8), off_palette


def load_split(examples, config):
    """All of a split in memory at the training size L = config.load_size: (photos uint8
    [N, L, L, 3], classes uint8 [N, L, L], off-palette pixels per image int32 [N])."""
    def example(labels, photo):
        classes, off_palette = true_classes(labels, config, config.load_size)
        return preprocessing.resize(photo, config.load_size), classes, off_palette

    dataset = read_pairs(examples, config.direction).map(example, input_pipeline.AUTOTUNE)
    return tuple(tf.stack(column) for column in zip(*dataset))


def convolutions(x, filters, count=2, strides=1):
    """`count` 3x3 convolutions (the first with `strides`), each with BatchNorm and ReLU."""
    for i in range(count):
        x = keras.layers.Conv2D(filters, 3, strides=strides if i == 0 else 1, padding='same',
                                use_bias=False)(x)
        # Momentum 0.9 rather than Keras' 0.99: the averages used at inference settle within
        # a few dozen steps, so short (test) runs segment with sensible statistics too.
        x = keras.layers.BatchNormalization(momentum=0.9)(x)
        x = keras.layers.ReLU()(x)
    return x


def segmentation_unet(num_classes, levels=4, base_filters=16, input_channels=3):
    """U-Net segmenter: photos [batch, H, W, input_channels] float32 in [-1, 1] -> logits
    [batch, H, W, num_classes] (softmax over the last axis gives class 1..K probabilities).

    A stride-2 convolution first halves the resolution, the U-Net (`levels` poolings, filters
    base_filters, doubling per level up to 8x) works at half resolution and its logits are
    upsampled bilinearly: a third of the full-resolution network's time on a CPU, while label
    regions (windows, sills) stay several half-resolution pixels wide at 128x128.
    H and W must be multiples of 2**(levels + 1).
    """
    filters = models.encoder_filters(levels + 1, base_filters)
    inputs = keras.Input(shape=[None, None, input_channels], name='photo')
    x = convolutions(inputs, base_filters, count=1, strides=2)
    skips = []
    for level in range(levels):
        x = convolutions(x, filters[level])
        skips.append(x)
        x = keras.layers.MaxPooling2D()(x)
    x = convolutions(x, filters[levels])
    for level in reversed(range(levels)):
        x = keras.layers.Conv2DTranspose(filters[level], 2, strides=2)(x)
        x = convolutions(keras.layers.Concatenate()([x, skips[level]]), filters[level])
    logits = keras.layers.Conv2D(num_classes, 1)(x)
    logits = keras.layers.UpSampling2D(interpolation='bilinear', name='logits')(logits)
    return keras.Model(inputs, logits, name='segmentation_unet')


def scorer_from_config(config):
    return segmentation_unet(len(PALETTES[config.palette]), config.levels, config.filters)


def segmentation_loss(classes, logits):
    """Mean cross-entropy over the non-VOID pixels. classes: int [batch, H, W] in 0..K;
    logits: float32 [batch, H, W, K]. 0 when every pixel is VOID."""
    valid = tf.cast(classes != VOID, tf.float32)
    per_pixel = keras.losses.sparse_categorical_crossentropy(
        tf.maximum(tf.cast(classes, tf.int32) - 1, 0), logits, from_logits=True)
    return tf.reduce_sum(per_pixel * valid) / tf.maximum(tf.reduce_sum(valid), 1.0)


def training_batches(photos, classes, config, start_example=0):
    """Endless batches (photos float32 [B, S, S, 3] in [-1, 1], classes uint8 [B, S, S]) of
    the in-memory split (load_split), each example cropped to S = config.image_size and
    mirrored at random: the order, crops and mirrors are a function of (seed, example number),
    as in input_pipeline.train_dataset, so a resumed scorer sees what an uninterrupted one
    would have."""
    def example(number, index):
        seed = tf.stack([tf.cast(config.seed, tf.int64), number])
        photo, image_classes = preprocessing.random_jitter(
            tf.gather(photos, index), tf.gather(classes, index)[..., tf.newaxis], seed,
            config.image_size, flip=True)
        return preprocessing.to_unit_range(photo), image_classes[..., 0]

    dataset = input_pipeline.example_order(len(photos), config.seed, start_example)
    dataset = dataset.map(example, input_pipeline.AUTOTUNE, deterministic=True)
    return input_pipeline.without_autotune_thread(
        dataset.batch(config.batch_size, drop_remainder=True).prefetch(input_pipeline.AUTOTUNE))


def prepare_fcn_dir(config, fcn_dir):
    """Creates fcn_dir, refuses one holding a scorer with another config, saves `config`."""
    try:
        os.makedirs(fcn_dir, exist_ok=True)
    except OSError as e:
        raise UserError(f'cannot create fcn_dir {fcn_dir}: {e.strerror}') from None
    if os.path.exists(os.path.join(fcn_dir, CONFIG_FILENAME)):
        previous = load_config(fcn_dir)
        changed = sorted(key for key in config
                         if key not in RESUMABLE_CHANGES and previous[key] != config[key])
        if changed:
            details = ', '.join(f'{k}: {previous[k]!r} -> {config[k]!r}' for k in changed)
            raise UserError(f'{fcn_dir} holds a scorer with a different config ({details}); '
                            'use another --fcn_dir or the same options')
    config_lib.save(config, fcn_dir)


def scorer_checkpoint(config):
    """(model, optimizer, step, tf.train.Checkpoint of all three) of a resolved config."""
    model = scorer_from_config(config)
    # The rate decays to zero over the run (cosine): the last steps refine rather than jump.
    optimizer = keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(
        config.learning_rate, config.steps))
    # Keras 3 creates Adam's moments lazily; build them now so a restore fills them.
    optimizer.build(model.trainable_variables)
    step = tf.Variable(0, dtype=tf.int64, trainable=False, name='step')
    return model, optimizer, step, tf.train.Checkpoint(model=model, optimizer=optimizer,
                                                       step=step)


def train_scorer(config, fcn_dir, data_dir=None, stream=None):
    """Trains the segmenter of `config` on its dataset's real training photos, or resumes or
    reuses the one in fcn_dir; returns the Keras model (photos -> logits, segmentation_unet).

    config: a ConfigDict from get_config() plus overrides (resolved here); data_dir: as for
    training.train; stream: where progress lines go (default stdout).
    """
    config = resolve_config(config)
    examples = training.split_examples(config, config.train_split, data_dir)
    prepare_fcn_dir(config, fcn_dir)
    keras.utils.set_random_seed(config.seed)
    model, optimizer, step, checkpoint = scorer_checkpoint(config)
    manager = tf.train.CheckpointManager(checkpoint, os.path.join(fcn_dir, CHECKPOINT_FOLDER),
                                         max_to_keep=1, step_counter=step)
    progress = Progress(config.steps, config.batch_size, config.log_every, stream)
    if manager.latest_checkpoint:
        checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
    if int(step) >= config.steps:
        progress.message(f'{fcn_dir} holds a scorer trained for {int(step)} steps')
        return model

    photos, classes, off_palette = load_split(examples, config)
    progress.message(f'training the FCN-score segmenter on {len(photos)} {config.dataset} '
                     f'{config.train_split} photos at {config.image_size}x{config.image_size} '
                     f'for {config.steps} steps of batch {config.batch_size}'
                     + (f' (resumed at step {int(step)})' if int(step) else ''))
    progress.message(off_palette_message(off_palette))

    @tf.function
    def train_step(batch_photos, batch_classes):
        with tf.GradientTape() as tape:
            loss = segmentation_loss(batch_classes, model(batch_photos, training=True))
        optimizer.apply(tape.gradient(loss, model.trainable_variables),
                        model.trainable_variables)
        step.assign_add(1)
        return loss

    losses = []
    batches = training_batches(photos, classes, config, int(step) * config.batch_size)
    for batch_photos, batch_classes in batches:
        losses.append(float(train_step(batch_photos, batch_classes)))
        current = int(step)
        if not math.isfinite(losses[-1]):
            raise training.TrainingError(f'non-finite segmentation loss at step {current}')
        progress.update(current, {'loss': sum(losses) / len(losses)})
        if current % config.log_every == 0:
            losses = []
        if current % config.checkpoint_every == 0 or current >= config.steps:
            manager.save(checkpoint_number=current)
        if current >= config.steps:
            break
    return model


def off_palette_message(off_palette):
    """'N off-palette label pixels in M images (left out)' for per-image counts."""
    off_palette = np.asarray(off_palette)
    return (f'{int(off_palette.sum())} off-palette label pixel(s) in '
            f'{int(np.count_nonzero(off_palette))} image(s) (left out of training and scores)')


def load_scorer(fcn_dir):
    """The trained segmenter in fcn_dir and its resolved config: (model, config). UserError
    if there is none or its training is unfinished."""
    config = load_config(fcn_dir)
    model, _, step, checkpoint = scorer_checkpoint(config)
    path = tf.train.latest_checkpoint(os.path.join(fcn_dir, CHECKPOINT_FOLDER))
    if not path:
        raise UserError(f'no scorer checkpoint in {os.path.join(fcn_dir, CHECKPOINT_FOLDER)}; '
                        f'train it with `python -m p2p_tf.fcn_score train --fcn_dir={fcn_dir}`')
    checkpoint.restore(path).expect_partial().assert_existing_objects_matched()
    if int(step) < config.steps:
        raise UserError(f'the scorer in {fcn_dir} is trained to step {int(step)} of '
                        f'{config.steps}; run `python -m p2p_tf.fcn_score train '
                        f'--fcn_dir={fcn_dir}` again to finish it')
    return model, config


def confusion_matrix(truth, predicted, num_classes):
    """Counts int64 [K, K] (rows: true class 1..K, columns: predicted class 1..K) of the
    pixels whose true class is not VOID. truth, predicted: int [...] of the same shape."""
    truth, predicted = np.asarray(truth).ravel(), np.asarray(predicted).ravel()
    valid = truth != VOID
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
    num_classes = len(PALETTES[config.palette])
    confusion = np.zeros([num_classes, num_classes], np.int64)
    off_palette = []
    for labels, photo in read_pairs(examples, config.direction):
        classes, off = true_classes(labels, config, config.image_size)
        predicted = predict_classes(model, photo_for(labels, photo)[tf.newaxis])[0]
        confusion += confusion_matrix(classes, predicted, num_classes)
        off_palette.append(int(off))
    if not off_palette:
        raise UserError('the split has no images to score')
    return dict(scores_from_confusion(confusion, class_names(config.palette)),
                images=len(off_palette), off_palette_pixels=sum(off_palette),
                off_palette_images=int(np.count_nonzero(off_palette)))


def score_real(fcn_dir, split='val', data_dir=None):
    """FCN-scores of the real photos of `split` (the paper's "ground truth" row): dict with
    per_pixel_accuracy, per_class_accuracy, class_iou (floats in [0, 1]), per_class_iou
    ({class name: float, or None where the class is in neither truth nor prediction}),
    images, off_palette_pixels, off_palette_images (counts)."""
    model, config = load_scorer(fcn_dir)
    examples = training.split_examples(config, split, data_dir)
    return score_photos(model, config, examples,
                        lambda labels, photo: preprocessing.resize(photo, config.image_size))


def score_run(fcn_dir, workdir, split='val', data_dir=None, checkpoint=None, mode='paper'):
    """FCN-scores of a labels -> photo run's translations of `split` (dict as score_real).

    Each label map is resized to the run's image size and translated alone (batch 1: paper
    mode normalises with the batch's statistics), with dropout seeded by the run's seed so the
    scores are reproducible; the output is resized to the scorer's size if it differs.
    workdir, checkpoint: as inference.find_checkpoint; mode: 'paper' or 'eval'.
    """
    model, config = load_scorer(fcn_dir)
    generator, run_config = inference.load_generator(os.fspath(workdir), checkpoint)
    if run_config.output_channels != 3:
        raise UserError(f'the run in {workdir} makes {run_config.output_channels}-channel '
                        'images; the scorer segments RGB photos')
    if run_config.dataset == config.dataset and run_config.direction != config.direction:
        raise UserError(f'the run in {workdir} translates photos to labels '
                        f'({run_config.direction}); the FCN-score judges labels -> photo '
                        f'({config.direction})')
    if mode not in inference.MODES:
        raise UserError(f'mode must be one of {inference.MODES}, got {mode!r}')
    examples = training.split_examples(config, split, data_dir)
    translate = tf.function(lambda inputs: inference.generate(generator, inputs, mode))

    def generated_photo(labels, photo):
        inputs = preprocessing.resize(preprocessing.to_channels(labels, run_config.input_channels),
                                      run_config.image_size)
        generated = preprocessing.to_uint8(
            translate(preprocessing.to_unit_range(inputs)[tf.newaxis])[0])
        if run_config.image_size == config.image_size:
            return generated
        return preprocessing.resize(generated, config.image_size)

    with inference.seeded_dropout(generator, run_config.seed):
        return score_photos(model, config, examples, generated_photo)


def fcn_report(fcn_dir, workdir, split='val', data_dir=None, checkpoint=None, mode='paper'):
    """score_run of a run and score_real of the same split, with what was scored: dict with
    workdir, checkpoint, step, objective (the run's Table 1 row name), dataset, split, mode,
    image_size (the scorer's), run and ground_truth (scores dicts), table (format_table)."""
    workdir, path = inference.find_checkpoint(os.fspath(workdir), checkpoint)
    config = load_config(fcn_dir)
    run_scores = score_run(fcn_dir, workdir, split, data_dir, path, mode)
    truth = score_real(fcn_dir, split, data_dir)
    objective = objective_name(config_lib.load(workdir))
    return dict(workdir=workdir, checkpoint=path, step=serving.checkpoint_step(path),
                objective=objective, dataset=config.dataset, split=split, mode=mode,
                image_size=config.image_size, run=run_scores, ground_truth=truth,
                table=format_table([(objective, run_scores), (GROUND_TRUTH_ROW, truth)]))


def format_report(report):
    """The console summary of an fcn_report: what was scored, the table, off-palette counts."""
    run, truth = report['run'], report['ground_truth']
    return '\n'.join([
        f'FCN-scores of {report["workdir"]} (step {report["step"]}, {report["mode"]} mode) on '
        f'{report["dataset"]} {report["split"]}: {run["images"]} images segmented at '
        f'{report["image_size"]}x{report["image_size"]}',
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
