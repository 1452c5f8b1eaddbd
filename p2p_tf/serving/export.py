"""Exporting a trained generator for serving: a SavedModel that translates images of any size,
TFLite files (float32, float16, dynamic-range) for images of the training size, and an ONNX
model for other runtimes (onnxruntime in C++, C#, JavaScript, ...).

The SavedModel needs only TensorFlow to load (`tf.saved_model.load(export_dir)`) and has three
signatures:
- `serving_default`: `images` uint8 [batch, H, W, C_in] in [0, 255], any H and W ->
  `translated` uint8 [batch, H, W, C_out]. Inside the graph the images are mirror-padded to
  multiples of 2**depth, translated, and cropped back to H x W. For a run on other data,
  the types and ranges of its data instead (uint16 as stored, float32 for other types:
  the metadata's input_dtype/input_range and target_dtype/target_range).
- `translate_float`: the same on float32 in [-1, 1].
- `metadata`: no inputs -> scalar tensors naming the direction, channels, training size, step,
  inference mode, padding multiple and p2p_tf version. The same values are written as JSON to
  `assets.extra/p2p_tf_metadata.json` (the SavedModel folder for files the graph does not use).

Exports are written into a temporary folder next to the destination and moved into place only
when complete, so an interrupted or failed export never leaves a half-written folder, and
`overwrite` never loses the previous export unless the new one is ready.
"""

import contextlib
import json
import os
import shutil
import tempfile

import keras
import tensorflow as tf

import p2p_tf
from p2p_tf import image_sizes, workdirs
from p2p_tf.datasets import preprocessing, value_ranges
from p2p_tf.errors import UserError
from p2p_tf.nets import generation, layers, models

METADATA_PATH = workdirs.EXPORT_METADATA
# TFLite files written by `export_tflite`, by quantization.
TFLITE_FILES = {
    'float32': 'model_float32.tflite',
    'float16': 'model_float16.tflite',
    'dynamic_range': 'model_dynamic_range.tflite',
}
# The file of an ONNX export, and the ONNX operator set it is converted to.
ONNX_FILE = 'generator.onnx'
ONNX_OPSET = 17
# The signatures that translate images; the TFLite files carry both.
IMAGE_SIGNATURES = ('serving_default', 'translate_float')


def export_metadata(config, step, mode):
    """What an export says about itself: {name: str or int}."""
    depth = image_sizes.unet_depth(config.image_size)
    height, width = image_sizes.image_shape(config)
    # Each side's stored type and the range that maps to [-1, 1] (value_ranges.py): what
    # serving_default takes and gives, and what a runtime needs to scale its data.
    return dict(dataset=config.dataset, direction=config.direction,
                input_channels=config.input_channels, output_channels=config.output_channels,
                image_size=config.image_size, image_height=height, image_width=width,
                multiple=2 ** depth, step=step, mode=mode,
                **value_ranges.recorded_fields(*(value_ranges.side_scaling(config, side)
                                                 for side in ('input', 'target'))),
                p2p_tf_version=p2p_tf.__version__)


def translation_function(generator, multiple, mode):
    """A function [batch, H, W, C_in] float32 in [-1, 1] (any H, W) -> [batch, H, W, C_out] in
    [-1, 1] that mirror-pads to multiples of `multiple`, runs the generator and crops back."""
    generation.check_mode(mode)
    return lambda images: generation.generate_any_size(generator, images, multiple, mode)


