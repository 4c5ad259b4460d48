"""The command line: output formats, exit codes, one-line errors on stderr. No timing is asserted."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import DIVERGING_SPEC, ctrl_c_at
import rnnlab
from rnnlab import bench, cli, gradcheck
from rnnlab.layers import recurrent

ROOT = Path(__file__).resolve().parents[1]


def run(capsys, *args):
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_no_arguments_without_a_terminal_prints_a_hint(capsys):
    code, out, err = run(capsys)
    assert code == 2  # the lab did not open: as `rnnlab tui`
    assert out == ""  # a message, not a result: stdout stays clean for pipes
    assert "needs a terminal" in err and "rnnlab --help" in err


def test_version(capsys):
    code, out, _ = run(capsys, "--version")
    assert code == 0
    assert out.strip() == f"rnnlab {rnnlab.__version__}"


def test_help(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0 and "gradcheck" in out


def test_tree_help_says_where_its_options_are_in_the_lab(capsys, monkeypatch):
    """It ended "The options are those of `rnnlab tui treebank`'s e." (the key, with nothing to say so)."""
    monkeypatch.setenv("COLUMNS", "300")
    code, out, _ = run(capsys, "tree", "--help")
    assert code == 0 and "The options are those of the options dialog (e) of `rnnlab tui treebank`." in out


@pytest.mark.parametrize("command", ["bench", "esn", "train", "bptt", "tree"])
def test_command_help_flows_with_the_terminal(capsys, monkeypatch, command):
    """A docstring's line breaks do not reach the terminal: --help wraps each paragraph to the
    width (typer's rich help would otherwise print the source's breaks, ragged)."""
    monkeypatch.setenv("COLUMNS", "60")
    code, out, _ = run(capsys, command, "--help")
    assert code == 0
    description = out.split("Usage:")[1].split("╭")[0].splitlines()[2:]  # after the usage line
    widths = [len(line.rstrip()) for line in description if line.strip()]
    assert len(widths) >= 3 and all(w <= 60 for w in widths)
    assert sum(w < 40 for w in widths[:-1]) <= 1, "\n".join(description)  # short lines end paragraphs only


def test_gradcheck_json(capsys):
    code, out, _ = run(capsys, "gradcheck", "--json")
    assert code == 0
    data = json.loads(out)
    assert set(data) == {"cells"}
    assert set(data["cells"]) == set(gradcheck.CHECKS)
    for entry in data["cells"].values():
        assert set(entry) == {"max_rel_err", "ok", "worst_tensor", "seconds"}  # every column of the table
        assert isinstance(entry["max_rel_err"], float) and entry["max_rel_err"] < 1e-6
        assert entry["ok"] is True
        assert isinstance(entry["worst_tensor"], str) and entry["worst_tensor"]
        assert isinstance(entry["seconds"], float) and entry["seconds"] >= 0


def test_gradcheck_json_names_the_worst_tensor_the_table_shows(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    code, out, _ = run(capsys, "gradcheck", "--only", "lstm", "--json")
    assert code == 0
    entry = json.loads(out)["cells"]["lstm"]
    code, table, _ = run(capsys, "gradcheck", "--only", "lstm")
    row = next(line for line in table.splitlines() if " lstm " in line)
    assert entry["worst_tensor"] in row.split()
    code, out, _ = run(capsys, "gradcheck", "--help")
    assert '"worst_tensor": str, "seconds": float' in " ".join(out.replace("│", " ").split())


def test_gradcheck_only_and_table(capsys):
    code, out, _ = run(capsys, "gradcheck", "--only", "lstm", "--only", "gru,rnn_relu")
    assert code == 0
    for name in ("lstm", "gru", "rnn_relu"):
        assert name in out
    assert "rnn_tanh " not in out


@pytest.mark.parametrize("width, row", [(40, r"\nlstm_deep_ 1\.48e-09 weight_hh +12\.25 ok\n"),
                                        (80, r"│ +1\.48e-09 │ .* │ +12\.25 │ ok │")])
def test_gradcheck_in_a_narrow_terminal_keeps_each_figure_whole(capsys, monkeypatch, width, row):
    """At 40 columns rich squeezed every column alike, the errors too: "6.59e…", a wrong figure, the seconds'
    header "secon…"; now the figures keep their width and the names fold, the frame gone where the headers' words
    would not fit whole ("chec" / "k"). At 80 nothing is squeezed: the headers stay on one line."""
    from rich.console import Console

    from rnnlab.cli import _app

    monkeypatch.setattr(gradcheck, "run_checks", lambda *a, **kw: [
        gradcheck.CheckResult("lstm_deep_bidirectional", 1.4811e-9, True, "weight_hh_l0_reverse", 12.25)])
    monkeypatch.setattr(_app, "_consoles", {"out": Console(width=width, force_terminal=True, color_system=None)})
    code, out, _ = run(capsys, "gradcheck", "--only", "lstm")
    lines = out.splitlines()
    assert code == 0 and max(map(len, lines)) <= width, out
    assert re.search(row, out) and "…" not in out, out
    if width == 80:
        assert any("┃ max rel err ┃" in line for line in lines) and "lstm_deep_bidirectional" in out, out


def test_gradcheck_list(capsys):
    code, out, _ = run(capsys, "gradcheck", "--list")
    assert code == 0 and out.split() == list(gradcheck.CHECKS)


def test_gradcheck_only_with_list_lists_only_those_and_json_lists_as_json(capsys):
    code, out, _ = run(capsys, "gradcheck", "--only", "lstm,gru", "--list")
    assert code == 0 and out.split() == ["lstm", "gru"]  # in the registry's order
    code, out, _ = run(capsys, "gradcheck", "--list", "--json")
    assert code == 0 and json.loads(out) == list(gradcheck.CHECKS)
    code, out, _ = run(capsys, "gradcheck", "--only", "gru", "--list", "--json")
    assert code == 0 and json.loads(out) == ["gru"]
    code, out, err = run(capsys, "gradcheck", "--only", "nope", "--list")
    assert code == 2 and out == "" and "nope" in err


@pytest.mark.parametrize("value", ["", ","])
def test_gradcheck_only_naming_nothing_exits_2(capsys, value):
    code, out, err = run(capsys, "gradcheck", "--only", value)
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rnnlab: error: --only names no check")


def test_an_experiment_typed_as_a_command_says_how_to_open_it(capsys, tmp_path, monkeypatch):
    """`rnnlab copy-gru` said "No such command 'copy-gru'.", `rnnlab treebank` "Did you mean 'tree',
    'train'?": neither said that the lab opens it (`rnnlab tui copy-gru`)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.toml").write_text('preset = "hello"\n')
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "spec.toml").write_text('preset = "hello"\n')
    said = {
        "copy-gru": "'copy-gru' is a preset, not a command: open it with `rnnlab tui copy-gru` (or train it: "
                    "`rnnlab train copy-gru`)",
        "treebank": "'treebank' is an architecture lab, not a command: open it with `rnnlab tui treebank` "
                    "(headless: `rnnlab tree`)",
        "mine.toml": "'mine.toml' is a spec file, not a command: open it with `rnnlab tui mine.toml` (or train it: "
                     "`rnnlab train mine.toml`)",
        "run": "'run' is a run directory, not a command: open it with `rnnlab tui run`",
        "copy-gr": "No such command 'copy-gr'; did you mean `rnnlab tui copy-gru`?",  # no command is close
        "ESN": "No such command 'ESN'; did you mean `rnnlab esn`?",  # the lab's own command, not its tui
        "tran": "No such command 'tran'. Did you mean 'train', 'trace'?",  # typer's own, where it has one
        "xyzzy": "No such command 'xyzzy'.",
    }
    for name, message in said.items():
        code, out, err = run(capsys, name)
        assert (code, out, err) == (2, "", f"rnnlab: error: {message}\n"), name


@pytest.mark.parametrize("args, message", [
    (["lab", "esn"], "No such command 'lab': `rnnlab tui esn` opens it"),
    (["open", "copy-gru"], "No such command 'open': `rnnlab tui copy-gru` opens it"),
    (["lab", "nonsense"], "No such command 'lab': `rnnlab tui` opens the lab (`rnnlab tui treebank|seq2seq|esn` an "
                          "architecture lab, `rnnlab presets` lists what there is)"),
    (["labs"], "No such command 'labs': `rnnlab tui` opens the lab (`rnnlab tui treebank|seq2seq|esn` an "
               "architecture lab, `rnnlab presets` lists what there is)"),
])
def test_a_lab_verb_says_that_tui_opens_the_labs(capsys, args, message):
    """`rnnlab lab esn` (the verb other tools have, and how a brief of ours wrote it) said only "No such command
    'lab'.": nothing of `rnnlab tui esn`."""
    code, out, err = run(capsys, *args)
    assert (code, out, err) == (2, "", f"rnnlab: error: {message}\n")


