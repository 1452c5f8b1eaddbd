"""The notebooks in notebooks/: committed without outputs and with an "Open in Colab" badge, and
run top to bottom in tiny mode on the CPU (P2P_TF_NOTEBOOK_TINY=1), as CI runs them, so that a
notebook cannot silently rot; and the helpers of p2p_tf/notebook.py."""

import json
import re
import sys
import types

import matplotlib.pyplot as plt
import ml_collections
import nbformat
import numpy as np
import pytest
import tensorflow as tf
from nbclient import NotebookClient
from PIL import Image

from p2p_tf import notebook
from p2p_tf.datasets import examples

from conftest import REPO, require_shared_data, write_pairs

NOTEBOOKS = REPO / 'notebooks'
NOTEBOOK_NAMES = ('pix2pix_colab.ipynb', 'translate.ipynb')
COLAB_BADGE = 'https://colab.research.google.com/assets/colab-badge.svg'
# The tests append a cell that prints this and, as JSON, what the notebook left in its variables.
FACTS_MARK = 'NOTEBOOK_FACTS '


def read_notebook(name):
    return nbformat.read(NOTEBOOKS / name, as_version=4)


def test_every_notebook_is_run_here():
    assert sorted(path.name for path in NOTEBOOKS.glob('*.ipynb')) == sorted(NOTEBOOK_NAMES)


@pytest.mark.parametrize('name', NOTEBOOK_NAMES)
def test_committed_notebook_is_cleared_and_opens_in_colab(name):
    nb = read_notebook(name)
    nbformat.validate(nb)
    code_cells = [cell for cell in nb.cells if cell.cell_type == 'code']
    assert all(cell.outputs == [] and cell.execution_count is None for cell in code_cells)
    parameters = [cell for cell in code_cells if 'parameters' in cell.metadata.get('tags', [])]
    assert len(parameters) == 1
    owner_repo = re.search(r"^REPO_URL = 'https://github\.com/([\w.-]+/[\w.-]+)'$",
                           parameters[0].source, re.MULTILINE).group(1)
    badge = nb.cells[0]
    assert badge.cell_type == 'markdown'
    assert (f'[![Open In Colab]({COLAB_BADGE})](https://colab.research.google.com/github/'
            f'{owner_repo}/blob/main/notebooks/{name})') in badge.source


def execute_tiny(name, runs_dir, variables, tmp_path, monkeypatch):
    """Runs notebook `name` top to bottom in tiny mode on a kernel of this interpreter (in
    notebooks/, as Jupyter runs it), then prints the JSON of `variables`, an expression over
    the notebook's variables. Returns (the text of every output, the expression's value, the
    executed notebook); a cell that raises fails the test with its traceback."""
    # A kernel spec of our own, first on the Jupyter path, so that the kernel is this
    # interpreter whatever python3 kernel is registered for the user or the system.
    kernel_dir = tmp_path / 'jupyter' / 'kernels' / 'python3'
    kernel_dir.mkdir(parents=True)
    (kernel_dir / 'kernel.json').write_text(json.dumps(dict(
        argv=[sys.executable, '-m', 'ipykernel_launcher', '-f', '{connection_file}'],
        display_name='p2p_tf tests', language='python')))
    monkeypatch.setenv('JUPYTER_PATH', str(tmp_path / 'jupyter'))
    monkeypatch.setenv('IPYTHONDIR', str(tmp_path / 'ipython'))
    monkeypatch.setenv('P2P_TF_NOTEBOOK_TINY', '1')
    monkeypatch.setenv('P2P_TF_NOTEBOOK_RUNS_DIR', str(runs_dir))
    monkeypatch.setenv('P2P_TF_DATA_DIR', str(require_shared_data()))
    nb = read_notebook(name)
    nb.cells.append(nbformat.v4.new_code_cell(
        f'import json, sys\nprint({FACTS_MARK!r} + json.dumps({variables}))'))
    NotebookClient(nb, kernel_name='python3', timeout=300,
                   resources={'metadata': {'path': str(NOTEBOOKS)}}).execute()
    texts = [output.get('text', '') for cell in nb.cells for output in cell.get('outputs', [])
             if output.output_type == 'stream']
    facts_line = next(line for line in texts[-1].splitlines() if line.startswith(FACTS_MARK))
    return '\n'.join(texts[:-1]), json.loads(facts_line[len(FACTS_MARK):]), nb