def export_archive(generator, metadata, fixed_size=None, fast_transposed_passes=False):
    """The Keras ExportArchive of the three signatures (see the module docstring). With
    `fixed_size` (a number or 'HxW'), the image signatures take [1, H, W, C_in] only.
    fast_transposed_passes: in eval mode, the transposed convolutions of small maps compute
    as weight-stationary products, picked at run time by the map's size
    (p2p_tf/nets/convolution_passes.py)."""
    if metadata['mode'] == 'eval':
        # Eval mode uses BatchNorm's moving averages, constants at serving time: folded into
        # the convolutions they follow, they cost nothing per image.
        generator = models.fold_batch_norm(generator, fast_transposed_passes)
    translate = translation_function(generator, metadata['multiple'], metadata['mode'])
    input_channels = metadata['input_channels']
    shape = [1, *image_sizes.parse_size(fixed_size)] if fixed_size else [None, None, None]

    def checked(images):
        # A signature does not check the shape it is called with: without this, a wrong
        # channel count fails deep inside the generator and a 3-D image can abort the process.
        return tf.ensure_shape(images, shape + [input_channels])

    source_scale, output_scale = (value_ranges.side_scaling(metadata, side)
                                  for side in ('input', 'target'))

    def translate_stored(images):
        outputs = translate(preprocessing.to_unit_range(checked(images),
                                                        source_scale.value_range))
        return {'translated': preprocessing.from_unit_range(
            outputs, output_scale.pipeline_dtype, output_scale.value_range)}

    def translate_float(images):
        return {'translated': translate(checked(images))}

    def metadata_tensors():
        return {name: tf.constant(value, tf.int64 if isinstance(value, int) else tf.string)
                for name, value in metadata.items()}

    # An ExportArchive rather than a tf.Module holding the model: it saves the tf.Variables
    # behind the Keras variables, which the TFLite converter freezes into constants; Keras
    # variables saved as such stay resource variables that the TFLite model never initialises.
    archive = keras.export.ExportArchive()
    archive.track(generator)
    archive.add_endpoint('serving_default', translate_stored, input_signature=[
        tf.TensorSpec(shape + [input_channels], source_scale.pipeline_dtype, name='images')])
    archive.add_endpoint('translate_float', translate_float, input_signature=[
        tf.TensorSpec(shape + [input_channels], tf.float32, name='images')])
    archive.add_endpoint('metadata', metadata_tensors, input_signature=[])
    return archive