def test_a_lab_verb_names_only_what_the_lab_opens_and_survives_a_name_too_long(capsys, tmp_path, monkeypatch):
    """`rnnlab open /tmp` said "`rnnlab tui /tmp` opens it" of any path (the lab refuses a folder without runs), and
    a name too long for the file system ended in a traceback (Path.exists raised ENAMETOOLONG); now a spec file, a
    run directory or a folder of runs is named so, anything else gets the general line."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "sweep" / "one").mkdir(parents=True)
    (tmp_path / "sweep" / "one" / "spec.toml").write_text('preset = "hello"\n')
    (tmp_path / "mine.toml").write_text('preset = "hello"\n')
    general = ("`rnnlab tui` opens the lab (`rnnlab tui treebank|seq2seq|esn` an architecture lab, `rnnlab presets` "
               "lists what there is)")
    for name, said in (("empty", general), ("notes.txt", general), ("x" * 5000, general),
                       ("mine.toml", "`rnnlab tui mine.toml` opens it"),
                       ("sweep/one", "`rnnlab tui sweep/one` opens it"), ("sweep", "`rnnlab tui sweep` opens it")):
        code, out, err = run(capsys, "open", name)
        assert (code, out, err) == (2, "", f"rnnlab: error: No such command 'open': {said}\n"), name[:20]
    code, out, err = run(capsys, "sweep")  # a folder of runs typed where the command goes: as a run directory is
    assert (code, err) == (2, "rnnlab: error: 'sweep' is a folder of runs, not a command: open one with `rnnlab tui "
                              "sweep` (or list them: `rnnlab runs sweep`)\n")


@pytest.mark.parametrize("args, message", [
    # an option typed before the command: the command it belongs to, the experiment commands first
    (["--set", "model.cell=gru"], "--set goes after a command: `rnnlab tui --set ...` (spec, train, bptt, trace "
                                  "take it too)"),
    (["--steps", "50"], "--steps goes after a command: `rnnlab train --steps ...` (seq2seq takes it too)"),
    (["--units", "3"], "--units goes after a command: `rnnlab esn --units ...`"),
    # a spec field's name as an option: --set, there before a command too (the lab's), though seq2seq has --cell
    (["--cell", "gru"], "No such option: --cell (the experiment's model.cell is set with `rnnlab tui --set "
                        "model.cell=VALUE`)"),
    (["train", "hello", "--hidden-size=8"], "No such option: --hidden-size (the experiment's model.hidden_size is "
                                            "set with `rnnlab train --set model.hidden_size=VALUE`)"),
    (["bptt", "--seed", "3"], "No such option: --seed (the experiment's seed is set with `rnnlab bptt --set "
                              "seed=VALUE`)"),
    (["train", "--lr", "0.1"], "No such option: --lr (the experiment's train.learning_rate is set with `rnnlab "
                               "train --set train.learning_rate=VALUE`)"),  # an abbreviation, as the labs' dialogs
    # an abbreviation of the command's own option: its initials, or the name papers give it
    (["esn", "--rho", "0.9"], "No such option: --rho (did you mean --spectral-radius?)"),
    (["seq2seq", "--lr", "0.1"], "No such option: --lr (did you mean --learning-rate?)"),
    # neither: click's own words
    (["bench", "--hidden-size", "8"], "No such option: --hidden-size"),
    (["--frobnicate"], "No such option: --frobnicate"),
])
def test_an_unknown_option_says_where_it_belongs(capsys, args, message):
    """`rnnlab --cell gru` said "No such option: --cell (Possible options: --help)" and `rnnlab train --cell gru`
    "No such option: --cell": neither that the lab's options follow `tui` nor that a cell is set with --set."""
    code, out, err = run(capsys, *args)
    assert (code, out, err) == (2, "", f"rnnlab: error: {message}\n")


@pytest.mark.parametrize("args, message", [
    (["tree", "--learning-rate", "-1"], "--learning-rate must be a number in (0, 10], got -1"),
    (["esn", "--connectivity", "0"], "--connectivity must be a number in (0, 1], got 0"),
    (["esn", "--ridge", "-1e-5"], "--ridge must be a number in [0, 1e+06], got -1e-05"),
    (["esn", "--ridge", "-0.000012345678"], "--ridge must be a number in [0, 1e+06], got -1.2345678e-05"),
    (["seq2seq", "--learning-rate", "2"], "--learning-rate must be a number in (0, 1], got 2"),
    (["seq2seq", "--learning-rate", "0.5e1"], "--learning-rate must be a number in (0, 1], got 5"),
    (["train", "hello", "--set", "train.learning_rate=-1"],
     "--set train.learning_rate: must be greater than 0 and at most 10, got -1"),
    (["train", "hello", "--set", "train.learning_rate=-1.0"],  # as typed
     "--set train.learning_rate: must be greater than 0 and at most 10, got -1.0"),
    (["sample", "runs/x", "--temperature", "-1"], "--temperature must be a positive finite number, got -1"),
    (["sample", "runs/x", "--temperature", "1e-400"], "--temperature must be a positive finite number, got 0"),
    # a value beside its bound alike (it read "got 10000000" beside "1e+06"); --set's as typed ("got 100.0")
    (["esn", "--threshold", "1e7"], "--threshold must be a number in (0, 1e+06], got 1e+07"),
    (["train", "hello", "--set", "train.learning_rate=1e2"],
     "--set train.learning_rate: must be greater than 0 and at most 10, got 1e2"),
    (["train", "hello", "--set", "model.hidden_size=1e9"],
     "--set model.hidden_size: must be between 1 and 8192, got 1e9"),
])
def test_a_refused_number_reads_as_it_was_typed(capsys, args, message):
    """Range errors echoed the float an option was read as: `tree --learning-rate -1` said "got -1.0",
    `esn --connectivity 0` "got 0.0", a spec's learning_rate = -1 "got -1.0"."""
    code, out, err = run(capsys, *args)
    assert (code, out, err) == (2, "", f"rnnlab: error: {message}\n")


def test_gradcheck_unknown_name_exits_2_with_one_line(capsys):
    code, out, err = run(capsys, "gradcheck", "--only", "nope")
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert "nope" in err and "Traceback" not in err
    code, out, err = run(capsys, "gradcheck", "--only", "lstmm")  # a typo among 45 names: the closest, not all
    assert code == 2 and err.strip() == ("rnnlab: error: --only: unknown check 'lstmm' (45 known; did you mean "
                                         "'lstm'?) (--list names them)".replace("45", str(len(gradcheck.CHECKS))))


def test_gradcheck_names_every_unknown_check_whole_as_typed(capsys):
    """--only lstm_bidirectionl said "unknown check 'lstm_bidirectio…'" (clipped for a dialog's line), and a
    second unknown name was only counted ("and 1 more unknown"): each is named whole, as typed."""
    known = len(gradcheck.CHECKS)
    code, out, err = run(capsys, "gradcheck", "--only", "lstm_bidirectionl")
    assert (code, out) == (2, "") and err == (f"rnnlab: error: --only: unknown check 'lstm_bidirectionl' ({known} "
                                              "known; did you mean 'lstm_deep_bidirectional'?) (--list names them)\n")
    code, out, err = run(capsys, "gradcheck", "--only", "lstmm,lstm,gru_bidirectional_typo", "--only", "nope")
    assert (code, out) == (2, "") and err == (f"rnnlab: error: --only: unknown check 'lstmm' ({known} known; did you "
                                              "mean 'lstm'?); also unknown: 'gru_bidirectional_typo', 'nope' (--list "
                                              "names them)\n")


@pytest.mark.parametrize("typed, meant", [
    ("gru_bidir", "gru_deep_bidirectional"), ("LSTM-bidir", "lstm_deep_bidirectional"),
    ("pre_norm", "self_attention_pre_norm_causal"), ("seq_att", "seq2seq_attention")])
def test_gradcheck_names_the_check_a_name_typed_in_part_meant(capsys, typed, meant):
    """--only gru_bidir was asked whether it meant 'gru_no_bias' (difflib's closest spelling): the starts of a check's
    words, or a part of its name no other holds, name that check."""
    code, out, err = run(capsys, "gradcheck", "--only", typed)
    known = len(gradcheck.CHECKS)
    assert (code, out) == (2, "") and err == (f"rnnlab: error: --only: unknown check {typed!r} ({known} known; "
                                              f"did you mean {meant!r}?) (--list names them)\n")


