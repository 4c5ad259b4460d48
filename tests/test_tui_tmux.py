"""The lab end to end: the real ``rnnlab`` console script in a real terminal (tmux).

The Textual unit tests drive ``LabApp`` through ``run_test``; this file checks what they cannot:
the installed entry point opens the lab in a terminal, the keys typed there reach it, it trains and
quits with exit status 0, and nothing prints a traceback. tmux gives a terminal of a fixed size
(``TERM=xterm-256color COLORTERM=truecolor``, DESIGN.md "TUI facts"); keys go in with
``send-keys`` and the screen comes back with ``capture-pane -p``, polled until the expected text
shows (never a fixed sleep). Each test runs its own tmux server (``tmux -L``) so that nothing
touches the user's sessions. ``.ci/run`` installs tmux where it is missing; elsewhere the tmux
test is skipped. Also here: the two ways ``rnnlab`` refuses to open the lab (a bad preset, no
terminal), which need no tmux.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

WIDTH, HEIGHT = 160, 50
#: The first launch may compile the numba kernels from a cold cache (tens of seconds on a slow,
#: shared machine); every later wait is for a key press or 200 training steps.
START_DEADLINE_S = 120.0
STEP_DEADLINE_S = 60.0

#: Text only the help screen shows (the footer lists "BPTT step" too).
HELP_MARK = "Click a heatmap column"

TMUX = shutil.which("tmux")
needs_tmux = pytest.mark.skipif(
    TMUX is None,
    reason="tmux is not installed: the end-to-end lab test drives a real terminal through tmux "
    "(.ci/run installs it; locally: apt-get install tmux)",
)


def tail(text: str, lines: int = 60) -> str:
    """The last non-blank lines of a screen, for a failure message."""
    return "\n".join([line for line in text.splitlines() if line.strip()][-lines:])


def rnnlab_command() -> list[str]:
    """The installed console script, or the same entry point through this interpreter."""
    script = shutil.which("rnnlab")
    return [script] if script else [sys.executable, "-m", "rnnlab.cli"]


class Terminal:
    """One detached tmux session on a private server, running one command."""

    def __init__(self, command: list[str], cwd: Path, status_file: Path,
                 terminal: tuple[str, ...] = ("TERM=xterm-256color", "COLORTERM=truecolor"),
                 size: tuple[int, int] = (WIDTH, HEIGHT)) -> None:
        self.socket = f"rnnlab-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.status_file = status_file
        self.captures: list[str] = []
        self.env = {**os.environ, "TERM": "xterm-256color", "COLORTERM": "truecolor"}
        self.env.pop("TMUX", None)  # a test run from inside tmux must not talk to the user's server
        for fixed_size in ("COLUMNS", "LINES"):  # set by pytest-xdist's workers (80x24): the pane sets the size
            self.env.pop(fixed_size, None)
        # `env` sets the terminal inside the pane: tmux would otherwise give the pane its own TERM
        # (screen / tmux-256color), and under TERM=screen the lab falls back to 16 colours. The
        # shell writes the exit status to a file: #{pane_dead_status} is empty on some tmux builds.
        inner = (shlex.join(["env", *terminal, *command])
                 + f"; echo $? > {shlex.quote(str(status_file))}")
        # remain-on-exit keeps the dead pane (and what was printed after the alternate screen
        # closed, a crash's traceback) readable; it is set in the same tmux invocation that creates
        # the session, long before the lab could exit.
        self.tmux("new-session", "-d", "-s", "lab", "-x", str(size[0]), "-y", str(size[1]), "-c", str(cwd), inner,
                  ";", "set-option", "-w", "-t", "lab", "remain-on-exit", "on")
        self.socket_path = self.tmux("display-message", "-p", "#{socket_path}").stdout.strip()

    def tmux(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([TMUX, "-L", self.socket, "-f", os.devnull, *args], env=self.env,
                              capture_output=True, text=True, timeout=30, check=check)

    def screen(self) -> str:
        """The visible screen as text (recorded, so that a traceback anywhere can be found)."""
        text = self.tmux("capture-pane", "-p", "-t", "lab").stdout
        self.captures.append(text)
        return text

    def scrollback(self) -> str:
        """The whole pane, history included: what the process printed after leaving the
        alternate screen (a crash's traceback lands there), a line the pane wrapped joined (-J: a
        path of another length wrapped "step" into "st ep")."""
        text = self.tmux("capture-pane", "-p", "-J", "-S", "-", "-t", "lab", check=False).stdout
        self.captures.append(text)
        return text

    def send(self, *keys: str) -> None:
        for key in keys:
            self.tmux("send-keys", "-t", "lab", key)

    def send_text(self, text: str) -> None:
        """Literal characters (``?`` is not a key name)."""
        self.tmux("send-keys", "-t", "lab", "-l", text)

    def dead(self) -> bool:
        """Whether the command has ended (its pane is dead, or the session is gone)."""
        result = self.tmux("display-message", "-p", "-t", "lab", "#{pane_dead}", check=False)
        return result.returncode != 0 or result.stdout.strip() == "1"

    def wait_for(self, what: str, predicate: Callable[[str], bool], deadline_s: float = STEP_DEADLINE_S) -> str:
        """Poll the screen until ``predicate(screen)``; fail with the last screen after the deadline."""
        end = time.monotonic() + deadline_s
        while True:
            text = self.screen()
            assert "Traceback" not in text, f"traceback on the screen while waiting for {what}:\n{tail(text)}"
            if predicate(text):
                return text
            if self.dead():
                pytest.fail(f"the lab exited while waiting for {what}:\n{tail(self.scrollback())}")
            if time.monotonic() > end:
                pytest.fail(f"no {what} after {deadline_s:.0f} s; the screen:\n{tail(text)}")
            time.sleep(0.1)

    def wait_exit(self, deadline_s: float = STEP_DEADLINE_S) -> str:
        """Wait for the process to end; returns its exit status (as the shell wrote it)."""
        end = time.monotonic() + deadline_s
        while True:
            if self.dead() and self.status_file.is_file():
                return self.status_file.read_text().strip()
            if time.monotonic() > end:
                pytest.fail(f"the lab did not exit {deadline_s:.0f} s after q; the screen:\n{tail(self.screen())}")
            time.sleep(0.1)

    def close(self) -> None:
        self.tmux("kill-server", check=False)
        if self.socket_path:  # tmux leaves the socket file behind
            Path(self.socket_path).unlink(missing_ok=True)


def status_line(screen: str) -> str:
    """The lab's status bar: the line that starts with the time cursor ``t K/T``."""
    for line in reversed(screen.splitlines()):
        if re.match(r"\s*t \d+/\d+\b", line):
            return line
    return ""


