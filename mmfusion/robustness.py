"""`python -m mmfusion.robustness`: see `mmfusion.cli.robustness`."""

from mmfusion.cli.robustness import main

if __name__ == "__main__":
    main()