def test_gradcheck_failure_exits_1(capsys, monkeypatch):
    original = recurrent.LSTM.backward

    def broken(self, *args, **kwargs):
        grads = original(self, *args, **kwargs)
        grads["bias_ih_l0"] = grads["bias_ih_l0"] * 1.01
        return grads

    monkeypatch.setattr(recurrent.LSTM, "backward", broken)
    code, out, err = run(capsys, "gradcheck", "--json", "--only", "lstm")
    assert code == 1
    assert json.loads(out)["cells"]["lstm"]["ok"] is False
    assert "lstm" in err


@pytest.mark.parametrize(
    "args, word",
    [
        (["bench", "--cells", "nope"], "nope"),
        (["bench", "--repeats", "0"], "--repeats"),
        (["bench", "--quick", "--no-torch", "--repeats", "10" * 15], "--repeats"),  # ran on with no end
        (["bench", "--shape", "1,2,3"], "1,2,3"),
        (["bench", "--threads", "100000"], "--threads"),
        (["bench", "--json", "--markdown"], "--json"),
        (["bench", "--device", "tpu"], "--device"),
        (["frobnicate"], "frobnicate"),
        (["gradcheck", "--bogus"], "--bogus"),
    ],
)
def test_bad_input_exits_2_with_one_line(capsys, args, word):
    code, out, err = run(capsys, *args)
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and word in lines[0]


@pytest.mark.parametrize("args, message", [
    (["train", "hello", "--steps", "0"], "--steps must be an integer in [1, 100000000], got 0"),
    (["train", "hello", "--seed", "-1"], "--seed must be an integer in [0, 2^63-1], got -1"),
    (["bptt", "hello", "--batch", "5000"], "--batch must be an integer in [1, 4096], got 5000"),
    (["bptt", "hello", "--truncate", "x"], "--truncate must be an integer in [0, 1000000], got 'x'"),
    (["bench", "--threads", "0"], "--threads must be an integer at least 1, got 0"),
    (["train", "hello", "--steps", "1e3"], "--steps must be an integer in [1, 100000000], got 1e3 (in digits: 1000)"),
    (["tree", "--learning-rate", "abc"], "--learning-rate must be a number, got 'abc'"),
    (["esn", "--units", "2.5"], "--units must be an integer, got 2.5"),
])
def test_an_option_of_the_wrong_type_or_range_reads_as_rnnlabs_own_errors(capsys, args, message):
    """typer's check of an int or a number said it in pydantic's words, never what was typed, unlike the checks
    rnnlab makes itself: "rnnlab train: error: Invalid value for '--steps': Input should be greater than or
    equal to 1" beside `rnnlab esn --units 0`'s "rnnlab: error: --units must be an integer in [1, 1000], got 0"."""
    code, out, err = run(capsys, *args)
    assert (code, out, err) == (2, "", f"rnnlab: error: {message}\n")
    code, out, err = run(capsys, "esn", "--units", "0")  # the lab's own check, for comparison
    assert (code, out, err) == (2, "", "rnnlab: error: --units must be an integer in [1, 1000], got 0\n")


def test_every_ranged_options_help_and_refusal_say_its_range_alike(capsys):
    """--help and the refusal each phrased an option's range in code of their own: "At least 1." in bench's --help
    for --threads, "must be an integer (at least 1)" in its error. Every ranged option of every command, below its
    lowest value: the error names the range as the help's note does."""
    import typer

    from rnnlab.cli import _app

    command = typer.main.get_command(_app.app)
    _app._tidy_help(command)
    ranged = [(name, param) for name, sub in command.commands.items() for param in sub.params
              if getattr(param, "min", None) is not None]
    assert {"--threads", "--steps", "--seed", "--batch", "--truncate", "--length"} <= \
        {max(param.opts, key=len) for _, param in ranged}
    for name, param in ranged:
        flag = max(param.opts, key=len)
        note = re.search(r"(In \[.*\]|At least \S+)\.$", param.help)
        assert note, (name, param.help)
        code, _, err = run(capsys, name, flag, str(param.min - 1))
        assert (code, err) == (2, f"rnnlab: error: {flag} must be an integer {note[1][0].lower()}{note[1][1:]}, "
                                  f"got {param.min - 1}\n"), (name, flag)


