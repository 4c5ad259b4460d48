"""A run directory read somewhere else than where it was trained: a GPU run on a machine without
one (read on the CPU, its spec.toml untouched), and a series run whose CSV changed since (refused)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import rnnlab.kernels.cuda as gpu
from conftest import run_cli as run
from rnnlab.kernels.cuda import _device
from rnnlab.lab import Lab, open_target

NO_GPU = "no CUDA device found (none in this test)"


def lines(err: str) -> list[str]:
    assert "Traceback" not in err, err
    return [line for line in err.splitlines() if line.strip()]


def snapshot(run_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(run_dir.iterdir()) if p.is_file()}


@pytest.fixture
def no_gpu(monkeypatch):
    """No usable GPU, whatever this machine has (the package re-exports the function: both are replaced)."""
    monkeypatch.setattr(_device, "cuda_available", lambda: (False, NO_GPU))
    monkeypatch.setattr(gpu, "cuda_available", lambda: (False, NO_GPU))


@pytest.fixture
def runs(capsys, tmp_path):
    """A hello run trained on the CPU, and a copy of it whose spec says it was trained on a GPU."""
    cpu_run, cuda_run = tmp_path / "cpu", tmp_path / "cuda"
    code, _, err = run(capsys, "train", "hello", "--steps", "20", "--out", cpu_run)
    assert code == 0, err
    shutil.copytree(cpu_run, cuda_run)
    spec = cuda_run / "spec.toml"
    assert 'device = "cpu"' in spec.read_text()
    spec.write_text(spec.read_text().replace('device = "cpu"', 'device = "cuda"'))
    return cpu_run, cuda_run


# ---------------------------------------------------------------------------- a GPU run without a GPU
def test_a_gpu_run_is_read_on_the_cpu_with_one_line_saying_so(capsys, tmp_path, no_gpu, runs):
    cpu_run, cuda_run = runs
    saved = snapshot(cuda_run)
    commands = [lambda run_dir: ["bptt", run_dir, "--json"],
                lambda run_dir: ["trace", run_dir, "--out", tmp_path / f"{run_dir.name}.npz"],
                lambda run_dir: ["sample", run_dir, "--prime", "h", "--length", "8", "--seed", "3"]]
    for command in commands:
        code, expected, err = run(capsys, *command(cpu_run))
        assert code == 0 and lines(err) == [], err
        code, out, err = run(capsys, *command(cuda_run))
        assert code == 0, err
        assert lines(err) == [f"rnnlab: warning: {cuda_run} asks for device 'cuda', which is not available here "
                              f"({NO_GPU}): running on the CPU instead (the same numbers)"]
        assert out.replace("cuda.npz", "cpu.npz") == expected  # the trained weights, read the same way
    with np.load(tmp_path / "cpu.npz") as on_cpu, np.load(tmp_path / "cuda.npz") as read_on_cpu:
        assert all(np.array_equal(on_cpu[name], read_on_cpu[name]) for name in ("h", "c", "dh", "outputs"))
    assert snapshot(cuda_run) == saved  # spec.toml still says cuda


def test_device_chooses_explicitly(capsys, tmp_path, no_gpu, runs):
    _, cuda_run = runs
    code, out, err = run(capsys, "bptt", cuda_run, "--device", "cpu", "--json")
    assert code == 0 and lines(err) == [] and json.loads(out)["trained_steps"] == 20
    for command in (["bptt", cuda_run], ["trace", cuda_run, "--out", tmp_path / "t.npz"],
                    ["sample", cuda_run, "--prime", "h"]):
        code, out, err = run(capsys, *command, "--device", "cuda")
        assert code == 2 and out == "" and lines(err) == [f"rnnlab: error: device 'cuda' is not available: {NO_GPU}"]
        code, out, err = run(capsys, *command, "--device", "gpu")
        assert code == 2 and out == ""
        assert lines(err) == ["rnnlab: error: --device must be cpu or cuda, got 'gpu'"]
    assert not (tmp_path / "t.npz").exists()


def test_resume_keeps_asking_for_the_device_it_was_given(capsys, no_gpu, runs):
    _, cuda_run = runs
    saved = snapshot(cuda_run)
    code, _, err = run(capsys, "train", "--resume", cuda_run, "--steps", "30")
    assert code == 2 and lines(err) == [f'rnnlab: error: model.device = "cuda" in {cuda_run / "spec.toml"}: device '
                                        f"'cuda' is not available: {NO_GPU} (--device cpu trains it on the CPU: the "
                                        "same numbers)"]
    assert snapshot(cuda_run) == saved


def test_the_lab_opens_a_gpu_run_on_the_cpu(capsys, no_gpu, runs):
    """The TUI's path: open_lab checks the target with open_target, the app builds Lab.open(target)."""
    cpu_run, cuda_run = runs
    spec, run_dir = open_target(cuda_run)
    assert spec.model.device == "cpu" and run_dir.spec.model.device == "cuda"
    lab = Lab.open(cuda_run)
    assert lab.spec.model.device == "cpu" and lab.trainer.step == 20
    assert len(lines(capsys.readouterr().err)) == 2  # one line for each opening
    reference = Lab.open(cpu_run)
    assert lab.evaluation.loss == reference.evaluation.loss
    assert Lab.open(cuda_run, device="cpu").spec.model.device == "cpu" and lines(capsys.readouterr().err) == []
    lab.save_run()  # ctrl+s in the lab: the run stays a GPU run
    assert lab.run.path == cuda_run and 'device = "cuda"' in (cuda_run / "spec.toml").read_text()


