"""Specs, presets, the trainer, run directories and the results the issue promises.

Training results use real thresholds at sizes CI can afford (a few seconds each).
"""

from __future__ import annotations

import json
import os
import re
import tomllib
import warnings
from pathlib import Path

import numpy as np
import pytest

from rnnlab.errors import RunDirError, SpecError, UserError
from rnnlab.spec import Spec, load_preset, load_spec, parse_spec, preset_names
from rnnlab.train import EvalRecord, RunDir, Trainer, train_run
from rnnlab.train.rundir import CHECKPOINT, EVALS, METRICS

REQUIRED_PRESETS = {"hello", "adding-rnn", "adding-lstm", "copy", "sine", "mackey-glass", "text"}


def small(spec: Spec, **overrides) -> Spec:
    return spec.with_overrides(overrides)


# ---------------------------------------------------------------------------- specs and presets
def test_presets_ship_and_validate_with_hello_first():
    names = preset_names()
    assert names[0] == "hello"
    assert REQUIRED_PRESETS <= set(names)
    for name in names:
        spec = load_preset(name)
        assert spec.name == name and spec.description
        # the resolved TOML parses back to the same spec
        assert parse_spec(spec.to_toml(), source="x", base_dir=None).to_mapping() == spec.to_mapping()


def test_adding_presets_differ_only_in_the_cell_and_its_learning_rate():
    rnn, lstm = load_preset("adding-rnn").to_mapping(), load_preset("adding-lstm").to_mapping()
    assert rnn["task"] == lstm["task"] and rnn["model"]["cell"] == "rnn" and lstm["model"]["cell"] == "lstm"
    assert {k for k in rnn["train"] if rnn["train"][k] != lstm["train"][k]} <= {"learning_rate"}


@pytest.mark.parametrize("base, others", [
    ("adding-lstm", ["adding-mingru", "adding-attention"]),
    ("copy", ["copy-gru", "copy-mingru", "copy-lru", "copy-attention"]),
    ("selective-copy-gru", ["selective-copy-mingru", "selective-copy-lru"]),
    ("multiscale-rnn", ["multiscale-leaky"]),
])
def test_comparison_presets_differ_only_in_the_cell(base, others):
    reference = load_preset(base).to_mapping()
    for name in others:
        other = load_preset(name).to_mapping()
        assert other["task"] == reference["task"] and other["train"] == reference["train"], name
        assert {k for k in other["model"] if other["model"][k] != reference["model"][k]} == {"cell"}, name
        assert other["seed"] == reference["seed"]


def test_resolved_spec_fills_in_defaults_and_absolute_paths(tmp_path):
    text = tmp_path / "corpus.txt"
    text.write_text("to be or not to be, that is the question\n" * 20, encoding="utf-8")
    spec_file = tmp_path / "exp.toml"
    spec_file.write_text('name = "mine"\n[task]\nkind = "text"\npath = "corpus.txt"\nlength = 10\n', encoding="utf-8")
    spec = load_spec(spec_file)
    data = tomllib.loads(spec.to_toml())
    assert data["task"]["path"] == str(text.resolve())
    assert data["train"]["optimizer"] == "adam" and data["model"]["cell"] == "lstm"
    assert set(data) == {"name", "description", "seed", "task", "model", "train"}


@pytest.mark.parametrize("cell, optimizer, present, absent", [
    ("lstm", "adam", {"forget_bias", "device", "beta1", "eps"},
     {"tau_min", "num_heads", "nonlinearity", "scan", "feedback", "momentum", "alpha", "teacher_forcing"}),
    ("leaky", "sgd", {"tau_min", "tau_max", "learn_tau", "momentum"},
     {"forget_bias", "device", "beta1", "eps", "num_heads", "teacher_forcing"}),
    ("jordan", "rmsprop", {"feedback", "teacher_forcing", "alpha", "eps"}, {"momentum", "beta2", "tau_max"}),
    ("selfattention", "adagrad", {"num_heads", "d_ff", "eps"}, {"alpha", "device", "scan", "forget_bias"}),
])
def test_resolved_spec_lists_only_the_fields_its_cell_and_optimizer_read(cell, optimizer, present, absent):
    """A run's spec.toml does not show an lstm's tau_min or adam's momentum: fields the run never read."""
    spec = Spec.from_mapping({"task": {"kind": "adding", "length": 10}, "model": {"cell": cell},
                              "train": {"optimizer": optimizer}})
    data = tomllib.loads(spec.to_toml())
    written = set(data["model"]) | set(data["train"])
    assert present <= written and not absent & written
    assert {"hidden_size", "num_layers", "bidirectional", "bias", "dtype", "init", "steps", "clip_norm"} <= written
    assert parse_spec(spec.to_toml(), source="x", base_dir=None).to_mapping() == spec.to_mapping()


def test_a_field_left_out_of_a_resolved_spec_is_one_that_cell_refuses_to_change():
    """to_toml leaves out the CELL_FIELDS of other cells: that is only safe while every such field,
    changed from its default, is refused for those cells (else a run's spec.toml would lose it)."""
    from rnnlab.spec import CELLS, CELL_FIELDS, ModelSpec

    changed = {"nonlinearity": "relu", "forget_bias": 1.0, "scan": "scan", "device": "cuda", "num_heads": 2,
               "d_ff": 8, "tau_min": 2.0, "tau_max": 8.0, "learn_tau": False, "feedback": "softmax"}
    assert set(changed) == set(CELL_FIELDS) and all(changed[k] != getattr(ModelSpec(), k) for k in changed)
    for name, cells in CELL_FIELDS.items():
        for cell in set(CELLS) - set(cells):
            with pytest.raises(SpecError) as info:
                Spec.from_mapping({"task": {"kind": "adding", "length": 10},
                                   "model": {"cell": cell, "hidden_size": 8, name: changed[name]}})
            assert info.value.field == f"model.{name}", (cell, name, info.value)


def test_an_eps_that_float32_rounds_up_to_its_smallest_number_is_taken():
    """1e-45 is 1.4e-45 in float32 (its smallest subnormal), not 0: refused with "is 0 in float32"."""
    assert parse_spec("[train]\neps = 1e-45", source="x.toml", base_dir=None).train.eps == 1e-45


def test_a_spec_nested_too_deeply_for_tomllib_is_one_line_not_3000():
    """tomllib recurses once a level: 400 tables deep was a RecursionError, 3,000 lines of traceback."""
    with pytest.raises(SpecError) as info:
        parse_spec("a = " + "{b = " * 400 + "1" + "}" * 400, source="deep.toml", base_dir=None)
    assert str(info.value) == "deep.toml: not valid TOML: tables or arrays nested too deeply to read"


