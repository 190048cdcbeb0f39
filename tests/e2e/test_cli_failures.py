"""How the CLI fails: one clear line, the right exit code, nothing created by reading."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from entrypoints.cli import main

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config" / "datalakep.yaml"


# A terminal starts a command with SIGINT at its default, which Python turns into
# KeyboardInterrupt. A test run started in the background of a non-interactive shell
# (`nohup scripts/test &`) passes SIGINT down ignored, and Python then leaves it
# ignored, as nohup asks: this shim restores the default, then runs the CLI.
_AT_A_TERMINAL = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execv(sys.executable, [sys.executable, '-m', 'entrypoints.cli', *sys.argv[1:]])"
)


def cli_process(*args: str, cwd: Path, **kwargs: object) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("DATALAKEP_CONFIG", None)
    process: subprocess.Popen[str] = subprocess.Popen(
        [sys.executable, "-c", _AT_A_TERMINAL, *args],
        cwd=cwd,
        env=env,
        text=True,
        **kwargs,  # type: ignore[call-overload]
    )
    return process


def test_a_yaml_syntax_error_names_file_line_and_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "broken.yaml"
    config.write_text("rejects:\n  directory: data/rejects\ntables:\n  t: {columns: [\n")

    code = main(["validate", str(tmp_path), "--config", str(config)])

    assert code == 2
    err = capsys.readouterr().err
    assert f"{config}, line 5, column 1:" in err
    assert "Traceback" not in err


def test_an_unknown_type_names_its_table_and_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "typo.yaml"
    config.write_text(CONFIG.read_text().replace("type: varchar(6)", "type: varchr(6)", 1))
    (tmp_path / "x.csv").write_text("a\n1\n")

    code = main(["validate", str(tmp_path / "x.csv"), "--config", str(config)])

    assert code == 2
    assert "table train_data, column Sex: unknown column type 'varchr(6)'" in (
        capsys.readouterr().err
    )


def test_history_of_a_missing_database_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    code = main(["history", "--warehouse", "duckdb:///nonexistent/dir/x.duckdb"])

    assert code == 2
    assert "no ledger at duckdb:///nonexistent/dir/x.duckdb" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_version_and_init(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as version:
        main(["--version"])
    assert version.value.code == 0
    assert capsys.readouterr().out.startswith("datalakep ")

    project = tmp_path / "project"
    assert main(["init", str(project)]) == 0
    assert (project / "config" / "datalakep.yaml").read_text() == CONFIG.read_text()
    assert (project / ".gitignore").read_text() == "data/\n"
    assert main(["init", str(project)]) == 2  # never overwrites a person's config


def test_output_cut_short_by_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    for i in range(20):  # still writing long after the reader has gone
        (tmp_path / f"gender_submission_{i}.csv").write_text("PassengerId,Survived\n1,0\n")
    process = cli_process(
        "validate", str(tmp_path), "--json", cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None
    assert process.stderr is not None
    process.stdout.readline()
    process.stdout.close()  # what `| head -1` does

    err = process.stderr.read()
    assert process.wait(timeout=60) == 141
    assert err == ""


def test_ctrl_c_prints_one_line_and_exits_130(tmp_path: Path) -> None:
    source = tmp_path / "gender_submission.csv"
    source.write_text("PassengerId,Survived\n1,0\n")
    # A warehouse that accepts the connection and never answers: the ingest is
    # certainly mid-way (file read, rows validated) when the signal comes.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        silent.settimeout(60)
        url = f"postgresql://user@127.0.0.1:{silent.getsockname()[1]}/db"
        process = cli_process(
            "ingest", str(source), "--warehouse", url, cwd=tmp_path,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
        )  # fmt: skip
        connection, _ = silent.accept()
        with connection:
            os.killpg(process.pid, signal.SIGINT)  # as a terminal's Ctrl-C, to the whole group
            _, err = process.communicate(timeout=60)

    assert process.returncode == 130, err
    assert err == "datalakep: interrupted\n"
