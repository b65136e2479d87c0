"""`python -m mmfusion.evaluate`: see `mmfusion.cli.evaluate`."""

from mmfusion.cli.evaluate import main

if __name__ == "__main__":
    main()