def cell_outputs(nb, cell_id):
    return next(cell for cell in nb.cells if cell.get('id') == cell_id).outputs


def image_size(path):
    with Image.open(path) as image:
        return image.size


def test_colab_notebook_trains_watches_translates_and_exports(
        shared_data, tmp_path, monkeypatch):
    runs = tmp_path / 'runs'
    variables = ('dict(executable=sys.executable, workdir=workdir, step=int(trainer.step), '
                 'sample_steps=samples.steps, strategy=distribution.describe(strategy), '
                 'to_translate=to_translate, demo_url=demo_url)')
    text, facts, nb = execute_tiny('pix2pix_colab.ipynb', runs, variables, tmp_path, monkeypatch)
    assert facts['executable'] == sys.executable
    # Each Colab-only step said it was skipped.
    for message in ('not running in Colab', 'Google Drive is not mounted', 'no dropdown',
                    'TensorBoard is not started', 'no upload', 'not downloading'):
        assert message in text
    assert notebook.accelerator_summary() in text and f'strategy: {facts["strategy"]}' in text

    workdir = runs / 'facades'
    assert facts['workdir'] == str(workdir) and facts['step'] == 8
    assert (workdir / 'checkpoints' / 'ckpt-8.index').exists()
    assert 'step 8/8' in text
    # Samples every 4 steps: the display was redrawn at 4 and left showing step 8's grid.
    assert facts['sample_steps'] == [4, 8]
    samples, = [output for output in cell_outputs(nb, 'train')
                if output.output_type == 'display_data']
    assert 'step 8:' in samples.data['text/html']
    assert 'data:image/png;base64,' in samples.data['text/html']

    # The input half of a validation pair, translated at its own size (not the 32x32 crop).
    upload, = facts['to_translate']
    assert upload == str(workdir / 'uploads' / '1.png')
    assert image_size(upload) == image_size(workdir / 'translated' / '1.png') == (256, 256)
    assert any('image/png' in output.get('data', {})
               for output in cell_outputs(nb, 'translate'))

    # The demo page came up on the run just trained, on this machine only.
    assert facts['demo_url'].startswith('http://127.0.0.1:')
    assert f'p2p_tf demo of {workdir} at {facts["demo_url"]}' in text

    export = workdir / 'export'
    assert (export / 'saved_model.pb').exists() and (workdir / 'export.zip').exists()
    metadata = json.loads((export / 'assets.extra' / 'p2p_tf_metadata.json').read_text())
    assert (metadata['step'], metadata['mode'], metadata['image_size']) == (8, 'eval', 32)


def test_translate_notebook_trains_its_own_run_and_compares_modes(
        shared_data, tmp_path, monkeypatch):
    runs = tmp_path / 'runs'
    variables = 'dict(executable=sys.executable, models=list(translators), inputs=input_paths)'
    text, facts, nb = execute_tiny('translate.ipynb', runs, variables, tmp_path, monkeypatch)
    assert facts['executable'] == sys.executable
    for message in ('not running in Colab', 'Google Drive is not mounted', 'no upload'):
        assert message in text
    # Alone, it trained a tiny run and exported it before translating.
    assert 'training ../configs/tiny.py there' in text
    assert (runs / 'facades' / 'checkpoints' / 'ckpt-8.index').exists()
    assert (runs / 'facades' / 'export' / 'saved_model.pb').exists()
    assert facts['models'] == ['paper', 'eval', 'export']

    # Two inputs of different shapes, each translated by each model at its own size.
    translated = runs / 'translated'
    assert facts['inputs'] == [str(translated / 'inputs' / name) for name in ('1.png', '2.png')]
    assert [image_size(path) for path in facts['inputs']] == [(256, 256), (192, 256)]
    outputs = {}
    for model in facts['models']:
        for path in facts['inputs']:
            output = translated / model / path.rsplit('/', 1)[1]
            assert image_size(output) == image_size(path)
            outputs[model, output.name] = np.asarray(Image.open(output), np.int32)
    for name in ('1.png', '2.png'):
        assert np.abs(outputs['export', name] - outputs['eval', name]).max() <= 1
        assert np.abs(outputs['paper', name] - outputs['eval', name]).mean() > 0.5
    shown = [output for output in cell_outputs(nb, 'translate')
             if 'image/png' in output.get('data', {})]
    assert len(shown) == 2
    assert 'mean |paper - eval|' in text and 'largest |export - checkpoint in eval mode|' in text


