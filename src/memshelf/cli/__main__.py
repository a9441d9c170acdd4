from memshelf.cli import main

main()
