"""gen/timing_paths.py: arrival times over an SDF written the way nextpnr writes one.

The SDF below is small enough to time by hand: two registers, a block RAM and a LUT between
them, a pad. (A real build's figures, against nextpnr's own Fmax, are in docs/RESULTS.md and
in the iCEBreaker bitstream test of tests/test_bitstream.py.)"""

import pytest

from gen.timing_paths import analyse, main, module_of

SDF = r"""(DELAYFILE
  (SDFVERSION "3.0")
  (DESIGN "top")
  (VENDOR "nextpnr")
  (DIVIDER /)
  (TIMESCALE 1ps)
  (CELL
    (CELLTYPE "top")
    (INSTANCE )
    (DELAY
      (ABSOLUTE
        (INTERCONNECT core.a_TRELLIS_FF_Q/Q core.mix_LUT4_Z/A (800:900:1000) (800:900:1000))
        (INTERCONNECT core.a_TRELLIS_FF_Q/Q core.store.0.0/DIA0 (1000:1100:1200) (1000:1100:1200))
        (INTERCONNECT core.store.0.0/DOA0 core.mix_LUT4_Z/B (200:250:300) (200:250:300))
        (INTERCONNECT pad\$tr_io/O core.mix_LUT4_Z/C (30000:30000:30000) (30000:30000:30000))
        (INTERCONNECT core.mix_LUT4_Z/F host.b\$3_TRELLIS_FF_Q/DI (400:450:500) (400:450:500))
      )
    )
  )
  (CELL
    (CELLTYPE "TRELLIS_FF")
    (INSTANCE core.a_TRELLIS_FF_Q)
    (DELAY (ABSOLUTE (IOPATH CLK Q (400:450:500) (400:450:500))))
    (TIMINGCHECK
      (SETUPHOLD (posedge DI) (posedge CLK) (0:0:0) (267:285:303))
    )
  )
  (CELL
    (CELLTYPE "DP16KD")
    (INSTANCE core.store.0.0)
    (DELAY (ABSOLUTE (IOPATH CLKA DOA0 (5000:5500:5830) (5000:5500:5830))))
    (TIMINGCHECK
      (SETUPHOLD (posedge DIA0) (posedge CLKA) (150:180:200) (0:0:0))
    )
  )
  (CELL
    (CELLTYPE "TRELLIS_COMB")
    (INSTANCE core.mix_LUT4_Z)
    (DELAY
      (ABSOLUTE
        (IOPATH A F (200:220:240) (200:220:240))
        (IOPATH B F (100:150:300) (100:150:300))
        (IOPATH C F (100:150:200) (100:150:200))
      )
    )
  )
  (CELL
    (CELLTYPE "TRELLIS_FF")
    (INSTANCE host.b\$3_TRELLIS_FF_Q)
    (DELAY (ABSOLUTE (IOPATH CLK Q (400:450:500) (400:450:500))))
    (TIMINGCHECK
      (SETUPHOLD (posedge DI) (posedge CLK) (100:100:100) (0:0:0))
    )
  )
)
"""

# By hand, each delay the longest of its triple:
#   store DOA0 5.83 + 0.30 route + 0.30 LUT (B) + 0.50 route + 0.10 setup = 7.03 ns into b
#   a Q 0.50 + 1.00 + 0.24 (A) + 0.50 + 0.10 = 2.34 ns: not the worst into b
#   a Q 0.50 + 1.20 + 0.20 setup = 1.90 ns into the RAM's DIA0
#   the pad's 30 ns into C starts no timed path
WORST = 5.83 + 0.30 + 0.30 + 0.50 + 0.10


