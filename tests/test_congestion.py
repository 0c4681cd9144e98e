"""gen/congestion.py: a router2 congestion-by-net heat map summed by module."""

from gen.congestion import main, summarise


def test_nets_summed_by_module_with_indices_collapsed():
    rows = [("link.accelerator.core.mac.product_0[3]", 2),
            ("link.accelerator.core.mac.product_17_TRELLIS_FF_Q_DI[30]", 3),
            ("link.accelerator.core.drain_register.drain_4[1]", 4),
            ("rst", 1)]
    assert summarise(rows) == [("core.mac.product_#", 5, 2),
                               ("core.drain_register.drain_#", 4, 1), ("rst", 1, 1)]


def test_report_lists_the_most_crowded_first(tmp_path, capsys):
    heatmap = tmp_path / "heat_congestion_by_net_3.csv"
    heatmap.write_text("link.accelerator.core.i__payload[19],28\n"
                       "link.accelerator.core.mac.acc_3_LUT4_D_Z[30],1\n\n"
                       "link.accelerator.core.i__payload[1],2\n")
    assert main([str(heatmap)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "31 overused wires on 3 nets"
    assert lines[1].split() == ["30", "96.8", "%", "2", "nets", "core.i__payload"]
    assert lines[2].split()[-1] == "core.mac.acc_#"


def test_not_a_heat_map_is_one_line(tmp_path, capsys):
    other = tmp_path / "heat_utilisation_by_wiretype_1.csv"
    other.write_text("type,bound=0,bound=1\nWIRE_TYPE_H02,125835,63369\n")
    assert main([str(other)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a 'net,count' line" in err
    assert main([str(tmp_path / "missing.csv")]) == 2
    assert "cannot read" in capsys.readouterr().err
