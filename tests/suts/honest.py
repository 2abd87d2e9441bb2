"""An honest command SUT: the builtin pipeline, run as a separate program."""

from _wrap import main

if __name__ == "__main__":
    main()
