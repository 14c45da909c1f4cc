"""kleio.process: the run path's two processes, started without subprocess."""

from __future__ import annotations

import errno
import os
import sys

import pytest

from kleio.process import run, spawn


def test_run_captures_both_outputs_and_the_exit_code():
    done = run(
        [
            sys.executable,
            "-c",
            "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)",
        ]
    )
    assert (done.returncode, done.stdout, done.stderr) == (3, b"out\n", b"err\n")


def test_run_feeds_input_larger_than_a_pipe_while_reading():
    data = b"x" * (1 << 20)  # more than a pipe holds: reading and writing must interleave
    done = run(
        [
            sys.executable,
            "-c",
            "import sys; d = sys.stdin.buffer.read(); sys.stdout.buffer.write(d); "
            "sys.stderr.write(str(len(d)))",
        ],
        input=data,
    )
    assert done.stdout == data and done.stderr == str(len(data)).encode()


def test_run_without_input_reads_an_empty_stdin():
    assert (
        run([sys.executable, "-c", "import sys; print(repr(sys.stdin.read()))"]).stdout == b"''\n"
    )


def test_run_kills_a_command_past_its_timeout():
    with pytest.raises(TimeoutError):
        run([sys.executable, "-c", "import time; time.sleep(60)"], timeout=0.5)


def test_run_of_a_missing_program_raises_oserror():
    with pytest.raises(OSError):
        run(["kleio-no-such-program-anywhere"])


def test_spawn_starts_the_program_with_its_outputs_directory_and_no_other_descriptor(tmp_path):
    out = tmp_path / "out"
    leaked = os.open(os.devnull, os.O_RDONLY)
    os.set_inheritable(leaked, True)  # an inheritable descriptor still must not leak
    probe = (
        "import os, sys\n"
        "print(os.getcwd())\n"
        "try:\n    os.fstat(int(sys.argv[1])); print('open')\n"
        "except OSError:\n    print('closed')\n"
    )
    try:
        with open(out, "wb") as sink:
            pid = spawn(
                [sys.executable, "-c", probe, str(leaked)],
                cwd=str(tmp_path),
                env=dict(os.environ),
                stdout=sink.fileno(),
                stderr=sink.fileno(),
                before_exec=lambda: None,
            )
            _, status = os.waitpid(pid, 0)
    finally:
        os.close(leaked)
    assert os.waitstatus_to_exitcode(status) == 0
    cwd, state = out.read_text().splitlines()
    assert os.path.samefile(cwd, tmp_path)
    assert state == "closed"


@pytest.mark.parametrize(
    "program, code",
    [
        ("missing", errno.ENOENT),
        ("not-executable", errno.EACCES),
        ("no-shebang", errno.ENOEXEC),
    ],
)
def test_spawn_raises_in_the_parent_when_exec_fails(tmp_path, program, code):
    (tmp_path / "not-executable").write_text("#!/bin/sh\n")
    script = tmp_path / "no-shebang"
    script.write_bytes(b"\x7fELF-not-really\n")
    script.chmod(0o755)
    with pytest.raises(OSError) as raised:
        spawn(
            [str(tmp_path / program)],
            cwd=str(tmp_path),
            env=dict(os.environ),
            stdout=1,
            stderr=2,
            before_exec=lambda: None,
        )
    assert raised.value.errno == code


def test_spawn_reports_a_failing_before_exec(tmp_path):
    def fail() -> None:
        raise PermissionError(errno.EPERM, "refused by the test")

    with pytest.raises(OSError) as raised:
        spawn(
            [sys.executable, "-c", "pass"],
            cwd=str(tmp_path),
            env=dict(os.environ),
            stdout=1,
            stderr=2,
            before_exec=fail,
        )
    assert raised.value.errno == errno.EPERM


def _ignored(status: str) -> int:
    """The signals a process ignores, from its /proc status text (bit N-1: signal N)."""
    line = next(line for line in status.splitlines() if line.startswith("SigIgn:"))
    return int(line.split()[1], 16)


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs /proc")
def test_both_start_programs_with_sigpipe_and_sigxfsz_as_a_shell_would(tmp_path):
    import signal

    mask = (1 << (signal.SIGPIPE - 1)) | (1 << (signal.SIGXFSZ - 1))
    with open("/proc/self/status") as handle:
        assert _ignored(handle.read()) & mask  # Python ignores them itself
    probe = ["sh", "-c", "cat /proc/$$/status"]
    assert not _ignored(run(probe).stdout.decode()) & mask
    out = tmp_path / "status"
    with open(out, "wb") as sink:
        pid = spawn(
            probe,
            cwd=str(tmp_path),
            env=dict(os.environ),
            stdout=sink.fileno(),
            stderr=2,
            before_exec=lambda: None,
        )
        os.waitpid(pid, 0)
    assert not _ignored(out.read_text()) & mask
    # So a pipe that closes ends its writer, as in a shell.
    assert run(["sh", "-c", "yes | head -1"], timeout=20).stdout == b"y\n"


def test_a_ctrl_c_before_the_exec_kills_the_child_as_after_it(tmp_path):
    """Python's SIGINT handler, inherited by the forked child, would turn a Ctrl-C before
    the exec into an exception taken for a failed exec (the trial ended broken, 126)."""
    import signal

    def interrupted_now():
        os.kill(os.getpid(), signal.SIGINT)  # blocked until the unblock below
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})

    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        pid = spawn(
            [sys.executable, "-c", "pass"],
            cwd=str(tmp_path),
            env=dict(os.environ),
            stdout=1,
            stderr=2,
            before_exec=interrupted_now,
        )
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGINT
