"""A command SUT: the pipeline of another source tree (a copy with one constant changed, in
tests/unit/test_wrong_constants.py). ``python tests/suts/mutant.py TREE DATASET OUT``."""

import sys

if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit("usage: mutant.py TREE DATASET OUT")
    sys.path.insert(0, sys.argv[1])
    from pipeline.run import run

    if not run.__code__.co_filename.startswith(sys.argv[1]):
        sys.exit(f"the pipeline came from {run.__code__.co_filename}, not from {sys.argv[1]}")
    info = run(sys.argv[2], sys.argv[3])
    print(f"{sys.argv[3]}: {info['counts']['transits']} transits")
