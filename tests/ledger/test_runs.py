"""The ledger in real runs: tailed live into the journal, then removed; a lost ledger; forks."""

from __future__ import annotations

from kleio.ledger.directories import finish
from kleio.ledger.reader import LedgerReader
from kleio.spool import Spool
from kleio.storage.base import first_seq
from kleio.writer import LedgerChunk, Stop, Writer
from tests.ledger.conftest import TRIAL, stats


def test_live_writer_journals_ledger_chunks_with_markers_first(journal, tmp_path):
    directory = tmp_path / "d"
    directory.mkdir()
    (directory / "999999998-x.log").write_bytes(b"".join(b'S{"i":%d}\n' % i for i in range(20)))
    reader = LedgerReader(str(directory))
    writer = Writer(
        journal,
        TRIAL,
        first_seq(1) + 1,
        Spool(str(tmp_path / "s"), TRIAL, 1),
        0.01,
        ledger_dir=str(directory),
    )
    writer.start()
    for chunk in reader.drain():
        writer.send(LedgerChunk(chunk))
    writer.send(Stop())
    writer.join(timeout=10)
    assert stats(journal) == list(range(20))
    assert reader.all_read()
    finish(str(directory), reader, complete=writer.durable)
    assert not directory.exists()


def test_without_a_writable_ledger_calls_go_over_the_socket(git_repo, db_uri):
    """A ledger that cannot be written (here: gone) costs one warning, not one record."""
    from tests.conftest import run_kleio, write

    write(
        git_repo / "fallback.py",
        """
        import os, shutil
        from kleio.client.logger import kleio_logger
        shutil.rmtree(os.environ["KLEIO_LEDGER"])
        for i in range(500):
            kleio_logger.log_statistic(i=i)
        kleio_logger.log_artifact("w.bin", b"x" * 3_000_000, epoch=1)
        print(len(kleio_logger.statistics()), kleio_logger.load_artifact("w.bin")[1])
    """,
    )
    result = run_kleio("python", "fallback.py", cwd=git_repo)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "500 {'epoch': 1}\n"
    assert result.stderr.count("cannot write the ledger") == 1


def test_a_program_logging_from_a_signal_handler_never_deadlocks(git_repo, db_uri):
    from tests.conftest import run_kleio, write

    write(
        git_repo / "handler.py",
        """
        import os, signal
        from kleio.client.logger import kleio_logger
        signal.signal(signal.SIGUSR1, lambda *a: kleio_logger.log_statistic(signal=1))
        for i in range(20000):
            kleio_logger.log_statistic(i=i)
            if i % 100 == 0:
                os.kill(os.getpid(), signal.SIGUSR1)
    """,
    )
    result = run_kleio("python", "handler.py", cwd=git_repo, timeout=120)
    assert result.returncode == 0, result.stderr
    trial = result.stderr.split("id: ")[1][:7]
    lines = run_kleio("cat", trial, "--statistics", "--json", cwd=git_repo).stdout.splitlines()
    assert len(lines) == 20000 + 200


def test_short_lived_writers_never_exhaust_the_runners_descriptors(git_repo, db_uri):
    """Workers forked and ended by the hundred (DataLoader workers every epoch), with only
    64 descriptors: every record is read, and the program reads its own writes."""
    import subprocess
    import sys

    from tests.conftest import write

    write(
        git_repo / "forks.py",
        """
        import os
        from kleio.client.logger import kleio_logger
        for epoch in range(100):
            pids = []
            for w in range(4):
                pid = os.fork()
                if pid == 0:
                    kleio_logger.log_statistic(epoch=epoch, w=w)
                    os._exit(0)
                pids.append(pid)
            for pid in pids:
                os.waitpid(pid, 0)
        print(len(kleio_logger.statistics()))
    """,
    )
    limited = subprocess.run(
        ["sh", "-c", f"ulimit -n 64 && exec {sys.executable} -m kleio python forks.py"],
        cwd=git_repo,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert limited.returncode == 0, limited.stderr
    assert limited.stdout == "400\n", limited.stderr
