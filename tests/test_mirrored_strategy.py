"""tf.distribute's mirrored replicas on a CPU split in two, against one device, in a
subprocess (a strategy needs a fresh TensorFlow runtime; tests/distributed_worker.py)."""

import subprocess
import sys

import numpy as np

from conftest import REPO, WORKER_SCRIPT, max_difference


def test_mirrored_step_equals_single_device_step(tmp_path):
    out = tmp_path / 'steps.npz'
    result = subprocess.run([sys.executable, WORKER_SCRIPT, 'steps', str(out)],
                            capture_output=True, text=True, timeout=300, cwd=str(REPO))
    assert result.returncode == 0, result.stderr[-3000:]
    r = np.load(out)
    def run_weights(name):
        return [r[k] for k in sorted(
            (k for k in r if k.startswith(f'{name}_w')), key=lambda k: int(k.rsplit('w', 1)[1]))]

    # Batch 1 per replica turns synchronized BatchNorm on by default; one replica needs none.
    assert str(r['mirrored_sync']) == 'on' and str(r['single_sync']) == 'off'
    # Two steps of global batch 2 on two replicas = two steps of batch 2 on one device.
    np.testing.assert_allclose(r['mirrored_losses'], r['single_losses'], rtol=1e-5)
    assert max_difference(run_weights('mirrored'), run_weights('single')) < 1e-5
    # Without synchronization each replica normalizes its one example alone: another result.
    assert max_difference(run_weights('unsynchronized'), run_weights('single')) > 1e-4
    # Mixed precision composes with the strategy: the same steps, float16 rounding apart.
    assert np.isfinite(r['mirrored_float16_losses']).all()
    np.testing.assert_allclose(r['mirrored_float16_losses'], r['single_losses'], rtol=2e-3)
    # No sync-on-read variable: saving needs no collective, so only the chief saves.
    assert all(bool(r[f'{name}_variables_on_write'])
               for name in ('single', 'mirrored', 'mirrored_float16'))
    # The same input on both replicas gets two different dropout masks (Keras' own Dropout
    # draws one mask for all replicas).
    replica_0, replica_1 = r['dropout_replicas'] != 0
    assert 0.3 < replica_0.mean() < 0.7 and 0.3 < replica_1.mean() < 0.7
    assert (replica_0 != replica_1).any()
