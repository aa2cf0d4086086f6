from ragtrail.cli import main

main()
