"""`python -m mmfusion [group=option ...]`: see `python -m mmfusion --help`."""

from mmfusion.train import main

main()