@pytest.mark.parametrize(
    "toml, field, words",
    [
        ('[train]\noptimizer = "adamw"', "train.optimizer", ["adamw", "sgd, adagrad, rmsprop, adam"]),
        ('[model]\ncell = "transformer"', "model.cell", ["rnn, lstm, gru, mingru, minlstm, lru"]),
        ('[model]\ncell = "LSTM"', "model.cell", ["did you mean 'lstm'? allowed: "]),  # as kind = "Adding" is
        ('[train]\noptimizer = "Adam"', "train.optimizer", ["did you mean 'adam'?"]),
        ('[model]\nhidden_size = -3', "model.hidden_size", ["between 1 and 8192"]),
        ('[model]\nhidden_size = true', "model.hidden_size", ["integer"]),
        ('[model]\nhidden = 3', "model.hidden", ["unknown field", "hidden_size"]),
        ('[model]\nhiden_size = 3', "model.hiden_size", ["unknown field (did you mean 'hidden_size'? allowed: "]),
        ('[task]\nkind = "adding"\nlenght = 3', "task.lenght", ["(did you mean 'length'? allowed: length)"]),
        ('seed = 1979-05-27', "seed", ["expected an integer, got 1979-05-27"]),  # not datetime.date(1979, 5, 27)
        ('[model]\nhidden_size = ["a", true]', "model.hidden_size", ['got ["a", true]']),  # not ['a', True]
        ('[train]\nlearning_rate = 0', "train.learning_rate", ["greater than 0"]),
        ('[train]\nlearning_rate = "fast"', "train.learning_rate", ["number"]),
        ('[train]\nlearning_rate = nan', "train.learning_rate", ["finite"]),
        ('[model]\ncell = "lstm"\nnonlinearity = "relu"', "model.nonlinearity", ["rnn"]),
        ('[model]\ncell = "gru"\nscan = "scan"', "model.scan", ["mingru, minlstm, lru", "gru"]),
        ('[model]\ncell = "mingru"\nscan = "parallel"', "model.scan", ["sequential, scan, blelloch"]),
        ('[model]\ncell = "lru"\nbidirectional = true', "model.bidirectional", ["lru", "reverse"]),
        ('[model]\ncell = "lru"\nbias = false', "model.bias", ["lru"]),
        ('[model]\ncell = "mingru"\ninit = "orthogonal"', "model.init", ["W_hh", "mingru", "uniform"]),
        ('[model]\ncell = "minlstm"\nforget_bias = 1.0', "model.forget_bias", ["lstm", "minlstm"]),
        ('[model]\ncell = "selfattention"\nhidden_size = 10\nnum_heads = 4', "model.num_heads",
         ["hidden_size (10)", "divisible", "num_heads (4)"]),
        ('[model]\ncell = "selfattention"\nnum_heads = 0', "model.num_heads", ["between 1 and"]),
        ('[model]\ncell = "selfattention"\nd_ff = -1', "model.d_ff", ["between 0 and"]),
        ('[model]\ncell = "lstm"\nnum_heads = 2', "model.num_heads", ["selfattention", "lstm"]),
        ('[model]\ncell = "gru"\nd_ff = 64', "model.d_ff", ["selfattention", "gru"]),
        ('[model]\ncell = "selfattention"\ninit = "orthogonal"', "model.init", ["W_hh", "selfattention", "uniform"]),
        ('[model]\ncell = "selfattention"\nbias = false', "model.bias", ["selfattention"]),
        ('[model]\ncell = "selfattention"\nforget_bias = 1.0', "model.forget_bias", ["lstm", "selfattention"]),
        ('[model]\ncell = "selfattention"\nscan = "scan"', "model.scan", ["selfattention"]),
        ('[model]\ncell = "selfattention"\nnonlinearity = "relu"', "model.nonlinearity", ["rnn"]),
        ('[model]\ncell = "selfattention"\ndevice = "cuda"', "model.device", ["selfattention", "cpu"]),
        ('[model]\ncell = "selfattention"\n[train]\ntruncate = 5', "train.truncate", ["selfattention", "use 0"]),
        ('colour = "red"', "colour", ["unknown field"]),
        ('[modle]\ncell = "gru"', "modle", ["unknown table [modle] (did you mean [model]?"]),  # not "field"
        ("learning_rate = 0.1", "learning_rate", ["did you mean 'train.learning_rate'?"]),  # its table left out
        ("hidden-size = 8", "hidden-size", ["did you mean 'model.hidden_size'?"]),
        ("sede = 8", "sede", ["did you mean 'seed'?"]),  # a top-level field first
        # a field under another table than its own (TOML reads every line after [train] as its):
        # it was "unknown", and model.learning_rate was offered 'learn_tau'
        ('[task]\nkind = "adding"\n[model]\nlearning_rate = 0.01', "model.learning_rate",
         ["learning_rate belongs in [train], not [model]"]),
        ('[task]\nkind = "adding"\n[train]\nsteps = 100\nseed = 3', "train.seed",
         ["seed is a top-level field, not [train]'s: write it above the first [table] line"]),
        ('[task]\nkind = "adding"\ncell = "gru"', "task.cell", ["cell belongs in [model], not [task]"]),
        ('[task]\nkind = "adding"\n[model]\nlength = 30', "model.length", ["length belongs in [task], not [model]"]),
        ('[task]\nkind = "nope"', "task.kind", ["nope", "adding"]),
        ('[task]\nkind = "adding"\nlength = 0', "task.length", []),
        ('[task]\nlength = 5', "task.kind", ["missing"]),
        ('seed = -1', "seed", []),
        ('[model]\ncell = "lstm"\ntau_min = 2.0', "model.tau_min", ["leaky", "lstm"]),
        ('[model]\ncell = "rnn"\nlearn_tau = false', "model.learn_tau", ["leaky", "rnn"]),
        ('[model]\ncell = "leaky"\ntau_min = 1.0', "model.tau_min", ["greater than 1"]),
        ('[model]\ncell = "leaky"\ntau_min = 10.0\ntau_max = 5.0', "model.tau_max", ["at least tau_min (10)"]),
        ('[train]\noptimizer = "adam"\nmomentum = 0.5', "train.momentum", ["only sgd", "not adam"]),
        ('[train]\nmomentum = 0.0', "train.momentum", ["only sgd", "not adam"]),  # adam is the default
        ('[train]\noptimizer = "sgd"\nbeta1 = 0.5', "train.beta1", ["only adam", "not sgd", "momentum"]),
        ('[train]\noptimizer = "rmsprop"\nbeta2 = 0.9', "train.beta2", ["only adam", "not rmsprop"]),
        ('[train]\noptimizer = "adagrad"\nalpha = 0.9', "train.alpha", ["only rmsprop", "not adagrad"]),
        ('[train]\noptimizer = "sgd"\neps = 1e-6', "train.eps", ["adagrad, rmsprop and adam", "not sgd"]),
        # a list or a table: a TypeError (unhashable) from the check of misplaced fields
        ('[task]\nkind = ["hello"]', "task.kind", ["expected a task name, got a list"]),
        ('[task.kind]\nx = 1', "task.kind", ["expected a task name, got a table"]),
        # 0 in float32: 0/0 where a gradient is 0, which training reported as the weights diverging
        ('[train]\neps = 1e-46', "train.eps", ["1e-46 is 0 in float32", "1.4e-45", "0/0"]),
    ],
)
def test_bad_fields_name_the_field_and_the_allowed_values(toml, field, words):
    with pytest.raises(SpecError) as info:
        parse_spec(toml, source="bad.toml", base_dir=None)
    message = str(info.value)
    assert info.value.field == field and message.startswith(field)
    assert "bad.toml" in message and "\n" not in message
    for word in words:
        assert word in message


@pytest.mark.parametrize("optimizer, settings", [("sgd", {"momentum": 0.5}), ("adagrad", {"eps": 1e-6}),
                                                 ("rmsprop", {"alpha": 0.5, "eps": 1e-6}),
                                                 ("adam", {"beta1": 0.8, "beta2": 0.99, "eps": 1e-6})])
def test_an_optimizers_own_settings_are_taken_and_another_optimizers_defaults_stay_valid(optimizer, settings):
    """Each optimizer's settings are refused for the others only where they differ from the default:
    a resolved spec (a run's spec.toml, the TUI's form) writes every field."""
    defaults = {"momentum": 0.9, "beta1": 0.9, "beta2": 0.999, "alpha": 0.99, "eps": 1e-8}  # written out
    table = {**defaults, "optimizer": optimizer, **settings}
    spec = parse_spec("[train]\n" + "".join(f"{k} = {v!r}\n" for k, v in table.items()), source="x", base_dir=None)
    assert all(getattr(spec.train, k) == v for k, v in settings.items())
    assert parse_spec(spec.to_toml(), source="x", base_dir=None) == spec.with_overrides({})
    every_field = {f"train.{k}": v for k, v in spec.to_mapping()["train"].items()}
    assert spec.with_overrides(every_field) == spec  # the TUI's form sends every field back


