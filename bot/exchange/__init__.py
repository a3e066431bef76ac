"""Venues: the ExchangeGateway Protocol, the paper venue and price feeds."""

from bot.exchange.ccxt_lazy import install

install()  # ccxt's packages import only the exchanges used (bot/exchange/ccxt_lazy.py)
