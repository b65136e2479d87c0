"""`python -m mmfusion.localisation`: see `mmfusion.cli.localisation`."""

from mmfusion.cli.localisation import main

if __name__ == "__main__":
    main()