def test_another_optimizer_puts_the_old_ones_settings_back_to_their_defaults():
    """The TUI's form changes train.optimizer alone: the old optimizer's settings must not then be
    refused for the new one (nor carried to it); ones the new optimizer reads are kept."""
    sgd = load_preset("hello").with_overrides({"train.optimizer": "sgd", "train.momentum": 0.5})
    adam = sgd.with_overrides({"train.optimizer": "adam"})
    assert adam.train.optimizer == "adam" and adam.train.momentum == 0.9
    rmsprop = load_preset("hello").with_overrides({"train.optimizer": "rmsprop", "train.alpha": 0.5, "train.eps": 1e-6})
    adagrad = rmsprop.with_overrides({"train.optimizer": "adagrad"})
    assert (adagrad.train.alpha, adagrad.train.eps) == (0.99, 1e-6)  # adagrad reads eps too
    with pytest.raises(SpecError, match=r"^train.momentum: only sgd uses momentum, not adam"):
        sgd.with_overrides({"train.optimizer": "adam", "train.momentum": 0.5})  # said explicitly: refused
    assert sgd.with_overrides({"train.learning_rate": 0.1}).train.momentum == 0.5  # the same optimizer


def test_malformed_toml_and_unknown_preset_are_one_line_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[model\ncell = 'x'", encoding="utf-8")
    with pytest.raises(SpecError, match=r"bad.toml: not valid TOML.*line 1"):
        load_spec(bad)
    with pytest.raises(SpecError, match=r"unknown preset 'nope' \(presets: hello, "):
        load_spec("nope")
    with pytest.raises(SpecError, match="no such spec file"):
        load_spec(tmp_path / "missing.toml")
    for typed in ("./hello", "hello/"):  # a path by its spelling: "unknown preset './hello' (did you mean 'hello'?"
        with pytest.raises(SpecError, match=rf"^no such file or directory: {re.escape(typed)} \(a preset name"):
            load_spec(typed)
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"\xff\xfe\x00name")
    with pytest.raises(SpecError, match="not UTF-8"):
        load_spec(binary)



@pytest.mark.parametrize("text, hint", [
    ('[task]\nkind = adding', '; text needs quotes: "adding"'),
    ('[model]\nbidirectional = True', "; TOML writes true in lower case"),
    ('[train]\nsteps = 5\nsteps = 6', "; a field is given twice"),
    ('model.cell = "gru"\n[model]\nhidden_size = 8', "; that table is given twice (a dotted key such as"),
    ('[task]\nkind = "text"\npath = "C:\\Users\\alice\\book.txt"', "; a backslash in \"...\" starts an escape"),
    ('{"task": {"kind": "adding"}}', "; this looks like JSON: a spec is TOML"),
])
def test_a_spec_that_is_no_toml_says_what_the_usual_mistake_is(text, hint):
    """tomllib's own words ("Invalid value (at line 2, column 8)") were all a student got."""
    with pytest.raises(SpecError) as info:
        parse_spec(text, source="hw.toml", base_dir=None)
    assert str(info.value).startswith("hw.toml: not valid TOML: ") and hint in str(info.value)


def test_a_spec_saved_with_a_byte_order_mark_reads_as_without(tmp_path):
    """Windows Notepad writes UTF-8 with a BOM: "not valid TOML: Invalid statement (at line 1, column 1)"."""
    spec = tmp_path / "bom.toml"
    spec.write_bytes(b'\xef\xbb\xbfname = "bom"\n[task]\nkind = "hello"\n')
    assert load_spec(spec).name == "bom"


def test_absurd_sizes_are_refused_before_allocating():
    with pytest.raises(SpecError, match=r"^train.batch_size: training this experiment needs about .* GiB "
                                        r".*batch_size=65536, eval_batch_size=64, .*this machine"):
        load_preset("text").with_overrides({"model.hidden_size": 8192, "train.batch_size": 65536}).check_memory()
    for cell in ("mingru", "minlstm", "lru"):
        spec = load_preset("selective-copy-lru").with_overrides({"model.cell": cell})
        assert 2**20 < spec.estimated_bytes() < 2**28
        with pytest.raises(SpecError, match="^train.batch_size: "):  # the furthest above its usual size
            spec.with_overrides({"model.hidden_size": 8192, "train.batch_size": 65536,
                                 "task.length": 10_000}).check_memory()
    with pytest.raises(SpecError, match=r"^task.length: training this experiment needs about .* length=100000\)"):
        load_preset("adding-lstm").with_overrides({"task.length": 100_000}).check_memory()


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru", "leaky", "jordan", "mingru", "minlstm", "lru", "selfattention"])
def test_the_parameter_estimate_is_close_to_the_models_own_count(cell):
    from rnnlab.train.model import make_model

    shapes = [(1, False)] if cell == "jordan" else [(1, False), (2, False)] + ([] if cell == "lru" else [(2, True)])
    for layers, bidirectional in shapes:
        spec = load_preset("copy").with_overrides({"model.cell": cell, "model.hidden_size": 8,
                                                   "model.num_layers": layers, "model.bidirectional": bidirectional})
        task = spec.make_task()
        model = make_model(spec.model, task.input_size, task.output_size, 0, task.length)
        count = sum(p.size for p in model.parameters().values())
        assert spec.model.parameter_count(task.input_size, task.output_size) == pytest.approx(count, rel=0.15)


def test_a_model_whose_weights_gradients_and_adam_moments_do_not_fit_is_a_spec_error(monkeypatch):
    """8192 units in 8 LSTM layers: 4e9 parameters, 15 GiB of weights; with their gradients and
    Adam's two moments several times that. Refused by the spec, naming the field, before any
    layer allocates (a layer alone refused it only past half the memory, with a ValueError)."""
    import rnnlab.spec

    monkeypatch.setattr(rnnlab.spec, "physical_memory", lambda: 24 * 2**30)  # this machine's, whatever CI has
    for cell, layers in (("lstm", 8), ("selfattention", 4)):
        spec = load_preset("hello")
        params = spec.with_overrides({"model.cell": cell}).model.parameter_count(4, 4)
        assert params < 2e4
        with pytest.raises(SpecError, match=r"^model.hidden_size: training this experiment needs about .* GiB .*more "
                                            r"than half of this machine's"):
            edited = spec.with_overrides({"model.cell": cell, "model.hidden_size": 8192, "model.num_layers": layers})
            edited.check_memory()


