"""ONNX export: `export --format=onnx` writes generator.onnx, which onnxruntime runs in a
process that never imports p2p_tf or TensorFlow, equal to the SavedModel's eval mode."""

import json
import subprocess
import sys

import numpy as np
import pytest

from p2p_tf.serving import export as export_lib
from p2p_tf.serving import translation

from conftest import run_command
from test_inference import make_run_dir

pytest.importorskip('tf2onnx', reason='ONNX export needs the onnx extra (tf2onnx)')
onnxruntime = pytest.importorskip('onnxruntime', reason='needs the onnx extra (onnxruntime)')

# Runs an ONNX model on .npy inputs with onnxruntime alone, as another runtime would.
RUNTIME_SCRIPT = """
import json, sys
import numpy as np
import onnxruntime
model, outputs = sys.argv[1], sys.argv[2]
session = onnxruntime.InferenceSession(model, providers=['CPUExecutionProvider'])
results = {}
for path in sys.argv[3:]:
    translated, = session.run(['translated'], {'images': np.load(path)})
    np.save(path + '.out.npy', translated)
meta = session.get_modelmeta()
json.dump(dict(metadata=meta.custom_metadata_map,
               inputs=[(i.name, i.shape) for i in session.get_inputs()],
               outputs=[(o.name, o.shape) for o in session.get_outputs()],
               imported=sorted(name for name in sys.modules
                               if name.split('.')[0] in ('p2p_tf', 'tensorflow', 'keras'))),
          open(outputs, 'w'))
"""


@pytest.fixture(scope='module')
def run_dir(tmp_path_factory):
    return make_run_dir(tmp_path_factory.mktemp('onnx_run'))[0]


def test_the_onnx_export_runs_without_tensorflow_and_equals_the_saved_model(run_dir, tmp_path):
    result = run_command('p2p_tf.export', f'--workdir={run_dir}',
                         f'--export_dir={tmp_path / "onnx"}', '--format=onnx')
    assert result.returncode == 0, result.stderr[-2000:]
    assert 'generator.onnx:' in result.stdout and 'W1201' not in result.stderr
    saved_model = export_lib.export_saved_model(str(run_dir), str(tmp_path / 'saved_model'))

    inputs = []
    for height, width in ((256, 256), (320, 512), (100, 70)):
        inputs.append(tmp_path / f'{height}x{width}.npy')
        np.save(inputs[-1], np.random.default_rng(height).uniform(
            -1, 1, (1, height, width, 3)).astype(np.float32))
    report = tmp_path / 'report.json'
    model = tmp_path / 'onnx' / 'generator.onnx'
    ran = subprocess.run([sys.executable, '-c', RUNTIME_SCRIPT, str(model), str(report),
                          *map(str, inputs)], capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr[-2000:]
    facts = json.loads(report.read_text())
    assert facts['imported'] == []  # Neither p2p_tf nor TensorFlow was needed.
    assert facts['inputs'][0][0] == 'images' and facts['outputs'][0][0] == 'translated'
    assert facts['inputs'][0][1][0] == 1 and facts['inputs'][0][1][3] == 3
    assert all(isinstance(side, str) for side in facts['inputs'][0][1][1:3])  # dynamic H, W
    expected = export_lib.export_metadata(translation.Translator(str(run_dir)).config, 1, 'eval')
    assert facts['metadata'] == {name: str(value) for name, value in expected.items()}
    assert json.loads((tmp_path / 'onnx' / 'p2p_tf_metadata.json').read_text()) == expected

    reference = translation.Translator(saved_model)
    for path in inputs:
        onnx_output = np.load(str(path) + '.out.npy')
        saved_model_output = np.asarray(reference.run(np.load(path)))
        assert onnx_output.shape == saved_model_output.shape == np.load(path).shape
        np.testing.assert_allclose(onnx_output, saved_model_output, atol=1e-4)


def test_a_paper_mode_onnx_export_draws_new_dropout_on_every_call(run_dir, tmp_path):
    export_dir = export_lib.export_onnx(str(run_dir), str(tmp_path / 'paper'), mode='paper')
    session = onnxruntime.InferenceSession(f'{export_dir}/generator.onnx',
                                           providers=['CPUExecutionProvider'])
    assert session.get_modelmeta().custom_metadata_map['mode'] == 'paper'
    images = np.random.default_rng(0).uniform(-1, 1, (1, 64, 32, 3)).astype(np.float32)
    first, second = (session.run(['translated'], {'images': images})[0] for _ in range(2))
    assert first.shape == (1, 64, 32, 3) and np.isfinite(first).all()
    assert np.abs(first - second).max() > 1e-3
