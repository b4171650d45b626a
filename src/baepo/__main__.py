from baepo.cli.main import main

main()