def test_another_cell_or_task_rewrites_the_description_it_no_longer_fits():
    spec = load_preset("copy-attention")
    assert "self-attention" in spec.description
    assert spec.with_overrides({"model.hidden_size": 8}).description == \
        spec.description + " (edited: model.hidden_size = 8, the preset's 64)"
    assert spec.with_overrides({"train.steps": 9, "seed": 4}).description == spec.description  # the same experiment
    assert spec.with_overrides({"model.cell": "lru"}).description == "copy-attention with the lru cell instead of " \
                                                                     "selfattention"
    assert spec.with_overrides({"task": {"kind": "adding"}}).description == "copy-attention on the adding task " \
                                                                            "instead of copy"
    assert spec.with_overrides({"task": {"kind": "adding"}, "model.cell": "gru"}).description == \
        "copy-attention on the adding task with the gru cell (was copy, selfattention)"
    assert spec.with_overrides({"model.cell": "lru", "description": "mine"}).description == "mine"
    hello_gru = load_preset("hello").with_overrides({"model.cell": "gru", "name": "hello-gru"})
    assert hello_gru.description == "hello with the gru cell instead of lstm"
    back = hello_gru.with_overrides({"model.cell": "lstm", "name": "hello"})  # the preset again: its own words
    assert back.description == load_preset("hello").description
    # named as another preset but not it (its learning rate, its clipping): that preset's words told
    # of results ("held-out 0.007") this experiment never had
    as_lstm = load_preset("adding-rnn").with_overrides({"model.cell": "lstm", "name": "adding-lstm"})
    assert as_lstm.description == "adding-rnn with the lstm cell instead of rnn"
    assert hello_gru.with_overrides({"model.cell": "lstm", "name": "hello", "seed": 3}).description == \
        load_preset("hello").description  # (its words tell of no seed: said anew from the preset)
    # another task's preset reached field by field (its task's defaults given or not), or on another
    # device (the same numbers): that preset, in its own words
    copy = load_preset("copy")
    every = {f"{table}.{key}": value for table in ("model", "train") for key, value in copy.to_mapping()[table].items()}
    reached = load_preset("adding-rnn").with_overrides({**every, "name": "copy", "task.kind": "copy", "seed": copy.seed})
    assert reached.description == copy.description
    on_gpu = load_preset("copy-gru").with_overrides({"model.device": "cuda"})
    assert on_gpu.with_overrides({"model.cell": "lstm", "name": "copy"}).description == copy.description


def test_a_spec_file_named_without_its_toml_or_not_utf8_says_what_to_do(tmp_path, monkeypatch):
    """rnnlab train hw1 beside hw1.toml said 'unknown preset'; a Latin-1 file said 'byte 32'."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "hw1.toml").write_text('[task]\nkind = "adding"\n')
    with pytest.raises(SpecError, match=r"unknown preset 'hw1': did you mean the spec file hw1.toml\?"):
        load_spec("hw1")
    (tmp_path / "dir.toml").mkdir()  # bptt, trace and tui said "not a run directory" of it, train "a directory"
    from rnnlab.errors import RunDirError
    from rnnlab.lab import open_target

    with pytest.raises(RunDirError, match=r"dir.toml is a directory, not a spec file \(nor a run directory"):
        open_target("dir.toml")
    os.mkfifo(tmp_path / "pipe.toml")  # read as TOML, it never ended (a CLI walkthrough's finding)
    with pytest.raises(SpecError, match=r"^pipe.toml is a named pipe, not a spec file$"):
        load_spec("pipe.toml")
    (tmp_path / "latin1.toml").write_bytes(b'[task]\nkind = "text"\npath = "caf\xe9.txt"\n')
    with pytest.raises(SpecError, match=r"not UTF-8 text \(line 3, column 12: byte 0xe9; save it as UTF-8\)"):
        load_spec("latin1.toml")
    (tmp_path / "utf16.toml").write_bytes('[task]\nkind = "adding"\n'.encode("utf-16"))  # Notepad's "Unicode"
    with pytest.raises(SpecError, match=r"not UTF-8 text \(it is UTF-16: save it as UTF-8\)"):
        load_spec("utf16.toml")


def test_a_presets_description_says_what_was_edited_since_it_tells_of_the_presets_numbers():
    """--set task.length=30 on adding-lstm kept "Adding problem, T=100, ... (held-out 0.007)"."""
    preset = load_preset("adding-lstm")
    short = preset.with_overrides({"task.length": 30})
    assert short.description == preset.description + " (edited: task.length = 30, the preset's 100)"
    both = short.with_overrides({"train.learning_rate": 0.01})  # from the preset's words, not the last edit's
    assert both.description == preset.description + (" (edited: task.length = 30, the preset's 100; "
                                                     "train.learning_rate = 0.01, the preset's 0.005)")
    assert both.with_overrides({"task.length": 100, "train.learning_rate": 0.005}).description == preset.description
    assert short.with_overrides({"description": "mine"}).with_overrides({"task.length": 50}).description == "mine"
    # another cell with other fields at once (the lab's form): the description said the cell alone
    assert preset.with_overrides({"model.cell": "gru", "model.hidden_size": 32, "train.steps": 9}).description == \
        "adding-lstm with the gru cell instead of lstm (edited: model.hidden_size = 32, the preset's 64)"
    # an edit before the cell's is kept (the lab: e, the rate; e, the cell); a field the new cell does not
    # read is no edit (put back to its default): a jordan's teacher forcing, a relu rnn's nonlinearity
    from rnnlab.spec import edited

    assert edited(edited(preset, {"train.learning_rate": 0.01}), {"model.cell": "gru"}).description == \
        "adding-lstm with the gru cell instead of lstm (edited: train.learning_rate = 0.01, the preset's 0.005)"
    # ... and one after it (the lab: e, the cell; e, the rate), reckoned from the preset each time
    assert edited(edited(preset, {"model.cell": "gru"}), {"train.learning_rate": 0.01}).description == \
        "adding-lstm with the gru cell instead of lstm (edited: train.learning_rate = 0.01, the preset's 0.005)"
    assert edited(load_preset("sine-jordan"), {"model.cell": "gru"}).description == \
        "sine-jordan with the gru cell instead of jordan"
    assert parse_spec(short.to_toml(), source="x", base_dir=None).description == short.description  # its spec.toml


def test_a_layer_that_refuses_its_size_is_a_spec_error_naming_the_model(monkeypatch):
    """Where a layer's own check refuses what the spec's estimate let through, the CLI still gets a
    UserError (one line, exit 2), not a ValueError's traceback."""
    from rnnlab.layers import _params
    from rnnlab.train.model import make_model

    spec = load_preset("hello")
    task = spec.make_task()
    monkeypatch.setattr(_params, "physical_memory", lambda: 1024)
    with pytest.raises(SpecError, match=r"^model: LSTM\(4, 16\): its 1,408 parameters need about 6 KiB"):
        make_model(spec.model, task.input_size, task.output_size, 0, task.length)


def test_the_memory_refusal_names_a_field_that_shrinks_it(monkeypatch):
    """Of the two batches only the larger counts (blaming the smaller one saved nothing when made
    smaller), and a task's length is its own field (copy's is its delay: task.length is no field of it)."""
    import rnnlab.spec

    monkeypatch.setattr(rnnlab.spec, "physical_memory", lambda: 24 * 2**30)  # this machine's, whatever CI has
    with pytest.raises(SpecError, match="^train.eval_batch_size: "):
        load_preset("adding-lstm").with_overrides({"train.batch_size": 3200, "train.eval_batch_size": 20000,
                                                   "model.hidden_size": 256}).check_memory()
    with pytest.raises(SpecError, match="^task.delay: "):
        load_preset("copy").with_overrides({"task.delay": 90000, "train.batch_size": 2000}).check_memory()