def training_step(screen: str) -> int | None:
    match = re.search(r"\b(?:running|paused|completed|stopped) step (\d+)", status_line(screen))
    return int(match.group(1)) if match else None


@needs_tmux
def test_lab_in_a_real_terminal(tmp_path):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    term = Terminal(rnnlab_command(), cwd, tmp_path / "exit-status")
    try:
        # the lab opens on hello: the heatmap of h_t and the sequence bar's input row
        term.wait_for("the lab's screen", lambda s: "hidden state h_t" in s and re.search(r"^\s*input\b", s, re.M)
                      and status_line(s) != "", START_DEADLINE_S)
        assert "t 0/4" in status_line(term.screen())

        # three steps forward in time
        term.send("Right", "Right", "Right")
        term.wait_for("t 3/4 in the status bar", lambda s: "t 3/4" in status_line(s))

        # one step of backpropagation through time
        term.send("b")
        term.wait_for("the BPTT cursor in the status bar", lambda s: "BPTT t=" in status_line(s))

        # the help screen lists the bindings; Esc closes it
        term.send_text("?")
        term.wait_for("the help screen", lambda s: "BPTT step" in s and HELP_MARK in s)
        term.send("Escape")
        term.wait_for("the help screen to close", lambda s: HELP_MARK not in s and status_line(s) != "")

        # train: the status goes to running (or straight to completed: hello is 200 quick steps)
        term.send("t")
        started = term.wait_for("training to start", lambda s: (training_step(s) or 0) > 0
                                or re.search(r"\b(running|completed)\b", status_line(s)) is not None)
        done = term.wait_for("training to complete", lambda s: "completed" in status_line(s))
        assert training_step(done) == 200, status_line(done)
        assert (training_step(started) or 0) <= training_step(done)

        term.send("q")  # the 200 trained steps are not saved: the first q asks, the second quits
        term.wait_for("the unsaved-training warning", lambda s: "not saved" in s)
        term.send("q")
        status = term.wait_exit()
        printed = term.scrollback()  # anything printed after the alternate screen closed
        assert status == "0", f"the lab exited with status {status}:\n{tail(printed)}"
        for text in term.captures:
            assert "Traceback" not in text, tail(text)
    finally:
        term.close()


