"""`python -m bot` is the same as `hedgebot`."""

from bot.entry import main

main()
