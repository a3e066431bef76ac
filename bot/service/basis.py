"""Which dated future a ``basis`` pair trades this cycle (the shell around the pure choice).

A basis pair names its contracts in order: ``perp_symbol``, then ``[pairs.basis] roll_to``.
A contract is live until its expiry (the venue's, from the loaded markets); after that it is
neither observed nor traded. The pair works on one contract at a time, chosen by
``strategies.basis_contract`` from the time left and the positions held, so the choice needs
no state of its own and survives restarts.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from bot.config import PairConfig
from bot.domain.models import Market, Position
from bot.domain.strategies import basis_contract, strategy_for


def live_contracts(pair: PairConfig, markets: Mapping[str, Market], now: datetime) -> list[str]:
    """The pair's contracts not yet expired (a perpetual is always live)."""
    live = []
    for symbol in pair.contract_symbols:
        market = markets.get(symbol)
        if market is None or market.expiry is None or market.expiry > now:
            live.append(symbol)
    return live


def on_contract(pair: PairConfig, symbol: str) -> PairConfig:
    """The pair as it trades ``symbol`` this cycle (its ``perp_symbol`` replaced)."""
    if symbol == pair.perp_symbol:
        return pair
    return pair.model_copy(update={"perp_symbol": symbol})


def contract_for(
    pair: PairConfig,
    markets: Mapping[str, Market],
    positions: Mapping[str, Position],
    now: datetime,
) -> tuple[PairConfig, str | None]:
    """The pair on the contract it trades now, and the contract a roll moves to next.

    A pair that trades no dated contracts, or has no live contract left, is returned
    unchanged.
    """
    if not strategy_for(pair).trades_dated_contracts:
        return pair, None
    params = pair.basis_params
    contracts = []
    for symbol in live_contracts(pair, markets, now):
        market = markets.get(symbol)
        if market is not None and market.expiry is not None:
            contracts.append((symbol, market.expiry))
    if not contracts:
        return pair, None
    symbol, following = basis_contract(
        contracts,
        {s: p.qty for s, p in positions.items()},
        now=now,
        close_before=timedelta(seconds=params.close_before_s),
        at_expiry=params.at_expiry,
    )
    return on_contract(pair, symbol), following
