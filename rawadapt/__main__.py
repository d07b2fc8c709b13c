from rawadapt.cli.main import main

main()
