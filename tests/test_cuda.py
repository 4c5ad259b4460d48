"""The optional GPU kernels: lazily imported, clear about why they can't run, equal to the CPU kernels.

The kernel comparisons live in ``tests/cuda_sim/sim_cases.py`` and run in subprocesses: under
numba-cuda's simulator (``NUMBA_ENABLE_CUDASIM=1`` must be set before numba is imported) and, on
a machine with a usable GPU, once more on the device. ``tests/cuda_sim/ptx_cases.py`` compiles
every kernel for a real GPU where NVVM is installed (no GPU needed), which the simulator never does.
``memory_cases.py`` and ``launch_cases.py`` check the block cache and the launch plans on
numba-cuda's real CUDA target, over a fake context and driver.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import background
import pytest
from background import BackgroundCases

from rnnlab.errors import UserError
from rnnlab.kernels.cuda import _device

ROOT = Path(__file__).resolve().parent.parent
SIM_CASES = "tests/cuda_sim/sim_cases.py"
PTX_CASES = "tests/cuda_sim/ptx_cases.py"
MEMORY_CASES = "tests/cuda_sim/memory_cases.py"
LAUNCH_CASES = "tests/cuda_sim/launch_cases.py"
ENV = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
ENV["PYTHONPATH"] = str(ROOT)

PROBE = r"""
import json, sys
import rnnlab, rnnlab.kernels, rnnlab.layers, rnnlab.lab, rnnlab.bench
from rnnlab.kernels import cuda as gpu
loaded = sorted(m for m in sys.modules if m == "numba.cuda" or m.startswith("numba.cuda.")
                or m.startswith("rnnlab.kernels.cuda.") and m != "rnnlab.kernels.cuda._device")
ok, reason = gpu.cuda_available()
try:
    gpu.require_cuda()
    error = None
except Exception as exc:
    error = [type(exc).__name__, isinstance(exc, rnnlab.errors.UserError), str(exc)]
