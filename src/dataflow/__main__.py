from dataflow.cli import main

main()