def test_bench_refuses_a_shape_too_big_for_memory_before_allocating(capsys, monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("the benchmark ran")

    monkeypatch.setattr(bench, "run_bench", never)
    code, out, err = run(capsys, "bench", "--no-torch", "--repeats", "1", "--shape", "100000,100000,4,4")
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "--shape 100000,100000,4,4" in lines[0] and "GiB" in lines[0]
    with pytest.raises(ValueError, match="100000,100000,4,4"):
        bench.check_memory(["lstm"], [(100000, 100000, 4, 4)])
    bench.check_memory(["lstm"], bench.SHAPES)  # the standard shapes fit anywhere


def test_out_of_memory_is_one_line_not_a_traceback(capsys, monkeypatch):
    def allocate(*args, **kwargs):
        raise MemoryError("Unable to allocate 149. GiB for an array with shape (100000, 100000, 4)")

    monkeypatch.setattr(bench, "run_bench", allocate)
    code, out, err = run(capsys, "bench", "--no-torch", "--repeats", "1", "--shape", "2,5,3,4")
    assert code == 2 and out == ""
    lines = [line for line in err.splitlines() if line.strip()]  # a load-average warning may come first
    assert "Traceback" not in err
    assert lines[-1] == ("rnnlab: error: out of memory: Unable to allocate 149. GiB for an array with shape "
                         "(100000, 100000, 4)")


def test_bench_check_targets_needs_torch(capsys, monkeypatch):
    code, out, err = run(capsys, "bench", "--quick", "--no-torch", "--check-targets")
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "--check-targets" in lines[0] and "--no-torch" in lines[0]
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ImportError
    code, out, err = run(capsys, "bench", "--quick", "--check-targets")
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "ratios against PyTorch, which is not installed" in lines[0]


def test_bench_help_says_what_the_shapes_are(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    code, out, _ = run(capsys, "bench", "--help")
    assert code == 0 and "issue" not in out and "six standard shapes" in out


def test_bench_says_1_thread_not_1_threads(capsys):
    code, out, err = run(capsys, "bench", "--shape", "1,2,1,1", "--repeats", "1", "--no-torch", "--no-reference",
                         "--cells", "rnn_tanh", "--threads", "1")
    assert code == 0, err
    assert "median milliseconds, 1 thread\n" in out and "1 threads" not in out


def test_result_tables_end_no_line_in_a_space_in_a_file_or_a_terminal(capsys, tmp_path, monkeypatch):
    """A file's bench table ended every line in a space (its box's blank edges), blank lines of spaces
    around it; a terminal's train result line (its table's title) was padded to the table's width."""
    import io

    from rich.console import Console

    from rnnlab.cli import _app

    code, out, err = run(capsys, "bench", "--shape", "1,2,1,1", "--repeats", "1", "--no-torch", "--cells", "rnn_tanh")
    assert code == 0, err
    assert all(line.strip() and line == line.rstrip() for line in out.splitlines()), out.splitlines()
    terminal = io.StringIO()
    monkeypatch.setitem(_app._consoles, "out", Console(file=terminal, force_terminal=True, color_system=None,
                                                       width=100, highlight=False))
    # a path of 80 characters: "run directory: PATH" fits 100 columns and the timing after it does not (rich
    # broke the line at "0.0 s, " / "957 steps/s", a space left at the break)
    out_dir = tmp_path / ("r" * max(1, 79 - len(str(tmp_path))))
    code, _, err = run(capsys, "train", "hello", "--steps", "2", "--out", out_dir)
    assert code == 0, err
    lines = terminal.getvalue().splitlines()
    assert lines[0] == "hello: completed at step 2 of 2" and all(line == line.rstrip() for line in lines), lines
    assert lines[-2:] == [f"run directory: {out_dir}", lines[-1]] and re.fullmatch(r"\d+\.\d s, \d+ steps/s", lines[-1])


def test_bench_without_torch_says_what_it_times(capsys, monkeypatch):
    """--no-reference without torch said "timing rnnlab and the reference only"."""
    import importlib

    real_import = importlib.import_module

    def without_torch(name, *args, **kwargs):
        if name == "torch":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(importlib, "import_module", without_torch)  # (where torch is installed)
    for flags, said in (([], "timing rnnlab and the reference only"), (["--no-reference"], "timing rnnlab only")):
        code, _, err = run(capsys, "bench", "--shape", "1,2,1,1", "--repeats", "1", "--cells", "rnn_tanh", *flags)
        assert code == 0 and f"rnnlab bench: torch is not installed; {said}" in err, err


def test_bench_interrupted_prints_the_shapes_it_measured_and_exits_130(capsys, monkeypatch):
    """Ctrl-C after six seconds of --quick printed nothing: the rows measured were lost."""
    from rnnlab.cli import experiments

    monkeypatch.setattr(experiments, "_graceful_interrupt", ctrl_c_at(2))  # during the second shape
    code, out, err = run(capsys, "bench", "--shape", "1,2,1,1", "--shape", "1,3,1,1", "--shape", "1,4,1,1",
                         "--repeats", "1", "--no-torch", "--no-reference", "--cells", "rnn_tanh", "--json")
    assert code == 130 and [row["T"] for row in json.loads(out)["rows"]] == [2, 3]
    assert err.strip().splitlines()[-1] == "rnnlab: bench interrupted after 2 of 3 measurements (cell and shape)"
    code, out, err = run(capsys, "bench", "--cells", "", "--quick")  # an unset shell variable: not every cell
    assert code == 2 and out == "" and err.strip() == "rnnlab: error: --cells names no cell (e.g. --cells lstm,gru)"


def test_bench_json_rows(capsys):
    code, out, _ = run(capsys, "bench", "--quick", "--repeats", "1", "--no-torch", "--cells", "lstm", "--json")
    assert code == 0
    data = json.loads(out)
    assert set(data) == {"environment", "rows"}
    rows = data["rows"]
    assert [(r["B"], r["T"], r["I"], r["H"]) for r in rows] == list(bench.QUICK_SHAPES)
    for row in rows:
        assert set(row) == set(bench.ROW_KEYS)
        assert row["cell"] == "lstm"
        assert row["rnnlab_fwd_ms"] > 0 and row["rnnlab_fwdbwd_ms"] > 0 and row["ref_fwdbwd_ms"] > 0
        assert row["torch_fwd_ms"] is None and row["ratio_fwdbwd"] is None and row["met"] is None
        assert row["target"] == bench.target_for("lstm", row["B"], row["H"])


def test_bench_on_cuda_without_a_gpu_says_why_in_one_line(capsys):
    from rnnlab.kernels.cuda import cuda_available

    usable, reason = cuda_available()
    if usable:
        pytest.skip("a GPU is usable here: the cuda benchmark would run")
    code, out, err = run(capsys, "bench", "--device", "cuda", "--quick")
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert lines == [f"rnnlab: error: device 'cuda' is not available: {reason}"]


@pytest.mark.parametrize("args, said", [
    (["--threads", "2"], "--threads applies to the CPU benchmark (on cuda the kernels' launches set their threads)"),
    (["--no-reference"], "--no-reference applies to the CPU benchmark (the cuda one times no NumPy reference)"),
    (["--repeats", "3"], "--repeats must be at least 7 with --device cuda (a GPU's timings vary more), got 3"),
    (["--quick", "--shape", "1,10,4,8"], "--quick and --shape exclude each other")])
def test_bench_on_cuda_refuses_what_it_would_not_do(capsys, args, said):
    """--threads and --no-reference were dropped in silence, --repeats 3 became 7 and --quick with
    --shape ran the shape (a code review): refused in one line, before any GPU is looked for."""
    code, out, err = run(capsys, "bench", "--device", "cuda", *args)
    assert code == 2 and out == "" and err.strip().splitlines() == [f"rnnlab: error: {said}"]


def test_bench_table_and_markdown(capsys):
    args = ["bench", "--shape", "2,5,3,4", "--repeats", "1", "--no-torch", "--no-reference", "--cells", "gru,rnn_tanh"]
    code, out, _ = run(capsys, *args)
    assert code == 0 and "gru" in out and "rnn_tanh" in out
    assert "torch" not in out and "target" not in out and "ref" not in out  # no columns of dashes
    code, out, _ = run(capsys, *args, "--markdown")
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[0].startswith("| cell |") and len(lines) == 4


#: a row of bench's as run_bench makes it with torch installed (it is not here): every column has a figure
BENCH_ROW = {"cell": "rnn_tanh", "B": 64, "T": 50, "I": 256, "H": 512, "rnnlab_fwd_ms": 112.5, "torch_fwd_ms": 25.9,
             "ratio_fwd": 0.23, "rnnlab_fwdbwd_ms": 11255.0, "torch_fwdbwd_ms": 2.38, "ratio_fwdbwd": 2.0,
             "ref_fwdbwd_ms": 9.5, "ratio_ref": 12.3, "target": 1.5, "met": True}


@pytest.mark.parametrize("width, shown, left_out", [
    (40, "f+b f+b / cell B,T,I,H rnnlab x", "ref x, fwd x, fwd torch, fwd rnnlab, f+b torch, target"),
    (60, "fwd fwd f+b f+b f+b / cell B,T,I,H rnnlab torch rnnlab torch x target", "ref x, fwd x"),
    (80, "fwd fwd fwd f+b f+b f+b ref / cell B,T,I,H rnnlab torch x rnnlab torch x target x", None)])
def test_bench_in_a_narrow_terminal_leaves_columns_out_whole(capsys, monkeypatch, width, shown, left_out):
    """bench with torch's columns at 40 columns: rich squeezed its ten columns alike, every figure cut to "11…"
    or "…"; now the columns that do not fit are left out whole, and named under the table."""
    from rich.console import Console

    from rnnlab.cli import _app

    monkeypatch.setattr(bench, "run_bench", lambda *args, **kwargs: [BENCH_ROW, {**BENCH_ROW, "cell": "lstm"}])
    monkeypatch.setattr(_app, "_consoles", {"out": Console(width=width, force_terminal=True, color_system=None)})
    code, out, _ = run(capsys, "bench", "--shape", "1,2,3,4", "--repeats", "1", "--cells", "lstm", "--no-torch")
    lines = out.splitlines()
    assert code == 0 and all(len(line) <= width for line in lines) and "…" not in out, out
    header = next(i for i, line in enumerate(lines) if line.startswith("cell"))
    assert f"{lines[header - 1].strip()} / {lines[header]}".split() == shown.split(), out
    row = lines[header + 2].split()
    assert row[:2] == ["rnn_tanh", "64,50,256,512"] and "11255" in row and "2.00" in row, out
    said = " ".join(out.split())
    assert (f"left out to fit the terminal: {left_out} (a wider one, a pipe, --markdown or --json has them)" in said
            if left_out else "left out" not in said), out


def test_marks_in_a_latin_1_or_ascii_locale_are_words_that_keep_the_tables_lines(capsys, monkeypatch):
    """tree's ✓/✗ beside a --parse prediction and bench's ≥ and ✓/✗ beside a target came out as
    "pos \\u2713" on a stdout that cannot encode them (a Latin-1 locale, PYTHONIOENCODING=ascii): six
    characters where the table had one, every such row longer than the others."""
    import io

    from rich.console import Console

    from rnnlab.cli import _app, checks

    for encoding in ("latin-1", "ascii"):
        raw = io.BytesIO()
        page = io.TextIOWrapper(raw, encoding=encoding, errors="backslashreplace", write_through=True)
        monkeypatch.setattr(_app, "_consoles", {"out": Console(file=page, width=160, highlight=False)})
        code, _, _ = run(capsys, "tree", "--epochs", "1", "--hidden-size", "4", "--parse", "pos good",
                         "--parse", "neg good")
        base = {"cell": "gru", "B": 1, "T": 5, "I": 3, "H": 4, "rnnlab_fwd_ms": 1.0, "torch_fwd_ms": 2.0,
                "ratio_fwd": 2.0, "rnnlab_fwdbwd_ms": 1.0, "torch_fwdbwd_ms": 2.0, "ratio_fwdbwd": 2.0,
                "ratio_ref": None, "target": 1.5}
        _app._out_console().print(checks._bench_table([{**base, "met": True}, {**base, "met": False}],
                                                      {"threads": 1}))
        text = raw.getvalue().decode(encoding)
        assert code == 0 and "\\u" not in text, text
        predictions = [line for line in text.splitlines() if line.startswith("| good ")]
        assert sorted(line.split("|")[3].strip() for line in predictions) in (["neg right", "neg wrong"],
                                                                             ["pos right", "pos wrong"]), text
        assert len({len(line) for line in text.splitlines() if line.startswith("| good ")}) == 1
        assert ">=1.5 met" in text and ">=1.5 missed" in text


def test_a_narrow_page_in_a_file_keeps_every_cell_whole(capsys, monkeypatch):
    """COLUMNS=40 rnnlab gradcheck > file wrote "lstm… │ 1.48e… │ weig…" (a check's name, its error and
    the worst tensor cut, in a file nothing crops) and an esn sweep "0.00…" for every score: each column
    is as wide as its longest word there."""
    from rnnlab.cli import _app

    monkeypatch.setenv("COLUMNS", "40")
    monkeypatch.setattr(_app, "_consoles", {})
    code, out, _ = run(capsys, "gradcheck", "--only", "lstm_deep_bidirectional")
    assert code == 0 and "…" not in out, out
    row = r"│ lstm_deep_bidirectional +│ +\d\.\d\de-\d\d │ weight_\w+ +│ +\d+\.\d\d │ ok │"  # name, error, tensor
    assert re.search(row, out), out
    code, out, _ = run(capsys, "esn", "--units", "20", "--length", "300", "--test", "50", "--warmup", "20",
                       "--generate", "60", "--sweep", "ridge")
    assert code == 0 and "…" not in out and "│  1e-12 │" in out, out


def test_a_table_of_numbers_too_wide_for_a_terminal_even_so_loses_its_frame_not_its_figures(capsys, monkeypatch):
    """esn --sweep at 40 columns: five numbers a row and their frame need 51 columns, and every figure was cut
    ("1e-…", "0.004…"); the frame goes instead (a space between columns, as bench's), and each figure is whole."""
    from rich.console import Console

    from rnnlab.cli import _app

    monkeypatch.setattr(_app, "_consoles", {"out": Console(width=40, force_terminal=True, color_system=None)})
    code, out, _ = run(capsys, "esn", "--units", "20", "--length", "300", "--test", "50", "--warmup", "20",
                       "--generate", "60", "--sweep", "ridge")
    lines = out.splitlines()
    assert code == 0 and "…" not in out and max(map(len, lines)) <= 40, out
    rows = [line for line in lines if re.fullmatch(r" *(1e-\d\d|0\.0*1|1)( +\d\.\d+){3} +\d+\+?", line)]
    assert [row.split()[0] for row in rows] == [f"{value:g}" for value in (*(10.0 ** -k for k in range(12, 0, -1)),
                                                                            1)], out


def test_bench_in_a_narrow_page_in_a_file_keeps_every_column_and_cell_whole(capsys, monkeypatch):
    """COLUMNS=40 rnnlab bench > file wrote "rnn_… 64,50,256… 112 2… …": the file, which crops no line, keeps
    every column, each cell whole, and leaves nothing out."""
    from rnnlab.cli import _app

    monkeypatch.setenv("COLUMNS", "40")
    monkeypatch.setattr(_app, "_consoles", {})
    monkeypatch.setattr(bench, "run_bench", lambda *args, **kwargs: [BENCH_ROW])
    code, out, _ = run(capsys, "bench", "--shape", "1,2,3,4", "--repeats", "1", "--cells", "lstm", "--no-torch")
    assert code == 0 and "…" not in out and "left out" not in out, out
    assert "rnn_tanh 64,50,256,512    112  25.9 0.23  11255  2.38 2.00 ≥1.5 ✓ 12.3" in out, out


@pytest.mark.parametrize("terminal", [True, False])
def test_a_message_wraps_at_words_on_a_terminal_and_is_one_line_in_a_log(monkeypatch, terminal):
    """On a 40-column terminal an error broke mid-word ("an intege" / "r in"), stderr's console soft-wrapping
    and the errors written raw: now wrapped at words to the terminal's width; in a file or a pipe one line, which a
    log's grep finds whole."""
    import io

    from rnnlab.cli import _app

    class Stream(io.StringIO):
        def isatty(self) -> bool:
            return terminal

    monkeypatch.setenv("COLUMNS", "40")
    monkeypatch.setattr(_app, "_consoles", {})
    monkeypatch.setattr(sys, "stderr", Stream())
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    code = cli.main(["train", "hello", "--steps", "0"])
    lines = sys.stderr.getvalue().splitlines()
    said = "rnnlab: error: --steps must be an integer in [1, 100000000], got 0"
    assert code == 2 and " ".join(line.strip() for line in lines) == said, lines
    assert all(len(line) <= 40 for line in lines) and len(lines) > 1 if terminal else lines == [said], lines


@pytest.mark.parametrize("terminal", [True, False])
def test_the_cores_warning_wraps_at_words_on_a_terminal_and_is_one_line_in_a_log(monkeypatch, tmp_path, terminal):
    """The core's warnings (rnnlab.notices) were written to stderr raw while the CLI's own messages wrap at words:
    at 40 columns 'hello is the preset; th' / 'e run directory ...'. The CLI's say() writes them now."""
    import io

    from rnnlab import notices
    from rnnlab.cli import _app

    class Stream(io.StringIO):
        def isatty(self) -> bool:
            return terminal

    monkeypatch.chdir(tmp_path)
    (tmp_path / "hello").mkdir()
    (tmp_path / "hello" / "spec.toml").write_text("", encoding="utf-8")  # a run directory named as the preset
    monkeypatch.setenv("COLUMNS", "40")
    monkeypatch.setattr(_app, "_consoles", {})
    monkeypatch.setattr(sys, "stderr", Stream())
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    code = cli.main(["spec", "hello"])
    lines = sys.stderr.getvalue().splitlines()
    said = "rnnlab: warning: hello is the preset; the run directory of that name here is ./hello"
    assert code == 0 and " ".join(line.strip() for line in lines) == said, lines
    assert all(len(line) <= 40 for line in lines) and len(lines) > 1 if terminal else lines == [said], lines
    notices.warn("after the CLI")  # the core's default is back: a plain line on stderr
    assert sys.stderr.getvalue().splitlines()[-1] == "rnnlab: warning: after the CLI"


def test_console_script_entry_point():
    """`python -m rnnlab` (what the `rnnlab` script runs): no terminal, no arguments: a hint, exit 2 as
    `rnnlab tui`'s (it was 0: a cron job's `rnnlab` read as done)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-m", "rnnlab"], capture_output=True, text=True, env=env,
                          stdin=subprocess.DEVNULL, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    assert "needs a terminal" in proc.stderr and "train" in proc.stderr
    # asked for by name (a lab by its command's name too): the lab needs a terminal, one line, exit 2 (no
    # screen codes), naming what scripts it
    for lab, script in (("hello", "rnnlab train, bptt"), ("esn", "rnnlab esn instead"),
                        ("treebank", "rnnlab tree instead"), ("tree", "rnnlab tree instead")):
        proc = subprocess.run([sys.executable, "-m", "rnnlab", "tui", lab], capture_output=True, text=True,
                              env=env, stdin=subprocess.DEVNULL, timeout=120)
        assert proc.returncode == 2 and proc.stdout == "", proc.stderr
        assert proc.stderr.count("\n") == 1 and "needs a terminal" in proc.stderr and "\x1b" not in proc.stderr
        assert f"script it with {script}" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "rnnlab", "gradcheck", "--only", "nope"], capture_output=True,
                          text=True, env=env, stdin=subprocess.DEVNULL, timeout=120)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def _with_closed(stream: str, *args, cwd=None) -> tuple[int, bytes]:
    """``python -m rnnlab ARGS`` with its stdout or stderr pipe closed before anything is written (so
    every write fails, whatever a pipe buffers): (exit status, what the other stream got)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-m", "rnnlab", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env, cwd=cwd)
    (proc.stdout if stream == "stdout" else proc.stderr).close()
    other = proc.stderr if stream == "stdout" else proc.stdout
    kept = other.read()
    proc.wait(timeout=300)
    return proc.returncode, kept


@pytest.mark.parametrize("args", [["presets"], ["presets", "--json"], ["--help"], ["train", "--help"],
                                  ["gradcheck", "--list"]])
def test_a_reader_that_stops_reading_ends_the_command_quietly_with_status_0(args):
    """`rnnlab presets | head -1` exited 1 (rich's way with a closed pipe): a failure to a script under
    `set -o pipefail`, though the reader had what it wanted."""
    code, err = _with_closed("stdout", *args)
    assert code == 0 and err == b""


def test_a_closed_output_keeps_the_commands_own_exit_status(tmp_path):
    """Output that nobody reads any more is dropped, and the command ends as it would have: a run
    that diverges still exits 1 (not 0, nor rich's 1 before the run ended), and one whose stderr
    reader is gone still trains (it used to stop at its first message, with its run half made)."""
    (tmp_path / "div.toml").write_text(DIVERGING_SPEC)
    code, err = _with_closed("stdout", "train", "div.toml", "--out", "div", cwd=tmp_path)
    assert code == 1 and b"the loss became non-finite" in err
    code, out = _with_closed("stderr", "train", "hello", "--steps", "3", "--out", "quiet", cwd=tmp_path)
    assert code == 0 and b"run directory: quiet" in out
    assert json.loads((tmp_path / "quiet" / "summary.json").read_text())["status"] == "completed"


def _stdout_unread(monkeypatch):
    """stdout a pipe whose reader is gone before anything is written (``| true``), stderr a string:
    returns stderr (read it once the command ended)."""
    import io

    read_end, write_end = os.pipe()
    os.close(read_end)
    monkeypatch.setattr(sys, "stdout", open(write_end, "w", encoding="utf-8"))
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    return err


def test_a_command_whose_output_nobody_reads_stops_quietly(capsys, tmp_path, monkeypatch):
    """`rnnlab sample RUN --length 1000000 | head -c 20` drew every character (97 s) after head had
    gone, and `rnnlab gradcheck | true` ran every check (50 s) for nobody, each then exiting 0: both
    stop once their reader is gone (sample at its next character, gradcheck before its next check),
    still exit 0, and say nothing (the reader had what it wanted)."""
    from rnnlab.lab import Lab

    run_dir = tmp_path / "hello"
    assert cli.main(["train", "hello", "--steps", "2", "--out", str(run_dir)]) == 0
    capsys.readouterr()
    drawn, ran = [], []
    sample = Lab.sample
    monkeypatch.setattr(Lab, "sample", lambda self, *a, **kw: drawn.append(sample(self, *a, **kw)) or drawn[-1])
    run_checks = gradcheck.run_checks
    monkeypatch.setattr(gradcheck, "run_checks", lambda *a, **kw: ran.append(run_checks(*a, **kw)) or ran[-1])
    for json_output in ([], ["--json"]):  # --json writes nothing until the end: the pipe itself says so
        err = _stdout_unread(monkeypatch)
        assert cli.main(["sample", str(run_dir), "--length", "5000", *json_output]) == 0
        assert len(drawn.pop()) < 10 and err.getvalue() == ""
    err = _stdout_unread(monkeypatch)
    assert cli.main(["gradcheck", "--only", "rnn_tanh,gru"]) == 0
    assert ran == [[]] and "interrupted" not in err.getvalue()


def test_the_lab_commands_and_bench_whose_output_nobody_reads_stop_quietly(tmp_path, monkeypatch):
    """`rnnlab seq2seq | true`, `tree`, `esn --sweep` and `bench` (a pager quit before their table)
    trained, swept or measured to their end for nobody: they stop before their next step, epoch,
    value or shape, exit 0 and say nothing of it. An esn sweep with --export writes a file: it goes on."""
    from rnnlab.labs.esn import EsnLab
    from rnnlab.labs.seq2seq import Seq2SeqLab
    from rnnlab.labs.tree import TreeLab

    done = []  # what each command's engine did: steps, epochs, sweep values, bench rows
    for cls, method, count in ((Seq2SeqLab, "train", lambda lab, _: lab.trained_steps),
                               (TreeLab, "train", lambda lab, _: lab.epochs_done),
                               (EsnLab, "sweep", lambda _, result: result.done)):
        def counted(self, *args, _real=getattr(cls, method), _count=count, **kwargs):
            result = _real(self, *args, **kwargs)
            done.append(_count(self, result))
            return result
        monkeypatch.setattr(cls, method, counted)
    run_bench = bench.run_bench
    monkeypatch.setattr(bench, "run_bench", lambda *a, **kw: done.append(len(rows := run_bench(*a, **kw))) or rows)
    esn_small = ["esn", "--units", "20", "--length", "300", "--test", "50", "--warmup", "20", "--generate", "60"]
    for args in (["seq2seq", "--steps", "200", "--hidden-size", "8", "--eval-size", "5"],
                 ["seq2seq", "--steps", "200", "--hidden-size", "8", "--eval-size", "5", "--json"],
                 ["tree", "--epochs", "30", "--hidden-size", "4"],
                 [*esn_small, "--sweep", "ridge"],
                 ["bench", "--shape", "1,2,1,1", "--shape", "1,3,1,1", "--repeats", "1", "--no-torch",
                  "--no-reference", "--cells", "rnn_tanh"]):
        err = _stdout_unread(monkeypatch)
        assert (cli.main(args), done.pop()) == (0, 0), args
        assert not re.search("stop|interrupt|Traceback|BLAS", err.getvalue()), err.getvalue()
    err = _stdout_unread(monkeypatch)
    assert cli.main([*esn_small, "--sweep", "ridge", "--export", str(tmp_path / "sweep.npz")]) == 0
    assert done.pop() > 1 and (tmp_path / "sweep.npz").is_file()


def _fake_gpu(monkeypatch) -> list:
    """A GPU for ``rnnlab bench --device cuda`` (none here): each (cell, shape) it measures is a row
    ``{"cell", "T"}``, and lands in the list returned."""
    import types

    from rnnlab import bench_cuda
    from rnnlab.kernels import cuda as gpu

    monkeypatch.setattr(gpu, "require_cuda", lambda: None)
    monkeypatch.setattr(bench_cuda, "open_gpu", lambda prog: (types.SimpleNamespace(
        cuda_available=lambda: (True, "a GPU")), None))
    monkeypatch.setattr(bench_cuda, "Case", lambda cell, shape, *args: (cell, shape))
    measured = []
    monkeypatch.setattr(bench_cuda, "measure", lambda case, *args: measured.append(case) or {
        "cell": case[0], "T": case[1][1], "met": None})
    cublas = types.SimpleNamespace(status=lambda: {})
    monkeypatch.setitem(sys.modules, "rnnlab.kernels.cuda._cublas", cublas)
    monkeypatch.setattr(gpu, "_cublas", cublas, raising=False)
    return measured


def test_the_cuda_bench_whose_output_nobody_reads_stops_quietly(monkeypatch):
    """`rnnlab bench --device cuda | true` measured every cell and shape (minutes of GPU time) for
    nobody: it stops before the next one."""
    measured = _fake_gpu(monkeypatch)
    err = _stdout_unread(monkeypatch)
    assert cli.main(["bench", "--device", "cuda", "--no-torch", "--json"]) == 0
    assert measured == [] and "Traceback" not in err.getvalue()


def test_the_cuda_bench_interrupted_prints_the_shapes_it_measured_and_exits_130(capsys, monkeypatch):
    """Ctrl-C in `rnnlab bench --device cuda` aborted ("rnnlab: aborted"), the rows measured lost, where
    the CPU bench prints them: it stops after the current shape, as the CPU's does."""
    import signal

    from rnnlab import bench_cuda
    from rnnlab.cli import experiments

    measured = _fake_gpu(monkeypatch)
    measure = bench_cuda.measure

    def ctrl_c_in_the_second(case, *args):
        if case[1][1] == 3:
            signal.raise_signal(signal.SIGINT)  # (its handler runs here, before the measuring ends)
        return measure(case, *args)

    monkeypatch.setattr(bench_cuda, "measure", ctrl_c_in_the_second)
    shapes = ["--shape", "1,2,1,1", "--shape", "1,3,1,1", "--shape", "1,4,1,1"]
    code, out, err = run(capsys, "bench", "--device", "cuda", *shapes, "--cells", "gru", "--no-torch", "--json")
    assert code == 130 and [row["T"] for row in json.loads(out)["rows"]] == [2, 3] and len(measured) == 2
    assert err.strip().splitlines()[-1] == "rnnlab: bench interrupted after 2 of 3 measurements (cell and shape)"
    monkeypatch.setattr(bench_cuda, "measure", measure)
    monkeypatch.setattr(experiments, "_graceful_interrupt", ctrl_c_at(3))  # during the last: all of them, 0
    code, out, err = run(capsys, "bench", "--device", "cuda", *shapes, "--cells", "gru", "--no-torch", "--json")
    assert code == 0 and [row["T"] for row in json.loads(out)["rows"]] == [2, 3, 4] and "interrupted" not in err


def _with_stream(stream: str, target, *args, cwd=None) -> subprocess.CompletedProcess:
    """``python -m rnnlab ARGS`` with its stdout or stderr ``target``: "closed" (the descriptor closed
    before Python starts, a shell's ``>&-``) or an open file (/dev/full: every write ENOSPC)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    fd = 1 if stream == "stdout" else 2
    kwargs = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
    if target == "closed":
        kwargs["preexec_fn"] = lambda: os.close(fd)
    else:
        kwargs[stream] = target
    return subprocess.run([sys.executable, "-m", "rnnlab", *map(str, args)], stdin=subprocess.DEVNULL, env=env,
                          cwd=cwd, timeout=300, **kwargs)


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_full_disk_or_a_closed_descriptor_is_one_line_and_a_training_goes_on(tmp_path):
    """`rnnlab presets > /dev/full` ended in a traceback, `>&-` in AttributeError; with stderr on a full
    disk or closed, a training never started (exit 1, a run directory left untrained)."""
    with open("/dev/full", "w") as full:
        for target in (full, "closed"):
            proc = _with_stream("stdout", target, "presets", "--json")
            assert proc.returncode == 1 and b"Traceback" not in proc.stderr
            assert proc.stderr.decode().startswith("rnnlab: error: cannot write the output (stdout): ")
            assert proc.stderr.count(b"\n") == 1
        for name, target in (("full", full), ("closed", "closed")):
            proc = _with_stream("stderr", target, "train", "hello", "--steps", "3", "--out", name, cwd=tmp_path)
            assert proc.returncode == 0 and f"run directory: {name}".encode() in proc.stdout
            assert json.loads((tmp_path / name / "summary.json").read_text())["status"] == "completed"
        proc = _with_stream("stdout", full, "train", "hello", "--steps", "3", "--out", "json", "--json", cwd=tmp_path)
        assert proc.returncode == 1 and b"cannot write the output (stdout): No space left" in proc.stderr
        assert json.loads((tmp_path / "json" / "summary.json").read_text())["status"] == "completed"  # kept


def test_the_console_script_is_the_guarded_entry_point():
    import tomllib

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"rnnlab": "rnnlab.console:main"}


def test_ctrl_c_while_the_cli_imports_exits_130_quietly(capsys, monkeypatch):
    """The interrupt can land while numba and the CLI load (before any command runs): no traceback,
    exit 130 as typer gives during a command."""
    from rnnlab import console

    class InterruptedImport:
        def find_spec(self, name, path=None, target=None):
            if name == "rnnlab.cli":
                raise KeyboardInterrupt
            return None

    monkeypatch.delitem(sys.modules, "rnnlab.cli")
    monkeypatch.delattr(rnnlab, "cli")
    monkeypatch.setattr(sys, "meta_path", [InterruptedImport(), *sys.meta_path])
    assert console.main(["--version"]) == 130
    assert capsys.readouterr().err == ""


def test_ctrl_c_while_the_command_is_built_exits_130_quietly(capsys, monkeypatch):
    """typer handles an interrupt during a command, not while click builds it: the guard covers that too."""
    from rnnlab import cli, console

    def interrupted(argv=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "main", interrupted)
    assert console.main(["presets"]) == 130
    assert capsys.readouterr().err == ""


def test_type_checkers_see_every_layer_the_package_loads_lazily():
    """``rnnlab/__init__.py`` imports the layers under TYPE_CHECKING (for mypy and IDEs) and
    loads them in ``__getattr__`` at run time: the two lists must be the same."""
    import ast

    tree = ast.parse((ROOT / "rnnlab" / "__init__.py").read_text())
    guarded = next(node for node in tree.body
                   if isinstance(node, ast.If) and ast.unparse(node.test) == "_typing.TYPE_CHECKING")
    imported = {alias.name for node in guarded.body for alias in node.names}
    assert imported == set(rnnlab.__all__) - {"__version__"}


def test_importing_rnnlab_loads_no_kernels_until_a_layer_is_used():
    """The console script imports the package before its Ctrl-C guard: that import must be instant."""
    code = ("import sys, rnnlab; before = sorted(m for m in sys.modules if m.split('.')[0] in ('numba', 'numpy')); "
            "lstm = rnnlab.LSTM(2, 3); print(before, type(lstm).__module__, 'rnnlab.layers' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["[]", "rnnlab.layers.recurrent", "True"]


def test_help_loads_no_engine_until_a_lab_command_shows_its_limits():
    """esn's, seq2seq's and tree's --help read their ranges from the engines: only there, so `rnnlab --help`
    and the other commands' help stay instant."""
    code = ("import contextlib, io, sys; from rnnlab.cli import main\n"
            "engines = ('numba', 'rnnlab.labs.esn', 'rnnlab.labs.seq2seq', 'rnnlab.labs.tree')\n"
            "heavy = lambda: sorted(m for m in engines if m in sys.modules)\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    main(['--help']); main(['bptt', '--help']); main(['train', '--help']); before = heavy()\n"
            "    main(['esn', '--help'])\n"
            "print(before, heavy())")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[] ['numba', 'rnnlab.labs.esn']"


def test_gradcheck_title_and_caption_stay_whole_in_a_pipe(capsys, monkeypatch):
    from rnnlab.cli import _app

    monkeypatch.setattr(_app, "_consoles", {})  # built afresh for this stdout, not a terminal
    code, out, _ = run(capsys, "gradcheck", "--only", "lstm")
    assert code == 0
    lines = [line.strip() for line in out.splitlines()]
    assert "Gradient checks: central differences vs backward(), float64" in lines
    assert f"error = max|fd - analytic| / max|.| per tensor; pass < {gradcheck.TOLERANCE:g}" in lines


def test_gradcheck_title_and_caption_are_whole_lines_in_an_80_column_terminal(capsys, monkeypatch):
    """The table's title and caption were wrapped to the table's width (52 columns) and centred: 'float64' and
    '< 1e-06' stood alone under the rest; they are lines of their own now, the terminal's width theirs."""
    from rich.console import Console

    from rnnlab.cli import _app

    monkeypatch.setattr(gradcheck, "run_checks", lambda *a, **kw: [
        gradcheck.CheckResult("lstm", 6.59e-9, True, "h0", 0.5)])
    monkeypatch.setattr(_app, "_consoles", {"out": Console(width=80, force_terminal=True, color_system=None)})
    code, out, _ = run(capsys, "gradcheck", "--only", "lstm")
    lines = out.splitlines()
    assert code == 0 and lines[0] == "Gradient checks: central differences vs backward(), float64", lines
    assert lines[-1] == f"error = max|fd - analytic| / max|.| per tensor; pass < {gradcheck.TOLERANCE:g}", lines


def test_ctrl_c_inside_a_compiled_kernel_is_an_interrupt_not_a_traceback(capsys, monkeypatch):
    """Ctrl-C during `rnnlab sample` ended half the time in a traceback and exit 1: numba reports
    an interrupt in compiled code as "SystemError: CPUDispatcher(...) returned a result with an
    exception set", the KeyboardInterrupt its context."""
    import rnnlab.spec

    def interrupted_kernel(name):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise SystemError("CPUDispatcher(<function lstm_forward_one>) returned a result with an exception set")

    from conftest import run_cli

    monkeypatch.setattr(rnnlab.spec, "load_preset", interrupted_kernel)
    code, out, err = run_cli(capsys, "presets")
    assert (code, err) == (130, "")  # as typer ends every other Ctrl-C

    def broken(name):
        raise SystemError("a bug, not an interrupt")

    monkeypatch.setattr(rnnlab.spec, "load_preset", broken)
    with pytest.raises(SystemError, match="a bug"):  # anything else stays the bug it is
        run_cli(capsys, "presets")


@pytest.mark.parametrize("command,own", [("train", ["--steps", "--seed", "--device"]), ("bptt", ["--device"]),
                                         ("trace", ["--device"]), ("tui", [])])
def test_set_names_only_the_options_its_command_has(capsys, monkeypatch, command, own):
    """bptt --help and trace --help said --steps and --seed set their own fields: neither has them."""
    from conftest import run_cli

    monkeypatch.setenv("COLUMNS", "300")
    code, out, _ = run_cli(capsys, command, "--help")
    text = " ".join(out.replace("│", " ").split())
    help_of_set = text[text.index("--set FIELD=VALUE"):]
    help_of_set = help_of_set[:help_of_set.index("--help")]
    assert code == 0 and [o for o in ("--steps", "--seed", "--device") if o in help_of_set] == own


def test_gradcheck_stopped_by_ctrl_c_prints_the_checks_it_finished(capsys, monkeypatch):
    """Interrupted, gradcheck printed nothing (exit 130) though most checks had finished."""
    import os
    import signal

    from conftest import run_cli

    def check(name, interrupt=False):
        def run():
            if interrupt:  # Ctrl-C during the second check: it finishes, the third never starts
                os.kill(os.getpid(), signal.SIGINT)
            return gradcheck.CheckResult(name, 1e-9, True, "W", 0.01)
        return run

    monkeypatch.setattr(gradcheck, "CHECKS", {"first": check("first"), "second": check("second", True),
                                              "third": check("third")})
    code, out, err = run_cli(capsys, "gradcheck")
    assert code == 130 and " first " in out and " second " in out and " third " not in out
    assert err.splitlines()[-1] == "rnnlab: gradient checks interrupted after 2 of 3"
    code, out, err = run_cli(capsys, "gradcheck", "--only", "first,first")  # a name given twice runs once
    assert code == 0 and "interrupted" not in err and out.count(" first ") == 1


@pytest.mark.parametrize("command", ["train", "bptt", "trace", "tui"])
def test_an_empty_experiment_name_is_refused_not_read_as_hello(capsys, command, tmp_path, monkeypatch):
    """rnnlab train "" (an unset shell variable) trained hello, unsaid."""
    from conftest import one_line_error, run_cli

    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, command, "")
    assert code == 2 and one_line_error(err) == ("rnnlab: error: the experiment named is empty: give a preset name, "
                                                 "a spec .toml file or a run directory")
    assert not (tmp_path / "runs").exists()


def test_compile_notices_name_each_compilation_and_say_when_a_kernel_compiles_again():
    """esn printed "compiling gemm (float64)" twice, as if the same work were done twice: the second
    is the same kernel for other argument types (another array layout), a compilation of its own."""
    import numpy as np

    from rnnlab.kernels import compile_notices
    from rnnlab.kernels._jit import jit

    @jit(cache=False)  # compiled afresh in every run of the test
    def total(a):
        return a.sum()

    said = []
    with compile_notices(said.append):
        total(np.ones((2, 3)))
        total(np.ones((2, 3)))  # the same types: nothing compiles
        total(np.asfortranarray(np.ones((2, 3))))
    assert said == ["compiling total (float64); cached after the first run",
                    "compiling total (float64) again, for other argument types; cached after the first run"]


def test_compile_notices_do_not_promise_a_cache_that_is_off(monkeypatch):
    """RNNLAB_NO_CACHE=1 rnnlab esn said "compiling gemm (float64); cached after the first run"."""
    import numpy as np

    from rnnlab.kernels import _jit, compile_notices

    monkeypatch.setattr(_jit, "CACHE", False)
    monkeypatch.setattr(_jit, "NOT_CACHED_WHY", "RNNLAB_NO_CACHE")

    @_jit.jit(cache=False)
    def total(a):
        return a.sum()

    said = []
    with compile_notices(said.append):
        total(np.ones(3))
    assert said == ["compiling total (float64); not cached (RNNLAB_NO_CACHE)"]


def test_a_cache_folder_that_cannot_be_written_compiles_in_memory_and_says_why(tmp_path):
    """numba, handed a cache folder it could not write, cached into rnnlab's own __pycache__ (keyed on
    each file alone: stale machine code ran after an edit of _math.py), and where that could not be
    written either every kernel raised "cannot cache function ... no locator available"."""
    blocked = tmp_path / "a-file"
    blocked.write_text("")  # a folder under a file cannot be made, even by root
    code = ("from rnnlab.kernels import _jit, compile_notices; import numpy as np\n"
            "said = []\n"
            "f = _jit.jit(lambda a: a.sum())\n"
            "with compile_notices(said.append): f(np.ones(3))\n"
            "print(_jit.CACHE, _jit._OPTIONS['cache'], said[0])")
    env = {**os.environ, "RNNLAB_CACHE_DIR": str(blocked / "cache"), "PYTHONPATH": str(ROOT)}
    env.pop("RNNLAB_NO_CACHE", None)
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("False False compiling <lambda> (float64); not cached (") and \
        f"{blocked / 'cache'}/numba-" in done.stdout and done.stdout.rstrip().endswith(" cannot be written)")


def test_a_name_typed_in_other_capitals_or_cut_short_gets_a_did_you_mean(capsys):
    """`rnnlab gradcheck --only esn` suggested rnn_tanh, rnn_relu and lstm (difflib finds 'esn' too
    short a part of 'esn_readout'), and `rnnlab tui ESN` listed every preset without naming 'esn'."""
    from conftest import one_line_error, run_cli

    from rnnlab.errors import closest_name

    assert closest_name("esn", ["lstm", "esn_readout"]) == "esn_readout"
    assert closest_name("", ["esn_readout"]) is None
    code, _, err = run_cli(capsys, "gradcheck", "--only", "esn")
    assert code == 2 and "did you mean 'esn_readout'?" in one_line_error(err)
    code, _, err = run_cli(capsys, "tui", "ESN")
    assert code == 2 and "unknown experiment 'ESN' (did you mean 'esn'?)" in one_line_error(err)


def test_a_relative_cache_folder_is_the_working_directorys_at_import(tmp_path, monkeypatch):
    """RNNLAB_CACHE_DIR=relcache, then a chdir: the marker of use went to the first folder and the
    kernels numba compiled later to the second, the cache split and its 30-day pruning misled."""
    from rnnlab.kernels import cache_dir

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RNNLAB_CACHE_DIR", "relcache")
    assert cache_dir().parent == tmp_path / "relcache" and cache_dir().is_absolute()


@pytest.mark.parametrize("args, said", [
    (["bench", "--device", "CPU"], "--device must be cpu or cuda, got 'CPU' (did you mean 'cpu'?)"),
    (["train", "hello", "--device", "CUDA"], "--device must be cpu or cuda, got 'CUDA' (did you mean 'cuda'?)"),
    (["runs", ".", "--sort", "Loss"], "--sort must be one of updated, eval, loss, name, got 'Loss' (did you mean "
                                      "'loss'?)"),
    (["seq2seq", "--task", "Sort"], "--task must be reverse or sort, got 'Sort' (did you mean 'sort'?)"),
    (["seq2seq", "--cell", "LSTM"], "--cell must be one of rnn, lstm, gru, got 'LSTM' (did you mean 'lstm'?)"),
    (["esn", "--sweep", "Ridge"], "--sweep must be one of spectral_radius, leak_rate, input_scaling, connectivity, "
                                  "ridge, got 'Ridge' (did you mean 'ridge'?)"),
    (["bench", "--cells", "LSTM"], "--cells: unknown cell 'LSTM' (did you mean 'lstm'? known: rnn_tanh, rnn_relu, "
                                   "lstm, gru)"),
    (["train", "hello", "--set", "model.cell=GRU"], "--set model.cell: unknown value \"GRU\" (did you mean 'gru'? "),
    # another word, not a typo: no guess (difflib's 'cpu' for GPU), the choices said
    (["bench", "--device", "GPU"], "--device must be cpu or cuda, got 'GPU'"),
    (["train", "hello", "--set", "model.device=GPU"], "--set model.device: unknown value \"GPU\" (allowed: cpu, cuda)"),
    # a close misspelling is still named ("adm": three of four letters in order), as the spec's fields did
    (["train", "hello", "--set", "train.optimizer=adm"], "--set train.optimizer: unknown value \"adm\" (did you mean "
                                                          "'adam'? "),
    (["seq2seq", "--cell", "lsmt"], "--cell must be one of rnn, lstm, gru, got 'lsmt' (did you mean 'lstm'?)"),
])
def test_a_choice_in_other_capitals_is_refused_with_the_choice_meant(capsys, tmp_path, monkeypatch, args, said):
    """A choice option's value in capitals (--device CPU, --cell LSTM) was refused with the choices alone, though
    it differed only in case; now the choice meant is named, as --set's spec fields name it, and nothing is
    guessed where another word was typed."""
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, *args)
    lines = err.strip().splitlines()
    assert code == 2 and out == "" and len(lines) == 1
    assert lines[0].startswith(f"rnnlab: error: {said}")