# ---------------------------------------------------------------------------- a series run's data
def trained(capsys, tmp_path: Path, spec_text: str) -> Path:
    """The run directory ``tmp_path/r`` of the spec ``spec_text`` (written to ``tmp_path/spec.toml``), trained."""
    spec, run_dir = tmp_path / "spec.toml", tmp_path / "r"
    spec.write_text(spec_text, encoding="utf-8")
    code, _, err = run(capsys, "train", spec, "--out", run_dir)
    assert code == 0, err
    return run_dir


@pytest.fixture
def series_run(capsys, tmp_path):
    """A 20-step forecaster of series.csv (one sine column); returns (run dir, csv file, its numbers)."""
    values = np.sin(np.arange(200) / 7.0)
    csv = tmp_path / "series.csv"
    csv.write_text("".join(f"{v:.17g}\n" for v in values), encoding="utf-8")
    run_dir = trained(capsys, tmp_path, 'name = "series"\n[task]\nkind = "series"\npath = "series.csv"\n'
                                        'length = 10\n[model]\ncell = "rnn"\nhidden_size = 8\n[train]\nsteps = 20\n'
                                        'batch_size = 4\n')
    return run_dir, csv, values


def test_a_series_run_refuses_a_changed_csv(capsys, tmp_path, series_run):
    run_dir, csv, values = series_run
    with np.load(run_dir / "checkpoint.npz", allow_pickle=False) as data:
        recorded = json.loads(str(data["meta"]))["data"]
    assert recorded["file"] == str(csv) and len(recorded["sha256"]) == 64
    csv.write_text("".join(f"{v:.17g}\n" for v in values[::-1]), encoding="utf-8")  # as many rows, other numbers
    saved = snapshot(run_dir)
    for args in (["train", "--resume", run_dir, "--steps", "40"], ["bptt", run_dir],
                 ["trace", run_dir, "--out", tmp_path / "t.npz"]):
        code, out, err = run(capsys, *args)
        assert code == 2 and out == "", (args, err)
        (line,) = lines(err)
        assert line.startswith(f"rnnlab: error: {csv}: its data changed since {run_dir} was trained (other numbers)"), line
    assert snapshot(run_dir) == saved and not (tmp_path / "t.npz").exists()
    # the same numbers written another way (a header line, \r\n line ends) are the same series
    csv.write_bytes(("value\r\n" + "".join(f"{v:.17g}\r\n" for v in values)).encode())
    code, out, err = run(capsys, "bptt", run_dir, "--json")
    assert code == 0 and json.loads(out)["trained_steps"] == 20, err


def test_a_run_moved_with_its_data_finds_the_data_where_it_sat_beside_the_run(capsys, tmp_path, series_run):
    """A project folder (data and runs) moved or copied as a whole: the spec's absolute path is
    gone, and every command said "put it back". The checkpoint records where the file was from the
    run; its fingerprint still refuses other numbers found there."""
    run_dir, csv, values = series_run
    project = tmp_path.parent / f"{tmp_path.name}-moved"
    shutil.move(tmp_path, project)
    moved_run, moved_csv = project / run_dir.name, project / csv.name
    note = (f"rnnlab: note: {csv} is gone; using {moved_csv}, at the same place relative to the run as when it "
            "was trained")
    code, out, err = run(capsys, "bptt", moved_run, "--json")
    assert code == 0 and json.loads(out)["trained_steps"] == 20 and lines(err) == [note], err
    assert f'path = "{csv}"' in (moved_run / "spec.toml").read_text()  # reading leaves the spec as it is
    spec = moved_run / "spec.toml"  # an interrupted run (5 steps to go), resumed as it is, without --steps
    spec.write_text(spec.read_text().replace("steps = 20\n", "steps = 25\n"))
    code, _, err = run(capsys, "train", "--resume", moved_run)
    assert code == 0, err
    assert f'path = "{moved_csv}"' in spec.read_text()  # ... training writes where it is: no note again
    code, _, err = run(capsys, "bptt", moved_run)
    assert code == 0 and "note" not in err, err
    moved_csv.write_text("".join(f"{v:.17g}\n" for v in values[::-1]), encoding="utf-8")
    code, _, err = run(capsys, "bptt", moved_run)
    assert code == 2 and "its data changed since" in err


