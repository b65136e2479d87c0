"""`python -m mmfusion.compare`: see `mmfusion.cli.compare`."""

from mmfusion.cli.compare import main

if __name__ == "__main__":
    main()