@pytest.mark.parametrize("args, said", [
    (["sample", ""], "Invalid value for 'RUN_DIR': is empty: give a path"),
    (["sample"], "Missing argument 'RUN_DIR'."),
    (["runs", ""], "Invalid value for 'FOLDER': is empty: give a path"),
    (["runs", "a", "b"], "Got unexpected extra argument(s) (b)"),
    (["train", "--bogus"], "No such option: --bogus"),
    (["bptt", "--batch"], "Option '--batch' requires an argument."),
])
def test_a_usage_error_in_a_command_reads_as_rnnlabs_own_errors(capsys, args, said):
    """typer's refusals in a command began "rnnlab sample: error:", every other refusal (rnnlab's own, typer's
    of a command name or of an option's number) "rnnlab: error:": two forms for a log's reader or grep."""
    code, out, err = run(capsys, *args)
    assert code == 2 and out == "" and len(err.splitlines()) == 1
    assert err.startswith(f"rnnlab: error: {said}")


@pytest.mark.parametrize("command, named", [("sample", "{RUN_DIR}"), ("runs", "[FOLDER]"), ("train", "[TARGET]"),
                                            ("tui", "[TARGET]"), ("bptt", "[TARGET]")])
def test_an_argument_is_named_in_capitals_in_the_help_as_in_its_errors(capsys, command, named):
    """typer 0.2x named arguments by their Python names: 'Usage: rnnlab sample [OPTIONS] {run_dir}' and "Missing
    argument 'run_dir'", where the README says `rnnlab sample RUN_DIR` and train's errors "a spec (TARGET)"."""
    code, out, _ = run(capsys, command, "--help")
    assert code == 0 and f"Usage: rnnlab {command} [OPTIONS] {named}" in out
