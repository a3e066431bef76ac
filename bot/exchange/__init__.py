"""Venues: the ExchangeGateway Protocol, the paper venue and price feeds."""