def test_one_pass_is_sized_by_its_own_batch_not_the_trainings(monkeypatch):
    """bptt, trace and a lab's view run one pass: a model sized for a larger machine's training (or
    a spec whose training batch does not fit here) is refused for training only. The pass's refusal
    blames its batch where that grew it, else the model's own size."""
    import rnnlab.spec

    monkeypatch.setattr(rnnlab.spec, "physical_memory", lambda: 24 * 2**30)  # this machine's, whatever CI has
    big = load_preset("adding-lstm").with_overrides({"task.length": 2000, "train.batch_size": 4096,
                                                     "train.eval_batch_size": 16384, "model.hidden_size": 16})
    with pytest.raises(SpecError, match="^train.eval_batch_size: training this experiment needs"):
        big.check_memory()
    big.check_memory(batch=1)
    assert big.estimated_bytes(batch=1) < big.estimated_bytes() / 1000
    with pytest.raises(SpecError, match=r"^batch: a pass over 8192 sequences needs about .*\(hidden_size=16, "
                                        r"num_layers=1, batch=8192, length=2000\)"):
        big.check_memory(batch=8192)
    with pytest.raises(SpecError, match=r"^task.length: a pass over 1 sequence needs about"):
        big.with_overrides({"task.length": 100_000, "model.hidden_size": 4096}).check_memory(batch=1)


def test_attention_memory_grows_with_the_square_of_the_length():
    spec = load_preset("adding-attention")
    short, long = (spec.with_overrides({"task.length": n}) for n in (100, 200))
    maps = lambda s: s.train.eval_batch_size * s.model.num_heads * (s.make_task().length + 1) ** 2  # noqa: E731
    assert maps(long) > 3.9 * maps(short)
    assert long.estimated_bytes() - short.estimated_bytes() > 4 * (maps(long) - maps(short))  # float32 maps
    with pytest.raises(SpecError, match=r"^task.length: .*length=100000, num_heads=4: attention maps grow"):
        spec.with_overrides({"task.length": 100_000}).check_memory()
    assert spec.model.feed_forward_size == 128 and spec.with_overrides({"model.d_ff": 48}).model.feed_forward_size == 48


def test_overrides_are_validated():
    spec = load_preset("hello").with_overrides({"train.steps": 7, "model.cell": "gru", "seed": 3})
    assert (spec.train.steps, spec.model.cell, spec.seed) == (7, "gru", 3)
    with pytest.raises(SpecError, match="train.steps"):
        load_preset("hello").with_overrides({"train.steps": 0})


# ---------------------------------------------------------------------------- training
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru", "leaky"])
def test_hello_learns_its_four_targets(cell):
    spec = load_preset("hello").with_overrides({"model.cell": cell})
    trainer = Trainer(spec)
    events = list(trainer.events(spec.train.steps))
    final = events[-1]
    assert final.accuracy == 1.0, f"{cell} did not learn hello in {spec.train.steps} steps"
    assert final.loss < 0.05


def test_adding_lstm_beats_the_baseline_while_rnn_gradients_vanish():
    """The issue's contrast at CI size: T=30 LSTM ends far under the 0.167 'predict 1' MSE, and an
    Elman RNN's dL/dh at t=1 is orders of magnitude smaller than at t=T. The LSTM learns the task
    suddenly, when depends on the seed: 400 steps end at 0.020, 0.147, 0.0057 and 0.016 for seeds
    0-3 (the threshold 0.033); seed 2's margin keeps a change of rounding from turning this red."""
    from rnnlab.lab import Lab

    lstm = load_preset("adding-lstm").with_overrides(
        {"task.length": 30, "model.hidden_size": 32, "train.steps": 400, "train.learning_rate": 0.01,
         "train.eval_every": 0, "seed": 2})
    trainer = Trainer(lstm)
    final = list(trainer.events(lstm.train.steps))[-1]
    baseline = trainer.task.baseline()
    assert baseline.loss == pytest.approx(1 / 6)
    assert final.loss < 0.2 * baseline.loss

    rnn = load_preset("adding-rnn").with_overrides({"task.length": 30, "model.hidden_size": 32})
    lab = Lab(rnn, batch=8)
    norms = lab.gradient_norms()[0]
    assert norms[0] < 1e-3 * norms[-1]


def test_copy_attention_solves_copy_while_the_lstm_is_at_the_baseline():
    """The issue's side-by-side: the same copy task and training settings, 300 steps: one causal
    self-attention block replays every symbol, the LSTM has not left the memoryless baseline."""
    results = {}
    for name in ("copy-attention", "copy"):
        spec = load_preset(name).with_overrides({"train.steps": 300, "train.eval_every": 0})
        trainer = Trainer(spec)
        results[name] = list(trainer.events(spec.train.steps))[-1]
    baseline = trainer.task.baseline()
    assert results["copy-attention"].accuracy == 1.0 and results["copy-attention"].loss < 0.01
    assert results["copy"].loss > 0.9 * baseline.loss and results["copy"].accuracy < baseline.accuracy + 0.02


def test_attention_model_from_the_spec_and_its_padding_mask():
    from rnnlab.layers.selfattention import SelfAttentionModel

    spec = load_preset("parity").with_overrides({"model.cell": "selfattention", "model.hidden_size": 8,
                                                 "model.num_heads": 2, "model.num_layers": 2, "model.d_ff": 12,
                                                 "model.bidirectional": True})
    trainer = Trainer(spec)
    model = trainer.model
    assert isinstance(model, SelfAttentionModel)
    assert (model.d_model, model.num_layers, model.blocks[0].num_heads, model.blocks[0].d_ff) == (8, 2, 2, 12)
    assert not model.causal and model.max_len == trainer.task.length
    assert load_preset("copy-attention").model.bidirectional is False  # causal, like a forward RNN
    # parity pads each sequence past its length: the padded steps must not change any loss
    batch = trainer.task.batch(16, 0, spec.seed)
    assert batch.lengths.min() < trainer.task.length
    noisy_x = batch.x.copy()
    padding = np.arange(batch.T)[:, None] >= batch.lengths[None, :]
    noisy_x[padding] = 5.0
    noisy = type(batch)(noisy_x, batch.y, batch.mask, batch.lengths)
    clean_result, state, _ = trainer.compute(batch)
    noisy_result, _, _ = trainer.compute(noisy)
    assert state is None
    assert noisy_result.loss == pytest.approx(clean_result.loss, rel=1e-6)
    record = trainer.train_step()
    assert np.isfinite(record.loss) and record.grad_norm > 0


def test_same_seed_same_metrics_bit_for_bit_and_seed_matters():
    spec = small(load_preset("sine"), **{"train.steps": 15, "model.hidden_size": 8, "train.eval_every": 5})

    def run(s):
        return [e.to_json() for e in Trainer(s).events(s.train.steps)]

    def strip(events):
        return [{k: v for k, v in e.items() if k != "time"} for e in events]

    assert strip(run(spec)) == strip(run(spec))
    assert strip(run(spec)) != strip(run(spec.with_overrides({"seed": 1})))


