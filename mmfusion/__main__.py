"""`python -m mmfusion [group=option ...]`: see `python -m mmfusion --help`."""

from mmfusion.cli.train import main

main()
