"""gen/program.py: a clear one-line reason whenever a board cannot be programmed."""

import subprocess

import pytest

from gen import program as prog


def test_missing_bitstream(tmp_path):
    with pytest.raises(prog.ProgramError, match="make bitstream BOARD=icebreaker"):
        prog.program("icebreaker", str(tmp_path))


def test_unknown_board(tmp_path):
    with pytest.raises(prog.ProgramError, match="unknown board"):
        prog.program("de10", str(tmp_path))


def test_missing_tool(tmp_path, monkeypatch):
    (tmp_path / "top.bit").write_bytes(b"\0")
    monkeypatch.setattr(prog.shutil, "which", lambda name: None)
    with pytest.raises(prog.ProgramError, match="Debian package openfpgaloader"):
        prog.program("ulx3s", str(tmp_path))


def test_no_board_attached(tmp_path, monkeypatch):
    (tmp_path / "top.bin").write_bytes(b"\0")
    monkeypatch.setattr(prog.shutil, "which", lambda name: "/usr/bin/" + name)

    def runner(argv, **kw):
        assert argv == ["iceprog", str(tmp_path / "top.bin")]
        return subprocess.CompletedProcess(argv, 2, "", "init..\nCan't find iCE FTDI USB device")

    with pytest.raises(prog.ProgramError, match="Can't find iCE FTDI USB device"):
        prog.program("icebreaker", str(tmp_path), runner=runner)


def test_lela_program_without_bitstream_is_one_line(tmp_path, capsys):
    from lela.cli import main
    assert main(["program", "--board", "ulx3s", "-o", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("lela: error: no bitstream at") and len(err.strip().splitlines()) == 1


def test_lela_program_says_the_baud_the_bitstream_was_built_with(tmp_path, capsys,
                                                                 monkeypatch):
    from lela.cli import main
    monkeypatch.setattr(prog, "program", lambda board, build_dir: "")
    assert prog.built_baud(str(tmp_path)) is None                 # no report.json
    (tmp_path / "report.json").write_text('{"board": "ulx3s", "baud": 3000000}\n')
    assert prog.built_baud(str(tmp_path)) == 3000000
    assert main(["program", "--board", "ulx3s", "-o", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "programmed the ulx3s: its UART runs at 3000000 baud" in out
    assert "--baud 3000000" in out
