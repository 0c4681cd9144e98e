"""Test parameters travel from pytest to the cocotb test module in one environment variable."""

import json
import os

ENV = "LELA_TB_PARAMS"


def encode(params):
    return json.dumps(params, sort_keys=True)


def load():
    return json.loads(os.environ[ENV])