def write_metadata(metadata, path):
    """Writes {name: str or int} as JSON to `path`."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(metadata, f, indent=2, sort_keys=True)
        f.write('\n')


def read_metadata(export_dir):
    """The metadata of an export (SavedModel or TFLite folder), from its JSON file."""
    for path in (os.path.join(export_dir, METADATA_PATH),
                 os.path.join(export_dir, os.path.basename(METADATA_PATH))):
        if os.path.exists(path):
            with open(path) as f:
                return json.load(f)
    raise UserError(f'no {os.path.basename(METADATA_PATH)} in {export_dir}: is it an export?')


def write_saved_model(generator, metadata, path, fixed_size=None, fast_transposed_passes=False):
    """Writes the SavedModel of `generator` with its metadata into the new folder `path`
    (fast_transposed_passes as for export_archive)."""
    # TensorFlow logs "Assets written to" the staging folder at INFO even with verbose=False;
    # the commands hide INFO, library callers (notebooks) would see the wrong path.
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel('WARNING')
    try:
        export_archive(generator, metadata, fixed_size,
                       fast_transposed_passes).write_out(path, verbose=False)
    finally:
        logger.setLevel(level)
    write_metadata(metadata, os.path.join(path, METADATA_PATH))


def check_destination(export_dir, overwrite):
    """The absolute path of `export_dir`, or a UserError if it exists and not `overwrite`."""
    export_dir = os.path.abspath(export_dir)
    if os.path.lexists(export_dir) and not overwrite:
        raise UserError(f'{export_dir} already exists; pass --overwrite to replace it')
    return export_dir


def write_atomically(export_dir, overwrite, write):
    """Calls `write(path)` to fill a new folder next to `export_dir`, then moves it to
    `export_dir`. An existing `export_dir` is a UserError unless `overwrite`; it is replaced
    only once the new folder is complete, and no temporary folder is left behind."""
    export_dir = check_destination(export_dir, overwrite)
    parent = os.path.dirname(export_dir)
    try:
        os.makedirs(parent, exist_ok=True)
        staging = tempfile.mkdtemp(prefix=f'.{os.path.basename(export_dir)}.tmp-', dir=parent)
    except OSError as e:
        raise UserError(f'cannot write into {parent}: {e.strerror}') from None
    try:
        new = os.path.join(staging, 'new')
        write(new)
        if os.path.lexists(export_dir):
            old = os.path.join(staging, 'old')
            os.replace(export_dir, old)
            try:
                os.replace(new, export_dir)
            except OSError:
                os.replace(old, export_dir)
                raise
        else:
            os.replace(new, export_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return export_dir


def load_for_export(workdir, export_dir, mode, checkpoint, overwrite):
    """(generator, metadata) of the run in `workdir` at `checkpoint` (default: the latest),
    after checking that `export_dir` may be written."""
    check_destination(export_dir, overwrite)
    workdir, path = workdirs.find_checkpoint(workdir, checkpoint)
    generator, config = workdirs.load_generator(workdir, path)
    return generator, export_metadata(config, workdirs.checkpoint_step(path), mode)


def export_saved_model(workdir: str, export_dir: str, mode: str = 'eval',
                       checkpoint: str | None = None, overwrite: bool = False) -> str:
    """Exports the generator of the run in `workdir` as a SavedModel in `export_dir` (see the
    module docstring for its signatures); returns export_dir.

    mode='eval' (default) translates deterministically (no dropout, BatchNorm moving averages);
    mode='paper' uses dropout and the statistics of each request's batch, as
    `generation.generate` does, without changing the stored averages.
    """
    generator, metadata = load_for_export(workdir, export_dir, mode, checkpoint, overwrite)
    # The SavedModel serves any size on the machine that loads it, so its eval mode holds
    # both forms of the small-map transposed convolutions and picks at run time. The
    # SavedModels that TFLite and ONNX convert from keep TensorFlow's op, which their
    # runtimes implement themselves.
    return write_atomically(export_dir, overwrite, lambda path: write_saved_model(
        generator, metadata, path, fast_transposed_passes=True))


def convert_to_tflite(saved_model_dir, quantization):
    """The TFLite flatbuffer (bytes) of a SavedModel's image signatures: 'float32', 'float16'
    (weights stored as float16) or 'dynamic_range' (weights stored as int8)."""
    converter = tf.lite.TFLiteConverter.from_saved_model(
        saved_model_dir, signature_keys=list(IMAGE_SIGNATURES))
    if quantization != 'float32':
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == 'float16':
        converter.target_spec.supported_types = [tf.float16]
    return converter.convert()


def export_tflite(workdir: str, export_dir: str, mode: str = 'eval',
                  checkpoint: str | None = None, overwrite: bool = False) -> str:
    """Exports the generator of the run in `workdir` as TFLite files into `export_dir`: one per
    TFLITE_FILES quantization, plus `p2p_tf_metadata.json`. Returns export_dir.

    Each file has the signatures `serving_default` (uint8) and `translate_float` (float32 in
    [-1, 1]) on [1, S, S, C_in] images, S the training size (resize other images to it, as
    `translate --fit=resize` does). A fixed size because a dynamic-range model with dynamic
    shapes runs its transposed convolutions on a slow path (8 s instead of about 20 ms for a
    256x256 image on a 2-core CPU); the float models run as fast either way.

    Only mode='eval': paper mode's dropout draws from a random state that every call updates,
    which a TFLite model does not hold.
    """
    if mode != 'eval':
        raise UserError(f"TFLite exports run in eval mode only, got mode={mode!r}; export "
                        "paper mode as a SavedModel")
    generator, metadata = load_for_export(workdir, export_dir, mode, checkpoint, overwrite)

    def write(path):
        saved_model_dir = os.path.join(path, 'fixed_size_saved_model')
        write_saved_model(generator, metadata, saved_model_dir, fixed_size=metadata['image_size'])
        for quantization, filename in TFLITE_FILES.items():
            with open(os.path.join(path, filename), 'wb') as f:
                f.write(convert_to_tflite(saved_model_dir, quantization))
        shutil.rmtree(saved_model_dir)
        write_metadata(metadata, os.path.join(path, os.path.basename(METADATA_PATH)))
    return write_atomically(export_dir, overwrite, write)


def convert_to_onnx(saved_model_dir, metadata):
    """The onnx.ModelProto of a SavedModel's `translate_float` signature: `images` float32
    [1, H, W, C_in] in [-1, 1], H and W dynamic (mirror-padded inside to multiples of 2**depth,
    as the SavedModel does) -> `translated` [1, H, W, C_out]; the export's metadata in its
    metadata properties. Converted by tf2onnx from the loaded SavedModel's graph (the optional
    onnx extra): a Keras 3 model does not convert directly."""
    try:
        import onnx
        import tf2onnx
    except ModuleNotFoundError as e:
        raise UserError(f'ONNX export needs {e.name}: pip install "p2p_tf[onnx]"') from None
    # tf2onnx logs each op it drops at WARNING: paper mode's dropout-state updates, which
    # ONNX's own random op does not need. Errors still show.
    tf2onnx.logging.set_level(tf2onnx.logging.ERROR)
    loaded = tf.saved_model.load(saved_model_dir)  # Holds the variables the signature reads.
    signature = loaded.signatures['translate_float']
    spec = [tf.TensorSpec([1, None, None, metadata['input_channels']], tf.float32,
                          name='images')]
    model, _ = tf2onnx.convert.from_function(
        tf.function(lambda images: signature(images=images)['translated']),
        input_signature=spec, opset=ONNX_OPSET)
    # tf2onnx names the output after the graph's last op (Identity:0): name it as the
    # SavedModel's signature does.
    converted = model.graph.output[0].name
    model.graph.output[0].name = 'translated'
    for node in model.graph.node:
        node.output[:] = ['translated' if name == converted else name for name in node.output]
    onnx.helper.set_model_props(model, {name: str(value) for name, value in metadata.items()})
    model.doc_string = (f'p2p_tf {metadata["p2p_tf_version"]} generator of {metadata["dataset"]} '
                        f'({metadata["direction"]}, step {metadata["step"]}, '
                        f'{metadata["mode"]} mode)')
    onnx.checker.check_model(model)
    return model


def export_onnx(workdir: str, export_dir: str, mode: str = 'eval',
                checkpoint: str | None = None, overwrite: bool = False) -> str:
    """Exports the generator of the run in `workdir` as `export_dir/generator.onnx` (see
    convert_to_onnx), with `p2p_tf_metadata.json` beside it. Returns export_dir.

    mode='eval' (default): deterministic, equal to the SavedModel's eval mode. mode='paper':
    dropout and batch statistics as the paper tests; its dropout noise comes from the runtime's
    random generator (the export traces its dropout with TensorFlow's stateful random op,
    which converts; the stateless one Keras uses has no ONNX op), so outputs differ from call
    to call and from the SavedModel's.
    """
    generator, metadata = load_for_export(workdir, export_dir, mode, checkpoint, overwrite)

    def write(path):
        saved_model_dir = os.path.join(path, 'saved_model')
        with layers.stateful_dropout() if mode == 'paper' else contextlib.nullcontext():
            write_saved_model(generator, metadata, saved_model_dir)
        model = convert_to_onnx(saved_model_dir, metadata)
        with open(os.path.join(path, ONNX_FILE), 'wb') as f:
            f.write(model.SerializeToString())
        shutil.rmtree(saved_model_dir)
        write_metadata(metadata, os.path.join(path, os.path.basename(METADATA_PATH)))
    return write_atomically(export_dir, overwrite, write)
