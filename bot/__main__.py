"""`python -m bot` is the same as `hedgebot`."""

from bot.cli import main

main()