@needs_tmux
def test_the_lab_with_stderr_in_a_file_says_it_draws_there_and_exits_2(tmp_path):
    """Textual draws on stderr: `rnnlab tui 2>err.txt` drew the whole screen into the file and the
    terminal stayed blank, the lab running blind."""
    command = ["sh", "-c", " ".join(map(shlex.quote, rnnlab_command())) + " tui 2>err.txt"]
    term = Terminal(command, tmp_path, tmp_path / "exit-status")
    try:
        assert term.wait_exit(START_DEADLINE_S) == "2"
        assert (tmp_path / "err.txt").read_text() == (
            "rnnlab: error: the lab draws its screen on stderr, which is not a terminal here: leave stderr on the "
            "terminal (no 2>FILE)\n")
    finally:
        term.close()


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid``, from /proc (no procps in a slim image)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()  # after the command name, which may hold spaces
        except OSError:  # ended meanwhile
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def training_lab(term: Terminal) -> int:
    """Wait for the lab's screen, press t, wait for a trained step; the lab's process id."""
    term.wait_for("the lab's screen", lambda s: "hidden state" in s and status_line(s) != "", START_DEADLINE_S)
    term.send("t")
    term.wait_for("training", lambda s: (training_step(s) or 0) > 0)
    shell = term.tmux("display-message", "-p", "-t", "lab", "#{pane_pid}").stdout.strip()
    lab = children(int(shell))
    assert len(lab) == 1, lab  # env execs rnnlab: the shell's one child
    return lab[0]


@needs_tmux
def test_a_kill_saves_the_trained_steps_and_gives_the_terminal_back(tmp_path):
    """kill -TERM ended the lab at once: its trained steps were lost without a word and the terminal
    stayed in the alternate screen. It now saves them as ctrl+s does, leaves the screen and says where."""
    term = Terminal([*rnnlab_command(), "tui", "--set", "train.steps=1000000"], tmp_path, tmp_path / "exit-status")
    try:
        os.kill(training_lab(term), 15)
        assert term.wait_exit() == "143"
        assert term.tmux("display-message", "-p", "-t", "lab", "#{alternate_on}").stdout.strip() == "0"
        said = " ".join(term.scrollback().split())  # (the line wraps at the pane's width, anywhere)
        assert "rnnlab: SIGTERM: the trained steps not saved were saved to " in said, tail(said)
        step = re.search(r"\(\s*step\s+(\d+)\s*\)", said)
        [saved] = (tmp_path / "runs").iterdir()  # where ctrl+s saves a preset's first run
        from rnnlab.train import RunDir
        assert step and RunDir.open(saved).checkpoint_step() == int(step.group(1)) > 0, tail(said)
        assert "Traceback" not in said
    finally:
        term.close()


