"""`python -m fake_providers`: the same as the `fake-providers` command."""

from fake_providers.cli import main

main()
