"""Cases that run in a subprocess of their own while the rest of the suite runs.

tests/test_cuda.py's GPU cases run as pytest subprocesses (``NUMBA_ENABLE_CUDASIM=1`` must be set
before numba is imported, so the simulator's cannot run in the suite's processes), and take
minutes of one core: the simulator's, and NVVM compiling every kernel to PTX. conftest's
``pytest_collection_modifyitems`` starts them once the tests that wait for them are selected, and
moves those tests last, so that the cases run on a core the suite leaves free meanwhile.

Under pytest-xdist every worker collects every test, and any worker may run the waiting tests;
a worker may also end before the others. So the cases run in a runner process of their own
(``python tests/background.py DIRECTORY``), started by the first process that collects a waiting
test, and every process reads their results from files in one directory. The main process
(xdist's controller, or the only one) makes that directory before any worker starts and names it
in ``$RNNLAB_TEST_BACKGROUND`` for them (:func:`make_directory`).

Who is alive is told by locks, not process ids (which wrap around in minutes on a busy machine):
the main process holds ``main.lock`` and the runner ``runner.lock`` for as long as each lives. A
runner whose main process is gone (killed, or a CI timeout's SIGTERM) stops its cases and removes
the directory; the main process stops a runner still going when it ends (:func:`stop_and_remove`).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

DIRECTORY_ENV = "RNNLAB_TEST_BACKGROUND"
#: Set for the cases' own pytest runs (tests/test_cuda.py), which load tests/conftest.py too and
#: must make no directory.
CASES_RUN_ENV = "RNNLAB_TEST_CASES_RUN"
ROOT = Path(__file__).resolve().parent.parent
#: The longest one command may run (the old in-suite subprocesses' limit).
COMMAND_TIMEOUT_S = 900

_MAIN_LOCK = "main.lock"
_RUNNER_LOCK = "runner.lock"
_RUNNER_PID = "runner.pid"
_RUNNER_LOG = "runner.log"
_STARTED = "started"
_main_lock_file = None  # the main process's open, locked main.lock: released when the process dies


def _write_whole(path: Path, text: str) -> None:
    """Write ``path`` so that no reader sees it half written (a rename)."""
    partial = path.with_name(path.name + ".part")
    partial.write_text(text)
    partial.rename(path)


def _lock(path: Path, blocking: bool):
    """The open file of ``path`` with an exclusive lock on it, or None where another process holds one."""
    file = open(path, "a")  # noqa: SIM115 - held open for the lock's life
    try:
        fcntl.flock(file, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except BlockingIOError:
        file.close()
        return None
    return file


def _held(path: Path) -> bool:
    """Whether a living process holds the lock on ``path``."""
    probe = _lock(path, blocking=False)
    if probe is None:
        return True
    probe.close()
    return False


def make_directory() -> Path:
    """The main process's directory for this run's results, named in the environment; the main
    process holds its lock from here on."""
    global _main_lock_file
    directory = Path(tempfile.mkdtemp(prefix="rnnlab-background-"))
    _main_lock_file = _lock(directory / _MAIN_LOCK, blocking=True)
    os.environ[DIRECTORY_ENV] = str(directory)
    return directory


def stop_and_remove(directory: Path) -> None:
    """Stop a runner still going (its process group: the cases' pytest too), then remove the directory."""
    global _main_lock_file
    pid_file = directory / _RUNNER_PID
    if pid_file.is_file() and _held(directory / _RUNNER_LOCK):  # alive: its id is still its own
        try:
            os.killpg(int(pid_file.read_text()), signal.SIGKILL)
        except ProcessLookupError:
            pass  # it ended just now
    if _main_lock_file is not None:
        _main_lock_file.close()
        _main_lock_file = None
    shutil.rmtree(directory, ignore_errors=True)


class BackgroundCases:
    """Named commands (each a pytest run of case files) run one after another in the background;
    :meth:`result` waits for one's :class:`subprocess.CompletedProcess`."""

    def __init__(self) -> None:
        self._commands: dict[str, tuple[list[str], dict[str, str]]] = {}

    def add(self, name: str, command: list[str], env: dict[str, str]) -> None:
        self._commands[name] = (command, env)

    @staticmethod
    def _directory() -> Path:
        return Path(os.environ[DIRECTORY_ENV])

    def start(self, names) -> None:
        """Run the commands of ``names`` (those of the selected tests), in the order they were
        added, unless another process of this run has started them already."""
        wanted = set(names)
        jobs = [{"name": name, "command": command, "env": env}
                for name, (command, env) in self._commands.items() if name in wanted]
        if not jobs:
            return
        directory = self._directory()
        try:
            (directory / _STARTED).mkdir()  # atomic: one process of the run gets past here
        except FileExistsError:
            return
        _write_whole(directory / "jobs.json", json.dumps(jobs))
        with open(directory / _RUNNER_LOG, "w") as log:
            runner = subprocess.Popen([sys.executable, __file__, str(directory)], cwd=ROOT, start_new_session=True,
                                      stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        threading.Thread(target=runner.wait, daemon=True).start()  # reaps it while this process lives

    def result(self, name: str, timeout_s: float = 2 * COMMAND_TIMEOUT_S) -> subprocess.CompletedProcess:
        """The finished command of ``name``: waits for it (AssertionError if the runner ended
        without it, or after ``timeout_s``)."""
        self.start([name])  # in case no collection started it (a no-op where one did)
        directory = self._directory()
        path = directory / f"{name}.json"
        end = time.monotonic() + timeout_s
        while not path.is_file():
            runner_gone = (directory / _RUNNER_PID).is_file() and not _held(directory / _RUNNER_LOCK)
            if runner_gone and not path.is_file():
                log = (directory / _RUNNER_LOG).read_text()[-3000:]
                raise AssertionError(f"the background runner ended without the cases of {name}:\n{log}")
            if time.monotonic() > end:
                raise AssertionError(f"the cases of {name} did not finish in {timeout_s:.0f} s")
            time.sleep(0.5)
        done = json.loads(path.read_text())
        return subprocess.CompletedProcess(done["command"], done["returncode"], done["output"], "")


def _run_one(job: dict, directory: Path) -> dict:
    """One command to its end (its output to a file: a full pipe would stall it), stopped early
    if the main process is gone."""
    with tempfile.TemporaryFile(mode="w+") as output:
        process = subprocess.Popen(job["command"], cwd=ROOT, env=job["env"], stdin=subprocess.DEVNULL,
                                   stdout=output, stderr=subprocess.STDOUT)
        end = time.monotonic() + COMMAND_TIMEOUT_S
        while process.poll() is None:
            if not _held(directory / _MAIN_LOCK) or time.monotonic() > end:
                process.kill()
                process.wait()
                output.seek(0)
                return {"returncode": -signal.SIGKILL, "output": output.read() + "\n[stopped: the run ended, or "
                        f"{COMMAND_TIMEOUT_S} s passed]"}
            time.sleep(0.5)
        output.seek(0)
        return {"returncode": process.returncode, "output": output.read()}


def _run(directory: Path) -> None:
    """The runner: the jobs in turn, each result written whole for the waiting tests; a job that
    fails to run gets its traceback as its output."""
    runner_lock = _lock(directory / _RUNNER_LOCK, blocking=True)  # held until this process ends
    _write_whole(directory / _RUNNER_PID, str(os.getpid()))
    for job in json.loads((directory / "jobs.json").read_text()):
        if not _held(directory / _MAIN_LOCK):  # the run is over (killed): nobody waits, nobody cleans up
            shutil.rmtree(directory, ignore_errors=True)
            return
        try:
            done = _run_one(job, directory)
        except Exception:  # noqa: BLE001 - whatever it is, the waiting test reports it
            done = {"returncode": 1, "output": traceback.format_exc()}
        _write_whole(directory / f"{job['name']}.json", json.dumps({"command": job["command"], **done}))
    if not _held(directory / _MAIN_LOCK):
        shutil.rmtree(directory, ignore_errors=True)
    runner_lock.close()


if __name__ == "__main__":
    _run(Path(sys.argv[1]))
