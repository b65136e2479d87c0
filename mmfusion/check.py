"""`python -m mmfusion.check`: see `mmfusion.cli.check`."""

from mmfusion.cli.check import main

if __name__ == "__main__":
    main()
