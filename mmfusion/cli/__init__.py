"""Entry points, and nothing else: each one reads its options, wires the objects the other
subpackages provide, calls them and turns a user error into one line on stderr.

Jobs that are configured (train, evaluate, compare, check, search) are Hydra apps with the
same override syntax (`key=value`, `group=option`); tools that take paths (predict,
localisation, robustness, synthetic, app) share one argparse pattern (`tool.run_tool`).
May import every other subpackage; nothing imports it.
"""
