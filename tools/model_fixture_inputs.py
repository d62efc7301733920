#!/usr/bin/env python3
"""Writes the inputs of the model fixtures (../shared/reference/model_*.json: initial weights, data,
teacher and frozen weights) as .npz files next to the copied fixtures in tests/golden/models/, so
that the .opt experiments there can load them. Keys are "<section>.<name>", e.g. "init.W1",
"data.X", "teacher.Wt", "frozen.W0"; every array is float64 as in the fixture.

Usage: python3 tools/model_fixture_inputs.py
"""
import json
import os
import shutil

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REF = os.path.join(HERE, "..", "..", "shared", "reference")
OUT = os.path.join(HERE, "..", "tests", "golden", "models")

for name in ["model_mlp_relu_adam", "model_lora_adam", "model_softmax_ce_sgd_momentum"]:
    src = os.path.join(REF, name + ".json")
    shutil.copyfile(src, os.path.join(OUT, name + ".json"))
    with open(src) as f:
        fixture = json.load(f)
    arrays = {}
    for section, values in fixture["inputs"].items():
        for key, v in values.items():
            if isinstance(v, list):
                arrays[f"{section}.{key}"] = np.asarray(v, dtype=np.float64)
    np.savez(os.path.join(OUT, name + ".npz"), **arrays)
    print(name, sorted(arrays))
