"""Planning: what to run where, from facts alone (GPUs, CPU, model arithmetic). Imports nothing from the
running side (engine/*.py); tests/unit/test_structure.py checks it."""
