"""Running a training job well: checkpoints that survive a kill, resuming, DDP launch,
multirun parent runs, the Optuna sweeper, and the resolvers the configs use.

May import data, models, evaluation, tracking and errors; never serving or the CLI.
"""
