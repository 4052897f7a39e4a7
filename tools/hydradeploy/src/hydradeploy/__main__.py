from hydradeploy.cli import main

main()
