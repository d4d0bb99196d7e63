from mhhs.cli import main

main()
