"""Cases that run in a subprocess of their own while the rest of the suite runs.

tests/test_cuda.py's simulator cases take minutes of one core (``NUMBA_ENABLE_CUDASIM=1`` must be
set before numba is imported, so they cannot run in the suite's processes). conftest's
``pytest_collection_modifyitems`` starts them once the tests that wait for them are selected, and
moves those tests last, so that the cases run on a core the suite leaves free meanwhile.

Under pytest-xdist every worker collects every test, and any worker may run the waiting tests;
a worker may also end before the others. So the cases run in a runner process of their own
(``python tests/background.py JOBS DIRECTORY``), started by the first process that collects a
waiting test, and every process reads their results from files in one directory. The main process
(xdist's controller, or the only one) makes that directory before any worker starts, names it in
``$RNNLAB_TEST_BACKGROUND`` for them, and at the end stops a runner still going (an interrupted
run) and removes it (:func:`make_directory`, :func:`stop_and_remove`).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

DIRECTORY_ENV = "RNNLAB_TEST_BACKGROUND"
ROOT = Path(__file__).resolve().parent.parent
_RUNNER_PID = "runner.pid"
_STARTED = "started"
_STOP = "stop"


def make_directory() -> Path:
    """The main process's directory for this run's results, named in the environment."""
    directory = Path(tempfile.mkdtemp(prefix="rnnlab-background-"))
    os.environ[DIRECTORY_ENV] = str(directory)
    return directory


def stop_and_remove(directory: Path) -> None:
    """Stop a runner still going (its whole process group: the cases' pytest too), then remove
    the directory."""
    (directory / _STOP).touch()
    try:
        os.killpg(int((directory / _RUNNER_PID).read_text()), signal.SIGKILL)
    except (FileNotFoundError, ValueError, ProcessLookupError, PermissionError):
        pass  # never started, or done
    shutil.rmtree(directory, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
        if not any(name in self._commands for name in names):
            return
        directory = self._directory()
        try:
            (directory / _STARTED).mkdir(parents=True)  # atomic: one process of the run gets past here
        except FileExistsError:
            return
        jobs = [{"name": name, "command": command, "env": env}
                for name, (command, env) in self._commands.items() if name in set(names)]
        (directory / "jobs.json").write_text(json.dumps(jobs))
        runner = subprocess.Popen([sys.executable, __file__, str(directory / "jobs.json"), str(directory)],
                                  cwd=ROOT, start_new_session=True, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        (directory / _RUNNER_PID).write_text(str(runner.pid))
        threading.Thread(target=runner.wait, daemon=True).start()  # reaps it: no zombie looks alive

    def result(self, name: str, timeout_s: float = 1800.0) -> subprocess.CompletedProcess:
        """The finished command of ``name``: waits for it (AssertionError if the runner is gone
        without it, or after ``timeout_s``)."""
        self.start([name])  # in case no collection started it (a no-op where one did)
        directory = self._directory()
        path = directory / f"{name}.json"
        end = time.monotonic() + timeout_s
        while not path.is_file():
            pid_file = directory / _RUNNER_PID
            if pid_file.is_file() and not _alive(int(pid_file.read_text())) and not path.is_file():
                raise AssertionError(f"the background runner ended without the cases of {name}")
            if time.monotonic() > end:
                raise AssertionError(f"the cases of {name} did not finish in {timeout_s:.0f} s")
            time.sleep(0.5)
        done = json.loads(path.read_text())
        return subprocess.CompletedProcess(done["command"], done["returncode"], done["output"], "")


def _run(jobs_file: Path, directory: Path) -> None:
    """The runner: each job's output to a file (a full pipe would stall it), its result written
    whole (a rename) for the waiting tests."""
    for job in json.loads(jobs_file.read_text()):
        if (directory / _STOP).exists():
            return
        with tempfile.TemporaryFile(mode="w+") as output:
            returncode = subprocess.run(job["command"], cwd=ROOT, env=job["env"], stdin=subprocess.DEVNULL,
                                        stdout=output, stderr=subprocess.STDOUT, text=True).returncode
            output.seek(0)
            done = {"command": job["command"], "returncode": returncode, "output": output.read()}
        partial = directory / f"{job['name']}.json.part"
        partial.write_text(json.dumps(done))
        partial.rename(directory / f"{job['name']}.json")


if __name__ == "__main__":
    _run(Path(sys.argv[1]), Path(sys.argv[2]))
