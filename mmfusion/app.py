"""`python -m mmfusion.app`: see `mmfusion.cli.app`."""

from mmfusion.cli.app import main

if __name__ == "__main__":
    main()
