"""Export a trained run for serving:
`python -m p2p_tf.export --workdir=runs/facades --export_dir=exports/facades`.

`--format=saved_model` (default) writes a SavedModel that translates uint8 images of any size;
`--format=tflite` writes float32, float16 and dynamic-range TFLite files; `--format=onnx`
writes `generator.onnx` (the `onnx` extra). See `p2p_tf/serving/export.py` for the signatures.
"""

import os

from absl import flags

from p2p_tf import cli

_WORKDIR = flags.DEFINE_string('workdir', None, 'Workdir of a training run.', required=True)
_EXPORT_DIR = flags.DEFINE_string('export_dir', None, 'Folder to write the export into.',
                                  required=True)
_FORMAT = flags.DEFINE_enum('format', 'saved_model', ['saved_model', 'tflite', 'onnx'],
                            'saved_model: a TensorFlow SavedModel; tflite: TFLite files at the '
                            'training size; onnx: generator.onnx, any size (pip install '
                            '"p2p_tf[onnx]").')
_MODE = flags.DEFINE_enum('mode', 'eval', ['eval', 'paper'],
                          'eval: deterministic Keras inference mode; paper: dropout and batch '
                          'statistics as in the paper (SavedModel and ONNX; not deterministic).')
_CHECKPOINT = flags.DEFINE_string('checkpoint', None, 'A checkpoint path, or best for the '
                                  'best one periodic evaluation kept (default: latest).')
_OVERWRITE = flags.DEFINE_boolean('overwrite', False, 'Replace an existing export_dir.')


def main():
    from p2p_tf.serving import export as export_lib
    export = dict(saved_model=export_lib.export_saved_model, tflite=export_lib.export_tflite,
                  onnx=export_lib.export_onnx)[_FORMAT.value]
    export_dir = export(_WORKDIR.value, _EXPORT_DIR.value, mode=_MODE.value,
                        checkpoint=_CHECKPOINT.value, overwrite=_OVERWRITE.value)
    print(f'wrote {_FORMAT.value} export of {_WORKDIR.value} ({_MODE.value} mode) to {export_dir}')
    for name in sorted(os.listdir(export_dir)):
        if name.endswith(('.tflite', '.onnx')):
            size = os.path.getsize(os.path.join(export_dir, name)) / 2 ** 20
            print(f'  {name}: {size:.1f} MB')


def run():
    cli.run(main)


if __name__ == '__main__':
    run()
