"""Store benchmark (see memshelf.eval.storebench); also `memshelf bench store`."""

from memshelf.eval.storebench import main

if __name__ == "__main__":
    main()