def test_worst_path_is_the_ram_read_through_the_lut():
    result = analyse(SDF, 200.0)                     # 5 ns
    assert result["worst_ns"] == pytest.approx(WORST)
    assert result["fmax_mhz"] == pytest.approx(1000 / WORST, abs=0.01)
    assert result["endpoints"] == 2     # b.DI, store.DIA0 (a.DI, driven by nothing, is not timed)
    assert result["failing"] == 1
    (group,) = result["groups"]
    assert (group["from"], group["to"], group["count"]) == ("core.store", "host.b", 1)
    assert [(c, p) for c, p, _ in group["path"]] == [
        ("core.store.0.0", "DOA0"), ("core.mix_LUT4_Z", "B"), ("core.mix_LUT4_Z", "F"),
        ("host.b$3_TRELLIS_FF_Q", "DI")]
    arrivals = [at for _, _, at in group["path"]]
    assert arrivals == pytest.approx([5.83, 6.13, 6.43, 6.93])


def test_nothing_fails_a_slow_enough_clock_and_every_endpoint_fails_a_fast_one():
    passing = analyse(SDF, 1000 / (WORST + 0.01))
    assert passing["failing"] == 0 and passing["groups"] == []
    failing = analyse(SDF, 1000 / (WORST - 0.01))
    assert failing["failing"] == 1 and len(failing["groups"]) == 1
    # Above 1 / 1.90 ns the RAM's write data fails too; the undriven a.DI never does.
    assert analyse(SDF, 1000 / 1.89)["failing"] == 2


def test_a_pad_starts_no_timed_path():
    # Without its register-to-register paths, b is reached from the pad only: not timed.
    only_pad = SDF.replace("(INTERCONNECT core.store.0.0/DOA0", "(XINTERCONNECT x").replace(
        "(INTERCONNECT core.a_TRELLIS_FF_Q/Q core.mix", "(XINTERCONNECT y")
    result = analyse(only_pad, 200.0)
    assert result["endpoints"] == 1 and result["failing"] == 0     # store.DIA0 alone


def test_a_combinational_loop_is_refused():
    loop = SDF.replace(
        "(INTERCONNECT core.mix_LUT4_Z/F host",
        "(INTERCONNECT core.mix_LUT4_Z/F core.mix_LUT4_Z/C (1:1:1) (1:1:1))\n"
        "        (INTERCONNECT core.mix_LUT4_Z/F host")
    with pytest.raises(ValueError, match="combinational loop through core.mix_LUT4_Z"):
        analyse(loop, 200.0)


def test_timescale_in_ns():
    in_ns = SDF.replace("(TIMESCALE 1ps)", "(TIMESCALE 1ns)")
    assert analyse(in_ns, 0.1)["worst_ns"] == pytest.approx(WORST * 1000)


@pytest.mark.parametrize("cell, module", [
    ("link.accelerator.host.resident.$signature__addr$42_TRELLIS_FF_Q_6",
     "host.resident.$signature__addr"),
    ("link.accelerator.core.forward_drain.scaled_0_LUT4_Z_1_C_CCU2C_S0$CCU2_COMB0",
     "core.forward_drain.scaled_0"),
    ("link.uart_rx.fifo.storage.0.1", "uart_rx.fifo.storage"),
    ("link.accelerator.core.mac.sum_12_CCU2C_S1_A1_MULT18X18D_P9", "core.mac.sum_12"),
])
def test_module_of(cell, module):
    assert module_of(cell) == module


def test_cli(tmp_path, capsys):
    sdf = tmp_path / "top.sdf"
    sdf.write_text(SDF)
    assert main([str(sdf), "--mhz", "200"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("1 of 2 endpoints miss 200 MHz; worst 7.03 ns (142.25 MHz)")
    assert "core.store -> host.b" in out
    assert main([str(sdf), "--mhz", "100"]) == 0
    assert main([str(tmp_path / "none.sdf"), "--mhz", "100"]) == 2
    assert main([str(sdf), "--mhz", "0"]) == 2
    empty = tmp_path / "empty.sdf"
    empty.write_text("(DELAYFILE)")
    assert main([str(empty), "--mhz", "100"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("gen.timing_paths: ") for line in err)
