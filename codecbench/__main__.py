from codecbench.cli import main

main()