@pytest.mark.parametrize("preset, cell", [
    ("text", "lstm"), ("parity", "gru"), ("parity", "minlstm"), ("text", "lru"), ("parity", "leaky"),
])
def test_resume_continues_bit_for_bit(tmp_path, preset, cell):
    """Stopping and resuming (state carried across chunks for the text stream) changes nothing."""
    spec = small(load_preset(preset), **{"train.steps": 12, "model.hidden_size": 16, "train.batch_size": 4,
                                         "train.checkpoint_every": 5, "train.eval_every": 4, "train.truncate": 7,
                                         "model.cell": cell})
    straight = RunDir.create(tmp_path / "straight", spec)
    train_run(straight, Trainer(spec), 12)

    run = RunDir.create(tmp_path / "stopped", spec)
    calls = iter(range(1000))
    outcome = train_run(run, Trainer(spec), 12, should_stop=lambda: next(calls) >= 8)
    assert outcome.status == "stopped" and outcome.summary["step"] == 8
    # a crash after the checkpoint leaves extra log lines: resume must cut them back
    with open(run.path / METRICS, "a") as handle:
        handle.write('{"step": 99, "loss": 0}\n{"step": 10')
    reopened = RunDir.open(run.path)
    trainer = Trainer(reopened.spec)
    reopened.resume(trainer)
    assert trainer.step == 8
    train_run(reopened, trainer, 12)

    def strip(rows):
        return [{k: v for k, v in r.items() if k != "time"} for r in rows]

    assert strip(reopened.read_metrics()) == strip(straight.read_metrics())
    assert strip(reopened.read_evals()) == strip(straight.read_evals())
    a, b = (np.load(p / CHECKPOINT) for p in (straight.path, reopened.path))
    for key in a.files:
        if key not in ("elapsed", "meta"):
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_an_evaluation_lost_between_its_checkpoint_and_its_log_is_done_on_resume(tmp_path):
    """A process killed after the checkpoint of step 8 and before that step's evaluation was
    logged resumed from step 8 and never evaluated it: evals.jsonl lacked step 8."""
    spec = small(load_preset("parity"), **{"train.steps": 12, "model.hidden_size": 8, "train.checkpoint_every": 4,
                                           "train.eval_every": 4})
    straight = RunDir.create(tmp_path / "straight", spec)
    train_run(straight, Trainer(spec), 12)
    run = RunDir.create(tmp_path / "killed", spec)
    calls = iter(range(1000))
    train_run(run, Trainer(spec), 12, should_stop=lambda: next(calls) >= 8)
    evals = (run.path / EVALS).read_text().splitlines()
    assert json.loads(evals[-1])["step"] == 8
    (run.path / EVALS).write_text("".join(line + "\n" for line in evals[:-1]))  # killed before it was logged
    reopened = RunDir.open(run.path)
    trainer = Trainer(reopened.spec)
    reopened.resume(trainer)
    seen = []
    train_run(reopened, trainer, 12, on_event=seen.append)
    assert [e.step for e in seen if isinstance(e, EvalRecord)] == [8, 12]

    def strip(rows):
        return [{k: v for k, v in r.items() if k != "time"} for r in rows]

    assert strip(reopened.read_evals()) == strip(straight.read_evals())  # (one logged is not done twice: above)


def test_attention_on_a_text_stream_resumes_bit_for_bit_with_nothing_carried(tmp_path):
    """A stream task with self-attention: no state carried between windows (none in the checkpoint),
    and a stopped, resumed run equals a straight one."""
    spec = small(load_preset("text"), **{"train.steps": 8, "model.cell": "selfattention", "model.hidden_size": 8,
                                         "model.num_heads": 2, "train.batch_size": 4, "task.length": 12,
                                         "train.checkpoint_every": 3, "train.eval_every": 4})
    straight = RunDir.create(tmp_path / "straight", spec)
    train_run(straight, Trainer(spec), 8)
    run = RunDir.create(tmp_path / "stopped", spec)
    calls = iter(range(1000))
    assert train_run(run, Trainer(spec), 8, should_stop=lambda: next(calls) >= 5).summary["step"] == 5
    reopened = RunDir.open(run.path)
    assert reopened.spec.model.cell == "selfattention" and reopened.spec.model.num_heads == 2
    trainer = Trainer(reopened.spec)
    reopened.resume(trainer)
    assert trainer.step == 5 and trainer.carried is None
    train_run(reopened, trainer, 8)

    def strip(rows):
        return [{k: v for k, v in r.items() if k != "time"} for r in rows]

    assert strip(reopened.read_metrics()) == strip(straight.read_metrics())
    a, b = (np.load(p / CHECKPOINT) for p in (straight.path, reopened.path))
    assert not [key for key in a.files if key.startswith("carried/")]
    assert "param/layers.0.self_attn.in_proj_weight" in a.files
    for key in a.files:
        if key not in ("elapsed", "meta"):
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_truncated_bptt_changes_the_gradient_but_not_the_forward():
    spec = small(load_preset("adding-rnn"), **{"task.length": 20, "model.hidden_size": 8, "train.steps": 1})
    full = Trainer(spec).train_step()
    cut = Trainer(spec.with_overrides({"train.truncate": 5})).train_step()
    assert full.loss == cut.loss
    assert full.grad_norm != cut.grad_norm


def test_divergence_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    spec = small(load_preset("sine"), **{"train.steps": 30, "model.hidden_size": 8, "train.checkpoint_every": 5,
                                         "model.cell": "rnn", "model.nonlinearity": "relu", "train.clip_norm": 0.0,
                                         "train.optimizer": "sgd", "train.learning_rate": 10.0, "train.momentum": 0.0})
    run = RunDir.create(tmp_path / "run", spec)
    trainer = Trainer(spec)
    outcome = train_run(run, trainer, 30)
    assert outcome.status == "diverged"
    assert "non-finite" in outcome.message and "is kept" in outcome.message
    with np.load(run.path / CHECKPOINT) as ckpt:
        kept = int(ckpt["step"])
        assert kept % 5 == 0
        for key in ckpt.files:
            if key.startswith("param/"):
                assert np.isfinite(ckpt[key]).all()
    summary = json.loads((run.path / "summary.json").read_text())
    # every number says which step it is: the updates done, the one that diverged, the checkpoint kept
    assert summary["status"] == "diverged" and summary["step"] == trainer.step == run.read_metrics()[-1]["step"]
    assert summary["checkpoint_step"] == kept <= trainer.step
    assert f"at step {trainer.step + 1};" in outcome.message and f"(step {kept}) is kept" in outcome.message


#: The user walk-through's div.toml: IRNN with relu at learning rate 10, no clipping. Its loss reaches
#: 4e38 -- finite in float64, Inf in the float32 of its gradient -- at step 10.
DIVERGING = {"task.length": 20, "model.cell": "rnn", "model.nonlinearity": "relu", "model.init": "identity",
             "model.hidden_size": 64, "train.optimizer": "sgd", "train.learning_rate": 10.0, "train.clip_norm": 0.0,
             "train.checkpoint_every": 5, "train.steps": 200}


def test_a_float32_overflow_anywhere_in_a_step_is_a_divergence_in_one_line(tmp_path):
    """It used to pass the float64 loss check, then warn about an overflow in matmul and end in a
    ValueError traceback from the layer ("dy contains NaN or Inf"), with no summary."""
    spec = small(load_preset("adding-rnn"), **DIVERGING)
    run = RunDir.create(tmp_path / "run", spec)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning beside the one line
        outcome = train_run(run, Trainer(spec), 200)
    assert outcome.status == "diverged" and "\n" not in outcome.message
    assert "became non-finite in float32 at step" in outcome.message and "is kept" in outcome.message
    with np.load(run.path / CHECKPOINT) as ckpt:
        assert int(ckpt["step"]) % 5 == 0
        assert all(np.isfinite(ckpt[key]).all() for key in ckpt.files if key.startswith(("param/", "optim/")))
    assert json.loads((run.path / "summary.json").read_text())["status"] == "diverged"


def _overflowing(spec: Spec, scale: float = 1e18) -> Trainer:
    """A trainer whose weights are finite but so large that its numbers overflow float32 (x 1e18:
    the rnn's outputs stay finite, the gradient into its layer does not)."""
    trainer = Trainer(spec)
    for value in trainer.model.parameters().values():
        value *= np.float32(scale)
    return trainer


@pytest.mark.parametrize("preset, overrides, scale", [("adding-rnn", DIVERGING, 1e18), ("sine-jordan", {}, 1e30),
                                                      ("adding-attention", {"task.length": 20}, 1e18)],
                         ids=["rnn", "jordan", "selfattention"])
