"""`python -m mmfusion.predict`: see `mmfusion.cli.predict`."""

from mmfusion.cli.predict import main

if __name__ == "__main__":
    main()