def alive(pid: int) -> bool:
    """Whether process ``pid`` is still running (not ended, nor a zombie waiting for its parent)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


@needs_tmux
def test_a_terminal_closed_while_training_saves_and_the_lab_ends(tmp_path):
    """A terminal closed (tmux killed, an ssh session dropped) while the lab trained: the steps were
    saved, but the process lived on for good, orphaned, blocked in Textual's close of a terminal that
    was gone, because the unmount had called off the forced exit that covers just that."""
    term = Terminal([*rnnlab_command(), "tui", "selective-copy-lru", "--set", "train.steps=1000000"], tmp_path,
                    tmp_path / "exit-status", size=(80, 24))
    lab, ended = 0, False
    try:
        lab = training_lab(term)
        time.sleep(5)  # (a hang needed Textual's writer queue full when the terminal went)
        term.tmux("kill-server")  # the terminal goes: SIGHUP to the lab
        end = time.monotonic() + 60  # (the save, then 2 s of grace)
        while alive(lab) and time.monotonic() < end:
            time.sleep(0.2)
        if ended := not alive(lab):
            [saved] = (tmp_path / "runs").iterdir()
            from rnnlab.train import RunDir
            assert RunDir.open(saved).checkpoint_step() > 0
    finally:
        term.close()
        if lab and alive(lab):
            os.kill(lab, 9)
    assert ended, "the lab still runs 60 s after its terminal closed"


@needs_tmux
@pytest.mark.parametrize(("terminal", "said"), [
    (("-u", "COLORTERM", "TERM=screen"), ("heatmaps need true colour", "TERM=screen gives 16")),
    # textual draws greys under NO_COLOR: the maps' signed values look alike (a TUI walkthrough)
    (("TERM=xterm-256color", "COLORTERM=truecolor", "NO_COLOR=1"),
     ("NO_COLOR is set: the lab draws in greys", "unset NO_COLOR"))],
    ids=["16-colours", "no-color"])
def test_a_terminal_without_true_colour_gets_a_warning(tmp_path, terminal, said):
    """Under TERM=screen the heatmaps drop to 16 colours and read as noise: the lab says so."""
    term = Terminal(rnnlab_command(), tmp_path, tmp_path / "exit-status", terminal=terminal)
    try:
        def toast_text(screen: str) -> str:  # the notification's lines, joined, without its border
            return " ".join(screen.replace("▌", " ").split())

        screen = term.wait_for("the colour warning", lambda s: said[0] in toast_text(s), START_DEADLINE_S)
        assert said[1] in toast_text(screen)
        term.send("q")
        assert term.wait_exit() == "0"
    finally:
        term.close()


@needs_tmux
@pytest.mark.parametrize(("lab", "mark"), [("esn", "echo state network"), ("seq2seq", "attention"),
                                           ("treebank", "treebank: recursive net")])
def test_architecture_labs_open_from_rnnlab_tui(tmp_path, lab, mark):
    """`rnnlab tui esn|seq2seq|treebank` opens that lab's screen; `q` quits cleanly."""
    term = Terminal([*rnnlab_command(), "tui", lab], tmp_path, tmp_path / "exit-status")
    try:
        term.wait_for(f"the {lab} lab", lambda s: mark in s and "help" in s, START_DEADLINE_S)
        term.send("q")
        status = term.wait_exit()
        assert status == "0", f"the {lab} lab exited with status {status}:\n{tail(term.scrollback())}"
        for text in term.captures:
            assert "Traceback" not in text, tail(text)
    finally:
        term.close()


@needs_tmux
def test_a_run_the_lab_cannot_open_exits_2_and_says_why_after_the_screen(tmp_path):
    """A damaged checkpoint passes the CLI's checks (which read no weights): the loading screen says
    why, and q exited 0, as if all had gone well."""
    run_dir = tmp_path / "run"
    subprocess.run([*rnnlab_command(), "train", "hello", "--steps", "2", "--out", str(run_dir)], cwd=tmp_path,
                   stdin=subprocess.DEVNULL, capture_output=True, timeout=300, check=True)
    (run_dir / "checkpoint.npz").write_bytes(b"PK\x03\x04 cut short")
    term = Terminal([*rnnlab_command(), "tui", str(run_dir)], tmp_path, tmp_path / "exit-status")
    try:
        term.wait_for("the loading error", lambda s: "cannot open the lab" in s, START_DEADLINE_S)
        term.send("q")
        assert term.wait_exit() == "2"
        assert f"rnnlab: error: cannot open the lab: {run_dir}/checkpoint.npz is damaged" in \
            " ".join(term.scrollback().split())  # left in the terminal once the screen is gone
    finally:
        term.close()


def test_unknown_preset_is_one_line_and_exit_2(tmp_path):
    result = subprocess.run([*rnnlab_command(), "tui", "nope"], cwd=tmp_path, stdin=subprocess.DEVNULL,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "unknown experiment 'nope'" in lines[0], result.stderr
    assert "hello" in lines[0] and "esn, seq2seq, treebank" in lines[0]  # presets and labs to pick from
    assert "Traceback" not in result.stderr + result.stdout


def test_without_a_terminal_prints_a_hint_instead_of_hanging(tmp_path):
    try:  # stdout is a pipe here: the lab must not start (and wait forever for a terminal)
        result = subprocess.run(rnnlab_command(), cwd=tmp_path, stdin=subprocess.DEVNULL,
                                capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"`rnnlab` without a terminal still ran after 30 s; it printed {exc.stdout!r} {exc.stderr!r}")
    assert result.returncode == 2, result  # the lab did not open, as `rnnlab tui`'s
    assert "needs a terminal" in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
