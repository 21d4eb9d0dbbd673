from effprof.cli import main

main()