def test_grid_image_stacks_the_rows_as_uint8():
    grid = np.zeros([2, 4, 12, 3], np.float32)
    grid[0] = 1.5  # Out of range: clipped.
    grid[1, :, :4] = 0.5
    image = np.asarray(notebook.grid_image(grid))
    assert image.shape == (8, 12, 3) and image.dtype == np.uint8
    assert (image[:4] == 255).all()
    assert (image[4:, :4] == 128).all() and (image[4:, 4:] == 0).all()


def pair_config(direction):
    return ml_collections.ConfigDict(dict(dataset='folder', direction=direction,
                                          input_channels=3, output_channels=3))


@pytest.mark.parametrize('direction', ['AtoB', 'BtoA'])
def test_example_inputs_are_the_input_halves_of_the_first_val_pairs(tmp_path, direction):
    pairs = write_pairs(tmp_path / 'val', 3, height=20)
    inputs = examples.example_inputs(pair_config(direction), str(tmp_path), count=2)
    assert list(inputs) == ['1.png', '2.png']
    for path, example in zip(pairs, inputs.values()):
        pixels = np.asarray(Image.open(path))
        expected = pixels[:, :20] if direction == 'AtoB' else pixels[:, 20:]
        np.testing.assert_array_equal(example, expected)


def test_example_inputs_fall_back_to_the_test_split_then_to_none(tmp_path):
    assert examples.example_inputs(pair_config('AtoB'), str(tmp_path)) == {}
    write_pairs(tmp_path / 'test', 1, height=20)
    assert list(examples.example_inputs(pair_config('AtoB'), str(tmp_path))) == ['1.png']


def test_show_images_draws_gray_and_colour_images_and_closes_its_figure():
    gray = np.zeros([8, 16, 1], np.uint8)
    colour = np.full([8, 8, 3], 255, np.uint8)
    notebook.show_images({'gray': gray, 'colour': colour})
    assert plt.get_fignums() == []


def test_in_colab_is_whether_google_colab_imports(monkeypatch):
    # None in sys.modules makes an import raise ImportError; a module object makes it succeed.
    monkeypatch.setitem(sys.modules, 'google.colab', None)
    assert not notebook.in_colab()
    monkeypatch.setitem(sys.modules, 'google.colab', types.ModuleType('google.colab'))
    assert notebook.in_colab()


@pytest.mark.parametrize('tpu_cores, gpus, expected', [
    (8, 0, 'found a TPU: 8 TPU cores'),
    (0, 2, 'found 2 GPU(s): NVIDIA H100, NVIDIA H100'),
    (0, 0, 'found no GPU or TPU: training runs on the CPU'),
])
def test_accelerator_summary_names_the_devices_found(tpu_cores, gpus, expected, monkeypatch):
    devices = {kind: [types.SimpleNamespace(name=f'/physical_device:{kind}:{i}')
                      for i in range(count)] for kind, count in (('TPU', tpu_cores), ('GPU', gpus))}
    monkeypatch.setattr(tf.config, 'list_logical_devices', lambda kind: devices.get(kind, []))
    monkeypatch.setattr(tf.config, 'list_physical_devices', lambda kind: devices.get(kind, []))
    monkeypatch.setattr(tf.config.experimental, 'get_device_details',
                        lambda gpu: {'device_name': 'NVIDIA H100'})
    assert notebook.accelerator_summary().startswith(expected)
