"""External-memory traffic per mini-batch from the model of docs/TRAFFIC.md, backprop against
local errors, for the paper's networks over a range of on-chip capacities, and for
convolutional networks the bytes of local-classifier weights that regenerating them saves.

    python bench/traffic_model.py   ->  bench/results/traffic_model.json
"""

import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from contract.architecture import parse_arch                             # noqa: E402
from sw_model.traffic import backprop_traffic, classifier_bytes, local_error_traffic  # noqa: E402

CASES = [((784, 256, 256, 256), 32), ((784, 256, 256, 256), 256), ((784, 1000, 1000, 1000), 32),
         ((784, 1000, 1000, 1000), 256), ((64, 128, 128), 32),
         ("1x28x28-c32k5-p2-c64k5-p2-f512", 32), ("3x32x32-c64k5-p2-c128k5-p2-f1024", 32)]
CLASSIFIER_BITS = 4
CAPACITIES = [64 * 1024, 256 * 1024, 384 * 1024, 1024 * 1024, 2_000_000, 2_900_000,
              4 * 1024 * 1024]


def main():
    rows, classifiers = [], {}
    for arch, batch in CASES:
        if isinstance(arch, str):
            arch = parse_arch(arch)
            classifiers[arch.text] = classifier_bytes(arch, 10, CLASSIFIER_BITS)
            for row in classifiers[arch.text]:
                print(f"{arch.text} layer {row['layer']}: local classifier "
                      f"{row['classifier_bytes']} bytes regenerated, weights "
                      f"{row['weight_bytes']} bytes")
        for cap in CAPACITIES:
            try:
                lel = local_error_traffic(arch, 10, batch, cap)
            except ValueError:
                continue
            bp = backprop_traffic(arch, 10, batch, cap)
            name = arch.text if hasattr(arch, "text") else "-".join(map(str, arch))
            rows.append({"arch": name, "batch": batch,
                         "onchip_words": cap, "local_errors": lel.as_dict(),
                         "backprop": bp.as_dict(),
                         "backprop_over_local_errors": round(bp.total / lel.total, 3)})
            print(f"{rows[-1]['arch']:20s} B={batch} on-chip {cap // 1024:5d}K words: "
                  f"LEL {lel.total:9d}  BP {bp.total:9d}  ratio {bp.total / lel.total:5.2f}")
    out = os.path.join(ROOT, "bench", "results", "traffic_model.json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        json.dump({"command": "python bench/traffic_model.py", "rows": rows,
                   "classifier_bits": CLASSIFIER_BITS,
                   "regenerated_classifiers": classifiers}, f, indent=2)
        f.write("\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
