"""Worker processes: what the run says when they cannot start, and where codecs' load times come from."""

import os
from pathlib import Path

import pytest

from codecbench import registry, workers
from codecbench.data.datasets import resolve_dataset
from codecbench.errors import CodecError
from codecbench.runner import run_sweep
from codecbench.store import ResultsStore

pytestmark = pytest.mark.slow  # worker processes

PLUGINS = Path(__file__).parent / "plugins"

#: A worker that reads its configuration, closes its pipes (as an exception unwinding the real worker's
#: main does) and, a moment later, dies of an import error.
BROKEN_WORKER = '''
import sys, time
from multiprocessing.connection import Connection
inbox, outbox = Connection(int(sys.argv[1]), writable=False), Connection(int(sys.argv[2]), readable=False)
inbox.recv()
inbox.close()
outbox.close()
time.sleep(0.3)
import codecbench_missing_dependency
'''


@pytest.fixture
def plugin_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(PLUGINS))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(PLUGINS), os.environ.get("PYTHONPATH")])))


@pytest.fixture(scope="module")
def sample():
    return resolve_dataset("sample", None, download=False, progress=False)


def test_a_worker_dying_at_start_up_is_reported_with_its_exit_status_and_stderr(tmp_path, monkeypatch, sample,
                                                                                capfd):
    (tmp_path / "broken_worker.py").write_text(BROKEN_WORKER)
    monkeypatch.syspath_prepend(str(tmp_path))  # workers get the driver's sys.path
    monkeypatch.setattr(workers, "WORKER_MODULE", "broken_worker")
    store = ResultsStore(tmp_path / "results")
    with pytest.raises(CodecError) as caught:
        run_sweep(store, [sample], {"jpeg": registry.create("jpeg")}, {"jpeg": [50.0]}, ["psnr_rgb"],
                  codec_options={"jpeg": {}}, progress=False)
    message = str(caught.value)
    assert "the last one exited with code 1 before it was ready" in message, message
    assert "SIGKILL" not in message
    assert message.endswith("its stderr ends: ModuleNotFoundError: No module named 'codecbench_missing_dependency'; "
                            "run with --in-process to see the whole error"), message
    assert "Traceback" in capfd.readouterr().err  # the workers' stderr is passed on


def test_load_times_are_measured_in_the_workers_that_ran_the_codec(tmp_path, monkeypatch, sample, plugin_on_path):
    monkeypatch.setenv("PROBE_PREPARE_S", "0.3")
    probe = registry.create("probe")
    store = ResultsStore(tmp_path / "results")
    summary = run_sweep(store, [sample], {"probe": probe}, {"probe": [1.0]}, ["psnr_rgb"],
                        codec_options={"probe": {}}, progress=False)
    assert summary.ok
    assert probe.prepared_in is None  # the driver never loads the codec's weights
    (manifest,) = store.manifests()
    assert manifest["codec_load_s"]["probe"] >= 0.3
    assert max(row["encode_s"] + row["decode_s"] for row in store.rows()) < 0.3
