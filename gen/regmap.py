"""The register map of a configuration, as JSON and as a C header (for host software in C)."""

import json
import os

from contract.protocol import FRAME_OVERHEAD, MAX_PAYLOAD, SYNC, Command, Status
from contract.registers import (COUNTERS, GLOBAL, LAYER, register_index, register_values,
                            weight_bases)

__all__ = ["register_map", "write_register_map"]


def register_map(cfg):
    """Everything a host needs besides the driver: registers with this network's values,
    weight bases, commands, statuses and counters."""
    values = register_values(cfg)
    registers = [{"name": name, "index": index, "value": values.get(index, 0)}
                 for name, index in GLOBAL.items()]
    for i in range(cfg.layers):
        registers += [{"name": f"layer{i}_{name}", "index": register_index(name, i),
                       "value": values.get(register_index(name, i), 0)} for name in LAYER]
    bases, words = weight_bases(cfg)
    return {
        "frame": {"sync": SYNC, "max_payload": MAX_PAYLOAD, "overhead": FRAME_OVERHEAD,
                  "layout": "SYNC | command | tag | length LE16 | payload | crc",
                  "crc": "CRC-8/SMBUS over command..payload: poly 0x07, init 0, no reflection, "
                         "no xor-out",
                  "tag": "the request's number, echoed by its reply (docs/HOST_INTERFACE.md)"},
        "commands": {c.name: int(c) for c in Command},
        "statuses": {s.name: int(s) for s in Status},
        "registers": registers,
        "counters": list(COUNTERS) + [f"correct_{i}" for i in range(cfg.layers)],
        "weight_word_lanes": cfg.array_rows, "weight_bits": cfg.weight_bits,
        "weight_bases": bases, "weight_words": words,
    }


def write_register_map(cfg, directory, name="lela_registers"):
    """Write ``name.json`` and ``name.h``; returns their paths."""
    regmap = register_map(cfg)
    os.makedirs(directory, exist_ok=True)
    json_path = os.path.join(directory, f"{name}.json")
    with open(json_path, "w") as f:
        json.dump(regmap, f, indent=2)
        f.write("\n")
    lines = [f"/* {name}.h: written by `lela verilog` (docs/HOST_INTERFACE.md). */",
             "#ifndef LELA_REGISTERS_H", "#define LELA_REGISTERS_H", "",
             f"#define LELA_SYNC 0x{SYNC:02X}", f"#define LELA_MAX_PAYLOAD {MAX_PAYLOAD}",
             "/* SYNC | command | tag | length LE16 | payload | crc */",
             f"#define LELA_FRAME_OVERHEAD {FRAME_OVERHEAD}"]
    lines += [f"#define LELA_CMD_{k} 0x{v:02X}" for k, v in regmap["commands"].items()]
    lines += [f"#define LELA_STATUS_{k} 0x{v:02X}" for k, v in regmap["statuses"].items()]
    lines += [f"#define LELA_REG_{r['name'].upper()} {r['index']}" for r in regmap["registers"]]
    lines += [f"#define LELA_REG_{r['name'].upper()}_VALUE {r['value']}u"
              for r in regmap["registers"]]
    lines += [f"#define LELA_COUNTER_{c.upper()} {k}"
              for k, c in enumerate(regmap["counters"])]
    lines += [f"#define LELA_WEIGHT_LANES {cfg.array_rows}",
              f"#define LELA_WEIGHT_WORDS {regmap['weight_words']}", "", "#endif", ""]
    h_path = os.path.join(directory, f"{name}.h")
    with open(h_path, "w") as f:
        f.write("\n".join(lines))
    return json_path, h_path
