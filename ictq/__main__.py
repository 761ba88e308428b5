from ictq.cli import main

main()