def test_a_path_through_dot_dot_is_kept_without_it(capsys, tmp_path, monkeypatch):
    """specs/ beside data/: a spec's "../data/s.csv" (and --set task.path=../...) was kept as
    "specs/../data/s.csv", so renaming specs/ later made every command call the file gone (or, for a
    copied run, missing) though it never moved."""
    (tmp_path / "specs").mkdir()
    (tmp_path / "data").mkdir()
    csv = tmp_path / "data" / "s.csv"
    csv.write_text("".join(f"{v:.17g}\n" for v in np.sin(np.arange(200) / 7.0)), encoding="utf-8")
    spec = tmp_path / "specs" / "s.toml"
    spec.write_text('name = "s"\n[task]\nkind = "series"\npath = "../data/s.csv"\nlength = 10\n[model]\n'
                    'cell = "rnn"\nhidden_size = 8\n[train]\nsteps = 5\nbatch_size = 4\n', encoding="utf-8")
    code, out, err = run(capsys, "spec", spec)
    assert code == 0 and f'path = "{csv}"' in out, err
    run_dir = tmp_path / "runs" / "s"
    monkeypatch.chdir(tmp_path / "specs")  # --set's path is the current directory's
    code, _, err = run(capsys, "train", spec, "--out", run_dir, "--set", "task.path=../data/./s.csv")
    assert code == 0, err
    assert f'path = "{csv}"' in (run_dir / "spec.toml").read_text()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "specs").rename(tmp_path / "specs-old")
    code, out, err = run(capsys, "bptt", run_dir, "--json")
    assert code == 0 and lines(err) == [] and json.loads(out)["trained_steps"] == 5, err


def test_a_moved_project_with_another_file_at_the_old_place_names_the_one_beside_the_run(capsys, tmp_path,
                                                                                        series_run):
    """The project moved whole, and a new file made where the old one was: the run read that one,
    refused it as changed, and said only "restore it", though the file trained on sat beside the run."""
    run_dir, csv, values = series_run
    project = tmp_path.parent / f"{tmp_path.name}-moved"
    shutil.move(tmp_path, project)
    tmp_path.mkdir()
    csv.write_text("".join(f"{v:.17g}\n" for v in values[::-1]), encoding="utf-8")  # other numbers, the old place
    moved_run = project / run_dir.name
    code, _, err = run(capsys, "bptt", moved_run)
    (line,) = lines(err)
    assert code == 2 and f"{csv}: its data changed since {moved_run} was trained" in line
    assert line.endswith(f"; or, if {project / csv.name} (where it sat beside the run) is the file trained on, set "
                         f"task.path to it in {moved_run / 'spec.toml'}")


# ---------------------------------------------------------------------------- shipped data
def test_a_run_on_shipped_data_names_the_file_as_the_presets_do(capsys, tmp_path, monkeypatch):
    """spec.toml says path = "tiny-shakespeare.txt", not where this install keeps it: read after
    rnnlab moved (another install, another machine), the run finds the file in its new sample_data/."""
    from rnnlab.data import files

    run_dir = trained(capsys, tmp_path, 'name = "shipped"\n[task]\nkind = "text"\npath = "tiny-shakespeare.txt"\n'
                                        'length = 8\n[model]\ncell = "rnn"\nhidden_size = 8\n[train]\nsteps = 2\n'
                                        'batch_size = 2\n')
    assert 'path = "tiny-shakespeare.txt"' in (run_dir / "spec.toml").read_text(encoding="utf-8")
    moved = tmp_path / "elsewhere" / "sample_data"
    shutil.copytree(files.SAMPLE_DIR, moved)
    monkeypatch.setattr(files, "SAMPLE_DIR", moved)
    code, out, err = run(capsys, "sample", run_dir, "--length", "5", "--seed", "1", "--json")
    assert code == 0 and lines(err) == [], err
    assert len(json.loads(out)["text"]) >= 5


def test_a_spec_asking_for_cuda_by_set_is_named_not_dumped(capsys, no_gpu):
    """--set model.device=cuda hands the lab a Spec: its warning printed the Spec's whole repr."""
    from rnnlab.lab import open_target
    from rnnlab.spec import edited, load_preset

    spec, _ = open_target(edited(load_preset("hello"), {"model.device": "cuda"}))
    assert spec.model.device == "cpu"
    assert lines(capsys.readouterr().err) == [f"rnnlab: warning: hello asks for device 'cuda', which is not available "
                                              f"here ({NO_GPU}): running on the CPU instead (the same numbers)"]