print(json.dumps({"loaded_by_import": loaded, "available": ok, "reason": reason, "error": error}))
"""


@pytest.fixture(scope="module")
def probe() -> dict:
    """Import rnnlab in a fresh interpreter, then ask for CUDA there (no simulator)."""
    result = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=ENV, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_importing_rnnlab_imports_no_cuda_module(probe):
    assert probe["loaded_by_import"] == []


def test_cuda_available_gives_a_one_line_reason(probe):
    reason = probe["reason"]
    assert isinstance(probe["available"], bool)
    assert reason and "\n" not in reason
    if probe["available"]:
        assert reason.startswith("CUDA device 0: ") and probe["error"] is None
    else:
        assert reason.startswith((_device.NOT_INSTALLED, _device.NO_DEVICE, _device.DRIVER_ERROR,
                                  _device.TOOLKIT_ERROR, _device.INCOMPATIBLE, "numba-cuda failed to import"))
        assert probe["error"] == ["CudaUnavailableError", True, f"device 'cuda' is not available: {reason}"]


# ---------------------------------------------------------------------------------------------
# Each reason, with numba.cuda replaced by a stand-in (nothing real is imported or initialised)
# ---------------------------------------------------------------------------------------------
class _Device:
    name = b"NVIDIA Test GPU"
    compute_capability = (9, 0)


def _compiles(pyfunc, signature, cc):
    return "// PTX", None


def _fake_cuda(monkeypatch, list_devices, compile_ptx=_compiles):
    import numba

    fake = types.ModuleType("numba.cuda")
    fake.list_devices = list_devices
    fake.compile_ptx = compile_ptx
    monkeypatch.setattr(_device, "_TOOLKIT_OK", set())
    monkeypatch.setitem(sys.modules, "numba.cuda", fake)
    monkeypatch.setattr(numba, "cuda", fake, raising=False)
    monkeypatch.setattr(_device, "numba_cuda_installed", lambda: True)
    monkeypatch.setattr(_device, "simulator_enabled", lambda: False)


def _raises(message):
    def list_devices():
        raise ImportError(message)  # numba-cuda's CudaSupportError is an ImportError

    return list_devices


@pytest.mark.parametrize("devices,expected", [
    (_raises("Error at driver init: \n\nCUDA driver library cannot be found.\nEnsure that ...: "),
     "no CUDA device found (CUDA driver library cannot be found. Ensure that ...)"),
    (_raises("Error at driver init: CUDA_ERROR_NO_DEVICE (100)"), "no CUDA device found (CUDA_ERROR_NO_DEVICE (100))"),
    (_raises("Error at driver init: CUDA_ERROR_SYSTEM_DRIVER_MISMATCH (803)"),
     "CUDA driver error: CUDA_ERROR_SYSTEM_DRIVER_MISMATCH (803)"),
    (lambda: [], "no CUDA device found"),
], ids=["no-driver-library", "no-device", "driver-mismatch", "empty-device-list"])
def test_each_failure_has_its_reason(monkeypatch, devices, expected):
    _fake_cuda(monkeypatch, devices)
    assert _device.cuda_available() == (False, expected)
    with pytest.raises(_device.CudaUnavailableError, match=re.escape(expected)) as info:
        _device.require_cuda()
    assert isinstance(info.value, UserError)


def test_a_device_is_named(monkeypatch):
    _fake_cuda(monkeypatch, lambda: [_Device()])
    assert _device.cuda_available() == (True, "CUDA device 0: NVIDIA Test GPU")
    assert _device._TOOLKIT_OK == {(9, 0)}  # checked once per process


def test_a_missing_toolkit_is_named(monkeypatch):
    def compile_ptx(pyfunc, signature, cc):
        raise RuntimeError('Failure finding "libnvrtc.so.13 or libnvrtc.so.12":\n No such file')

    _fake_cuda(monkeypatch, lambda: [_Device()], compile_ptx)
    assert _device.cuda_available() == (
        False, 'CUDA toolkit error: Failure finding "libnvrtc.so.13 or libnvrtc.so.12": No such file'
               " (pip install 'numba-cuda[cu12]' or 'numba-cuda[cu13]')")


def test_a_numba_cuda_broken_by_its_numpy_is_not_called_a_missing_toolkit(monkeypatch):
    """What an H200 image did: numba-cuda 0.30.4 with numpy 2.5 fails inside the compiler."""
    def compile_ptx(pyfunc, signature, cc):
        raise AttributeError("module 'numpy' has no attribute 'row_stack'")

    _fake_cuda(monkeypatch, lambda: [_Device()], compile_ptx)
    ok, reason = _device.cuda_available()
    assert not ok
    assert reason.startswith("numba-cuda cannot compile kernels with these versions: module 'numpy' has no "
                             "attribute 'row_stack' (numba-cuda ")
    assert ", numba " in reason and ", numpy " in reason and "numba-cuda[cu1" not in reason  # not the toolkit
    assert reason.endswith("; numpy 2.4 works: pip install 'numpy<2.5'")


def test_missing_numba_cuda_is_named_before_anything_is_imported(monkeypatch):
    import rnnlab.kernels.cuda as gpu

    monkeypatch.setattr(_device, "numba_cuda_installed", lambda: False)
    assert gpu.cuda_available() == (False, "numba-cuda is not installed (pip install -e '.[cuda]')")
    modules_before = set(sys.modules)
    with pytest.raises(gpu.CudaUnavailableError, match=r"not available: numba-cuda is not installed"):
        gpu.lstm_forward  # noqa: B018 - the kernels load on first access, after require_cuda()
    assert set(sys.modules) == modules_before
    with pytest.raises(AttributeError):
        gpu.no_such_kernel  # noqa: B018


def test_layers_take_a_device_and_refuse_one_that_cannot_run(monkeypatch):
    import rnnlab

    assert rnnlab.LSTM(2, 3).device == "cpu"
    with pytest.raises(ValueError, match="device must be cpu or cuda, got 'gpu'"):
        rnnlab.GRU(2, 3, device="gpu")
    _fake_cuda(monkeypatch, _raises("Error at driver init: CUDA_ERROR_NO_DEVICE (100)"))
    with pytest.raises(UserError, match=r"device 'cuda' is not available: no CUDA device found"):
        rnnlab.RNN(2, 3, nonlinearity="relu", device="cuda")


# ---------------------------------------------------------------------------------------------
# The kernels, compared with the CPU kernels in a subprocess
# ---------------------------------------------------------------------------------------------
def _cases_command(simulate: bool, cases: str, options: tuple[str, ...], env: dict[str, str]):
    env = {**ENV, **env, background.CASES_RUN_ENV: "1"}  # their pytest is no suite's main process
    if simulate:
        env["NUMBA_ENABLE_CUDASIM"] = "1"
    return [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", cases, *options], env


def _run_cases(simulate: bool, cases: str = SIM_CASES, *options: str, **env: str) -> subprocess.CompletedProcess:
    command, env = _cases_command(simulate, cases, options, env)
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)


BACKGROUND = BackgroundCases()


def in_background(simulate: bool, cases: str, *options: str, **env: str):
    """Mark a test as one that waits for its cases (``pytest CASES OPTIONS``, under the simulator if
    ``simulate``), which :data:`BACKGROUND` runs under the test's name, in the order the tests are
    defined; the test reads their result from the ``cases_result`` fixture."""
    def mark(test):
        if _device.numba_cuda_installed():  # else the tests are skipped, and nothing need run
            BACKGROUND.add(test.__name__, *_cases_command(simulate, cases, options, env))
        test.background_cases = BACKGROUND
        return test

    return mark


@pytest.fixture
def cases_result(request) -> subprocess.CompletedProcess:
    """The finished cases of the requesting test (marked :func:`in_background`)."""
    return BACKGROUND.result(request.function.__name__)


def _assert_all_passed(result: subprocess.CompletedProcess) -> None:
    tail = (result.stdout + result.stderr)[-6000:]
    assert result.returncode == 0, tail
    summary = result.stdout.strip().splitlines()[-1]
    assert re.search(r"\d+ passed", summary) and "skipped" not in summary and "failed" not in summary, tail


@pytest.mark.skipif(not _device.numba_cuda_installed(), reason=_device.NOT_INSTALLED + ": simulator tests skipped")
@in_background(True, SIM_CASES)
def test_kernels_match_cpu_under_the_simulator(cases_result):
    _assert_all_passed(cases_result)


@pytest.mark.skipif(not _device.numba_cuda_installed(), reason=_device.NOT_INSTALLED + ": simulator tests skipped")
@in_background(True, SIM_CASES, "-k", "cell_matches_cpu_kernels and float64-persistent or several_tiles and persistent "
               "and not SMALL",  # the tile set for every shape: one of the two shipped tiles' names will do
               RNNLAB_TEST_STEP_TILE="6,2,9,4")
def test_kernels_match_cpu_with_another_step_tile(cases_result):
    """The step's load and store indexing under a tile where no two sizes coincide: 6 units x 2
    row threads, 9 rows each, K 4 deep (a pass of the 12 threads loads 3 rows of 4). In the
    shipped simulator tile (8x4 threads, 2 rows each, K 8) units and K are both 8, so a swapped
    unit and K index would pass there."""
    _assert_all_passed(cases_result)


@pytest.mark.parametrize("tile,problem", [
    ((32, 8, 4, 32), None),  # the shipped tile
    ((16, 8, 2, 32), None),  # its quarter, for shapes the full one leaves multiprocessors idle on
    ((8, 4, 2, 8), None),  # the simulator's
    ((4, 4, 1, 8), None),  # and its quarter
    ((6, 2, 9, 4), None),
    ((32, 8, 4, 24), "K=24 must divide the 256 threads"),
    ((32, 4, 3, 16), "the 8 rows one pass of the block loads must divide the 12 rows and the 32 units"),
    ((8, 4, 2, 2), "the 16 rows one pass of the block loads must divide the 8 rows and the 8 units"),
    ((64, 32, 1, 32), "2048 threads, more than a block's 1024"),
])
def test_a_step_tile_must_split_evenly_over_its_threads(tile, problem):
    from rnnlab.kernels.cuda._tile import step_tile_problem

    assert step_tile_problem(*tile) == problem


@pytest.mark.parametrize("tile,problem", [
    ((64, 64, 16, 16, 16), None),  # the shipped tile
    ((128, 128, 8, 16, 16), None),  # 8 x 8 outputs a thread
    ((12, 10, 3, 5, 3), None),
    ((64, 64, 16, 12, 16), "the 16 x 12 threads must divide the 64 x 64 outputs evenly"),
    ((64, 64, 0, 16, 16), "every size must be positive"),
    ((64, 64, 16, 32, 64), "2048 threads, more than a block's 1024"),
])
def test_a_gemm_tile_gives_every_thread_the_same_outputs(tile, problem):
    from rnnlab.kernels.cuda._tile import gemm_tile_problem

    assert gemm_tile_problem(*tile) == problem


@pytest.mark.skipif(not _device.numba_cuda_installed(), reason=_device.NOT_INSTALLED + ": block cache tests skipped")
@in_background(False, MEMORY_CASES)  # numba-cuda's real target over a stand-in driver
def test_device_memory_is_reused_and_never_while_in_use(cases_result):
    _assert_all_passed(cases_result)


@pytest.mark.skipif(not _device.numba_cuda_installed(), reason=_device.NOT_INSTALLED + ": launch tests skipped")
@in_background(False, LAUNCH_CASES)
def test_launches_lay_out_arguments_as_numba_cuda_does(cases_result):
    _assert_all_passed(cases_result)


def test_kernels_match_cpu_on_the_gpu(probe):
    if not probe["available"]:
        pytest.skip(f"no GPU: {probe['reason']}")
    _assert_all_passed(_run_cases(simulate=False))


@pytest.mark.skipif(not _device.numba_cuda_installed(), reason=_device.NOT_INSTALLED + ": PTX check skipped")
@in_background(False, PTX_CASES)  # NVVM's compile: minutes where it is installed
def test_kernels_compile_for_a_real_gpu(cases_result):
    skipped = re.search(r"SKIPPED \[\d+\] \S+: (.*)", cases_result.stdout)
    if cases_result.returncode in (0, 5) and skipped and " passed" not in cases_result.stdout.strip().splitlines()[-1]:
        pytest.skip(skipped.group(1))
    _assert_all_passed(cases_result)


def test_spec_and_cli_take_a_device(monkeypatch, tmp_path, capsys):
    """`model.device` / `rnnlab train --device`: validated by name; a GPU that cannot be used is one
    line (exit 2) and leaves no run directory behind."""
    from rnnlab import cli
    from rnnlab.errors import SpecError
    from rnnlab.spec import load_preset

    spec = load_preset("hello")
    assert spec.model.device == "cpu" and 'device = "cpu"' in spec.to_toml()
    with pytest.raises(SpecError, match="the GPU kernels are rnn, lstm, gru; mingru runs on the cpu"):
        spec.with_overrides({"model.cell": "mingru", "model.device": "cuda"})
    _fake_cuda(monkeypatch, _raises("Error at driver init: CUDA_ERROR_NO_DEVICE (100)"))
    code = cli.main(["train", "hello", "--device", "cuda", "--out", str(tmp_path / "run")])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.strip().splitlines() == ["rnnlab: error: device 'cuda' is not available: no CUDA device found "
                                        "(CUDA_ERROR_NO_DEVICE (100))"]
    assert not (tmp_path / "run").exists()


def test_the_cuda_bench_marks_the_issues_targets():
    """`rnnlab bench --device cuda` marks issue 6's targets on f+b (cuDNN / rnnlab): >= 0.5 at
    B >= 64, >= 1 at B = 1 with H <= 256, none elsewhere; a missed one stands out."""
    from rnnlab import bench_cuda

    assert [bench_cuda.target_for(B, H) for B, H in [(64, 512), (256, 1024), (1, 256), (1, 16), (1, 512), (32, 128)]] \
        == [0.5, 0.5, 1.0, 1.0, None, None]
    assert any(B == 1 and H == 256 for B, _, _, H in bench_cuda.SHAPES)  # the top of the B = 1 target's range
    base = {"cell": "lstm", "T": 100, "I": 32, "rnnlab_fwd_ms": 1.0, "rnnlab_fwdbwd_ms": 2.0,
            "rnnlab_host_fwdbwd_ms": 3.0}
    rows = [{**base, "B": 1, "H": 64, "target": 1.0, "met": True, "ratio_fwdbwd": 1.3},
            {**base, "B": 64, "H": 512, "target": 0.5, "met": False, "ratio_fwdbwd": 0.25},
            {**base, "B": 32, "H": 128, "target": None, "met": None},
            {**base, "B": 256, "H": 1024, "target": 0.5, "met": None}]  # no cuDNN: timed, not judged
    table = bench_cuda.markdown(rows).splitlines()
    assert "| target |" in table[0]
    assert [line.split("|")[12].strip() for line in table[2:]] == [">= 1 met", ">= 0.5 **missed**", "-", ">= 0.5"]


def test_the_cuda_bench_checks_targets_only_against_cudnn(capsys):
    from rnnlab import bench_cuda

    with pytest.raises(SystemExit) as exit_info:
        bench_cuda.main(["--check-targets", "--no-torch"])
    assert exit_info.value.code == 2 and "--check-targets needs torch" in capsys.readouterr().err


def test_the_cuda_bench_shows_each_step_tile_it_compared():
    """``--compare-tiles`` adds f+b with the full and the quarter step tile forced, after the
    other columns; a row measured without them shows dashes."""
    from rnnlab import bench_cuda

    base = {"cell": "gru", "B": 32, "T": 100, "I": 64, "H": 128, "rnnlab_fwd_ms": 1.0, "rnnlab_fwdbwd_ms": 2.5,
            "rnnlab_host_fwdbwd_ms": 3.0, "target": None, "met": None}
    rows = [{**base, "step_tile_fwdbwd_ms": 3.5, "small_step_tile_fwdbwd_ms": 2.5}, base]
    table = bench_cuda.markdown(rows).splitlines()
    assert table[0].endswith("| full tile f+b | quarter tile f+b |")
    assert [cell.strip() for cell in table[2].split("|")[-3:-1]] == ["3.500", "2.500"]
    assert [cell.strip() for cell in table[3].split("|")[-3:-1]] == ["-", "-"]
    assert len({line.count("|") for line in table}) == 1