def test_weights_whose_numbers_overflow_are_said_to_have_diverged(preset, overrides, scale):
    """A checkpoint saved before the overflow showed: its backward (bptt, trace, the lab's b) says the
    weights diverged, in one line (a UserError), not that the layer was given a bad dy; a training
    step raises TrainingDiverged and changes nothing."""
    from rnnlab.train import TrainingDiverged
    from rnnlab.train.model import WeightsDiverged

    trainer = _overflowing(small(load_preset(preset), **overrides), scale)
    before = {k: v.copy() for k, v in trainer.state_arrays().items()}
    result, _, trace = trainer.compute(trainer.task.batch(2, 0, 0))  # a forward pass shows what it gets
    with pytest.raises(WeightsDiverged) as info:
        trainer.model.backward(trace, result.grad)
    assert isinstance(info.value, UserError) and "\n" not in str(info.value)
    assert str(info.value.at_step(7)).endswith("float32's range with the weights of step 7: the weights diverged "
                                               "(train with a smaller learning_rate or clip_norm)")
    trainer.warm_up()  # leaves it to the first step
    with pytest.raises(TrainingDiverged, match=r"became non-finite in float32 at step 1$"):
        trainer.train_step()
    assert trainer.step == 0 and trainer.optimizer.steps == 0
    for key, value in trainer.state_arrays().items():
        np.testing.assert_array_equal(value, before[key], err_msg=key)


def test_resuming_weights_that_overflow_ends_as_a_divergence_keeping_the_checkpoint(tmp_path):
    spec = small(load_preset("adding-rnn"), **DIVERGING)
    run = RunDir.create(tmp_path / "run", spec)
    run.save_checkpoint(_overflowing(spec))
    saved = (run.path / CHECKPOINT).read_bytes()
    resumed = Trainer(spec)
    RunDir.open(run.path).resume(resumed)
    outcome = train_run(run, resumed, 20)
    assert outcome.status == "diverged" and "the last good checkpoint (step 0) is kept" in outcome.message
    assert (run.path / CHECKPOINT).read_bytes() == saved


def test_clipping_reports_the_norm_before_clipping():
    spec = small(load_preset("adding-rnn"), **{"task.length": 10, "model.hidden_size": 8, "train.clip_norm": 1e-6})
    record = Trainer(spec).train_step()
    assert record.clipped and record.grad_norm > 1e-6


# ---------------------------------------------------------------------------- run directories
def test_a_run_started_into_a_folder_a_moment_after_another_leaves_the_first_ones_spec(tmp_path, monkeypatch):
    """Two trainings started at once into one --out both found it empty; the second then replaced the
    first's spec.toml, which no longer described the checkpoint the first went on to write."""
    first = RunDir.create(tmp_path / "run", load_preset("hello"))
    written = (first.path / "spec.toml").read_text()
    other = load_preset("hello").with_overrides({"model.hidden_size": 8})
    monkeypatch.setattr(Path, "iterdir", lambda self: iter(()))  # as the second saw it: still empty
    with pytest.raises(RunDirError, match="already exists and is not empty"):
        RunDir.create(tmp_path / "run", other)
    assert (first.path / "spec.toml").read_text() == written


def test_run_dir_refuses_what_is_not_one(tmp_path):
    with pytest.raises(RunDirError, match="no such run directory"):
        RunDir.open(tmp_path / "nope")
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunDirError, match="is a file"):
        RunDir.open(tmp_path / "file")
    with pytest.raises(RunDirError, match="no spec.toml"):
        RunDir.open(tmp_path)
    spec = load_preset("hello")
    run = RunDir.create(tmp_path / "run", spec)
    with pytest.raises(RunDirError, match="not empty"):
        RunDir.create(tmp_path / "run", spec)
    with pytest.raises(RunDirError, match="no checkpoint.npz"):
        run.resume(Trainer(spec))
    (run.path / CHECKPOINT).write_bytes(b"garbage")
    with pytest.raises(RunDirError, match="damaged"):
        run.resume(Trainer(spec))
    (run.path / "spec.toml").write_text("[model]\ncell = 3\n")
    with pytest.raises(RunDirError, match="damaged spec.toml.*model.cell"):
        RunDir.open(run.path)


def test_checkpoints_hold_no_pickles(tmp_path):
    spec = small(load_preset("text"), **{"train.steps": 2, "model.hidden_size": 8, "train.batch_size": 2})
    run = RunDir.create(tmp_path / "run", spec)
    train_run(run, Trainer(spec), 2)
    with np.load(run.path / CHECKPOINT, allow_pickle=False) as ckpt:
        assert all(ckpt[key].dtype != object for key in ckpt.files)
        assert "carried/h" in ckpt.files and "carried/c" in ckpt.files  # the text stream's state


def test_saved_files_get_the_usual_permissions(tmp_path):
    """Atomic writes go through a temporary file (mkstemp makes it 0600); the saved file must get
    the mode a plain open() gives under the umask, or other users could not read a shared run."""
    from rnnlab.train.rundir import atomic_write_text

    atomic_write_text(tmp_path / "saved.txt", "x")
    (tmp_path / "plain.txt").write_text("x")
    mode = (tmp_path / "saved.txt").stat().st_mode & 0o777
    assert mode == (tmp_path / "plain.txt").stat().st_mode & 0o777


@pytest.mark.parametrize("name", ["../../evil", "/abs/path", "a\nb", "", ".hidden", "x" * 101, "a/b", "a\\b"])
def test_spec_name_must_be_a_safe_file_name(name):
    with pytest.raises(SpecError) as info:
        Spec.from_mapping({"name": name, "task": {"kind": "adding"}})
    assert info.value.field == "name"
    message = str(info.value)
    assert "empty" in message or "100" in message or "no '/', '\\', control characters or leading '.'" in message


def test_a_path_that_is_not_there_is_named_as_a_path_not_an_unknown_preset(tmp_path):
    with pytest.raises(SpecError, match="no such file or directory: .*nowhere/run"):
        load_spec(tmp_path / "nowhere" / "run")
    with pytest.raises(SpecError, match="unknown preset 'nope'"):
        load_spec("nope")
    with pytest.raises(SpecError, match=r"^unknown preset 'Hello' \(did you mean 'hello'\? presets: hello, "):
        load_spec("Hello")


def test_every_preset_name_and_other_plain_names_are_fine():
    for name in preset_names():
        assert load_preset(name).name == name
    for name in ("run_2.v1-b", "my run", "élan"):  # names saved before the check keep opening
        assert Spec.from_mapping({"name": name, "task": {"kind": "adding"}}).name == name


@pytest.mark.parametrize("hard_links", [True, False], ids=["link", "no-hard-links"])
def test_a_write_without_replace_keeps_a_file_created_after_the_check(tmp_path, monkeypatch, hard_links):
    import errno
    import os

    from rnnlab.errors import TargetExistsError
    from rnnlab.train.rundir import atomic_save_npz, npz_target

    target = npz_target(tmp_path / "t.npz", "trace file", replace=False)  # free when checked
    target.write_bytes(b"written by someone else meanwhile")
    if not hard_links:  # e.g. FAT or some network file systems
        def no_link(src, dst):
            raise OSError(errno.EPERM, "Operation not permitted")
        monkeypatch.setattr(os, "link", no_link)
    with pytest.raises(TargetExistsError, match="already exists"):
        atomic_save_npz(target, {"h": np.zeros(3)}, replace=False)
    assert target.read_bytes() == b"written by someone else meanwhile"
    assert [p.name for p in tmp_path.iterdir()] == ["t.npz"]  # no temp file left behind
    fresh = tmp_path / "fresh.npz"
    atomic_save_npz(fresh, {"h": np.arange(3.0)}, replace=False)
    assert np.load(fresh)["h"].tolist() == [0.0, 1.0, 2.0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fresh.npz", "t.npz"]


def test_npz_target_replaces_by_default_refuses_with_replace_false_and_never_a_run_file(tmp_path):
    from rnnlab.errors import UserError
    from rnnlab.train.rundir import npz_target

    existing = tmp_path / "t.npz"
    existing.write_bytes(b"x")
    assert npz_target(existing, "trace file") == existing  # the library's default: replace
    with pytest.raises(UserError, match="already exists"):
        npz_target(existing, "trace file", replace=False)
    run = RunDir.create(tmp_path / "run", load_preset("hello"))
    for replace in (True, False):
        with pytest.raises(UserError, match="belongs to the run directory"):
            npz_target(run.path / CHECKPOINT, "trace file", replace=replace)
    assert npz_target(run.path / "trace.npz", "trace file") == run.path / "trace.npz"


def test_atomic_writes_turn_os_errors_into_one_line_user_errors(tmp_path):
    from rnnlab.errors import UserError
    from rnnlab.train.rundir import atomic_write_text

    with pytest.raises(UserError, match=r"cannot write .*nowhere.*: No such file or directory"):
        atomic_write_text(tmp_path / "nowhere" / "f.txt", "x")
    assert list(tmp_path.iterdir()) == []


def test_a_write_that_fails_halfway_leaves_the_old_file_whole_and_no_temporary_one(tmp_path, monkeypatch):
    """Nothing checked that the writes are atomic: a plain write_bytes passed every test. A disk that
    fills while the new file is written must leave the old one as it was."""
    import errno

    from rnnlab import fsio
    from rnnlab.errors import WriteFailed

    target = tmp_path / "checkpoint.npz"
    target.write_text("old")

    def full_disk(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fsio.os, "fsync", full_disk)
    with pytest.raises(WriteFailed, match="No space left on device"):
        fsio.atomic_write_text(target, "new")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["checkpoint.npz"]


def test_a_directory_made_read_only_during_a_write_is_one_line_not_a_traceback(tmp_path, monkeypatch):
    """A run directory made read-only (chmod, a file system remounted) while training: the put in
    place failed, the temporary file's removal failed too, and its PermissionError left as a
    traceback, exit 1, in place of the one line the first would have given."""
    import errno

    from rnnlab import fsio
    from rnnlab.errors import UserError

    def refused(*args, **kwargs):
        raise OSError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(fsio.os, "replace", refused)
    monkeypatch.setattr(fsio.Path, "unlink", refused)
    with pytest.raises(UserError, match=r"^cannot write .*checkpoint.npz: Permission denied$"):
        fsio.atomic_write_text(tmp_path / "checkpoint.npz", "new")


def test_a_models_load_state_dict_writes_into_the_arrays_parameters_handed_out():
    model = Trainer(load_preset("hello")).model
    live = model.parameters()
    state = {name: value + 1 for name, value in model.state_dict().items()}
    model.load_state_dict(state)
    for name in ("readout.weight", "readout.bias", "weight_hh_l0"):  # the readout's and the layer's alike
        np.testing.assert_array_equal(live[name], state[name])
        assert model.parameters()[name] is live[name]


@pytest.mark.parametrize("preset, overrides, reads", [
    ("hello", {"model.bidirectional": True}, "a reverse direction"),
    ("sine", {"model.bidirectional": True}, "a reverse direction"),
    ("mackey-glass", {"model.bidirectional": True}, "a reverse direction"),
    ("hello", {"model.cell": "selfattention", "model.bidirectional": True}, "non-causal attention"),
    ("hello", {}, ""),
    ("copy", {"model.bidirectional": True}, ""),  # its targets are earlier inputs: nothing to read ahead
    ("parity", {"model.bidirectional": True}, ""),
])
def test_a_model_reading_later_steps_on_a_next_input_task_is_said_to_read_its_targets(preset, overrides, reads):
    spec = load_preset(preset).with_overrides(overrides)
    warning = spec.reads_its_targets(spec.make_task())
    assert (warning.startswith(reads) and f"the {spec.task['kind']} task's target" in warning) if reads \
        else warning == ""


def test_a_name_made_for_a_cell_follows_the_next_one():
    """hello given gru is hello-gru; hello-gru given mingru stayed hello-gru, runs of a mingru saved under it."""
    from rnnlab.spec import edited_name

    assert edited_name("hello", ("hello", "lstm"), ("hello", "gru")) == "hello-gru"
    assert edited_name("hello-gru", ("hello", "gru"), ("hello", "mingru")) == "hello-mingru"
    assert edited_name("copy-attention", ("copy", "selfattention"), ("copy", "lru")) == "copy-lru"
    assert edited_name("mine", ("hello", "gru"), ("hello", "lstm")) == "mine"
    assert edited_name("hello-gru", ("hello", "gru"), ("copy", "gru")) == "copy-gru"  # TASK-CELL: both follow
    assert edited_name("hello-gru", ("hello", "gru"), ("copy", "lstm")) == "copy-lstm"
    assert edited_name("tiny-gru", ("hello", "gru"), ("copy", "gru")) == "tiny-gru"  # the cell alone: the task's not


def test_numpy_scalars_and_control_characters_make_specs_that_read_back():
    """A sweep over np.linspace wrote `learning_rate = np.float64(0.01)` into spec.toml (np.float64 is a
    float, its repr no TOML): the run trained, then every command called it damaged. np.int64 was
    refused as "got np.int64(4)"; a DEL in a description wrote a file TOML refuses."""
    spec = load_preset("hello").with_overrides({"train.learning_rate": np.float64(0.01),
                                                "model.hidden_size": np.int64(4), "description": "a\x7fb"})
    again = parse_spec(spec.to_toml(), source="x", base_dir=None)
    assert (again.train.learning_rate, again.model.hidden_size, again.description) == (0.01, 4, "a\x7fb")
    assert type(spec.train.learning_rate) is float and type(spec.model.hidden_size) is int


def test_train_run_refuses_a_trainer_that_is_not_the_runs(tmp_path):
    """train_run(RunDir.open(path), Trainer(run.spec), 5) without run.resume(trainer) overwrote a
    trained run's checkpoint and log from step 0; another experiment's trainer wrote its weights
    under the run's spec; an until_step already reached logged the last evaluation again."""
    spec = load_preset("hello").with_overrides({"train.steps": 4, "model.hidden_size": 8})
    run = RunDir.create(tmp_path / "r", spec)
    assert train_run(run, Trainer(spec), 4).status == "completed"
    before = {name: (tmp_path / "r" / name).read_bytes() for name in (CHECKPOINT, METRICS, EVALS)}
    reopened = RunDir.open(tmp_path / "r")
    with pytest.raises(ValueError, match=r"checkpoint is at step 4, the trainer at step 0: resume it first"):
        train_run(reopened, Trainer(reopened.spec), 6)
    with pytest.raises(ValueError, match=r"the trainer's spec is not .*\(model.hidden_size: 8 -> 16\)"):
        train_run(reopened, Trainer(reopened.spec.with_overrides({"model.hidden_size": 16})), 6)
    trainer = Trainer(reopened.spec)
    reopened.resume(trainer)
    for until in (4, 2, 5.5, None):
        with pytest.raises(ValueError, match="until_step must be an integer past the trainer's step 4"):
            train_run(reopened, trainer, until)
    assert before == {name: (tmp_path / "r" / name).read_bytes() for name in (CHECKPOINT, METRICS, EVALS)}
    assert train_run(reopened, trainer, 6).status == "completed"
