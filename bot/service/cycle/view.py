"""The pair's view of this cycle: built once per pair from the account snapshots.

Every later stage reads the ``PairView``; none goes back to the per-account snapshots.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from bot.config import PairConfig
from bot.domain.inverse import hedged_coins, in_coins, in_quote, position_in_coins
from bot.domain.liquidity import quote_problem
from bot.domain.models import ZERO, Market, Observation, Position, Ticker, settle_asset
from bot.domain.symbols import Symbol
from bot.exchange.gateway import RetryableError
from bot.service.basis import contract_for
from bot.service.cycle.accounts import Accounts
from bot.service.cycle.inflight import InflightStage
from bot.service.cycle.observe import AccountSnapshot
from bot.store.repository import StoredMarginTransfer, StoredOrder


class SymbolUnavailable(RetryableError):
    """One symbol of a pair has no market or no usable bid/ask this cycle (delisted,
    suspended, or left out of the answer): that pair is not traded this cycle and reports
    why; the other pairs on its account go on. The next cycle looks again."""


def ticker_of(symbol: str, tickers: Mapping[str, Ticker], account: str) -> Ticker:
    """The symbol's ticker from the account's answer; ``SymbolUnavailable`` when it is
    absent. A ticker that cannot price an order (a bid of 0, a crossed book) is the
    view's ``price_problem``: the pair is held, and says why."""
    ticker = tickers.get(symbol)
    if ticker is None:
        raise SymbolUnavailable(
            f"no bid/ask for {symbol} in account {account}'s tickers answer: the symbol may "
            "be delisted or suspended; not traded this cycle"
        )
    return ticker


def _sane(ticker: Ticker) -> bool:
    return ZERO < ticker.bid <= ticker.ask


def price_problem(
    pair: PairConfig,
    accounts: Accounts,
    snapshots: Mapping[str, AccountSnapshot],
    observation: Observation,
    max_deviation: Decimal,
) -> str | None:
    """Why the pair's quotes cannot price an order this cycle (see ``quote_problem``):
    the perp's touch against its mark (the last trade without a position), and the spot
    ticker where the pair reads one."""
    account = accounts.perp_account(pair)
    ticker = ticker_of(pair.perp_symbol, snapshots[account].tickers, account)
    position = observation.position
    if position is not None and position.mark_price > ZERO:
        reference, source = position.mark_price, "mark"
    else:
        reference, source = ticker.last, "last trade"
    problem = quote_problem(
        pair.perp_symbol, ticker.bid, ticker.ask, reference, max_deviation, source
    )
    spot = snapshots[accounts.spot_account(pair)].spot_tickers.get(pair.spot_symbol)
    if problem is None and spot is not None:
        problem = quote_problem(
            spot.symbol, spot.bid, spot.ask, spot.last, max_deviation, "last trade"
        )
    return problem


def market_of(symbol: str, markets: Mapping[str, Market], account: str) -> Market:
    """The symbol's loaded trading rules; ``SymbolUnavailable`` when the venue did not list
    it at the last market reload, or lists it as not trading (suspended)."""
    market = markets.get(symbol)
    if market is None:
        raise SymbolUnavailable(
            f"no market for {symbol} on account {account}: the venue did not list it at the "
            "last market reload (delisted?); not traded this cycle"
        )
    if market.suspended is not None:
        raise SymbolUnavailable(
            f"{symbol} is not trading on account {account} (status {market.suspended} at the "
            "last market reload): suspended; not traded this cycle"
        )
    return market


@dataclass(frozen=True, slots=True)
class PairView:
    """What one pair's stages need this cycle, taken from its accounts' snapshots."""

    pair: PairConfig  # on the contract it trades this cycle (a basis pair's dated future)
    observation: Observation  # including our fills the position does not show yet
    market: Market  # the trading rules of the perp (or dated contract)
    spot_market: Market | None  # loaded when the pair sells spot or prices a basis
    free_margin: Decimal | None  # the perp wallet's free settle asset
    account_equity: Decimal | None  # the perp wallet's equity (with its positions' PnL)
    next_contract: str | None = None  # where a basis roll goes next
    pending: Sequence[StoredOrder] = ()  # our orders of unknown outcome
    spot_free: Decimal = ZERO  # the spot coin not locked in open orders (a sale's most)
    price_problem: str | None = None  # why the quotes cannot price an order: held
    pending_margin: Sequence[StoredMarginTransfer] = ()  # our margin transfers, likewise
    spot_quote_free: Decimal = ZERO  # the spot wallet's free quote (the keeper's source)

    def market_of(self, symbol: str) -> Market:
        """The rules of the perp or, for a spot sell, of the spot market."""
        if symbol == self.pair.perp_symbol:
            return self.market
        if symbol != self.pair.spot_symbol:
            raise KeyError(symbol)
        if self.spot_market is None:
            raise SymbolUnavailable(
                f"no market for {symbol}: the venue did not list it at the last market "
                "reload (delisted?); not traded this cycle"
            )
        return self.spot_market


@dataclass(frozen=True, slots=True)
class Unresolved:
    """Per pair, our orders and margin transfers whose outcome is not known yet."""

    orders: Mapping[str, Sequence[StoredOrder]] = field(default_factory=dict)
    margin: Mapping[str, Sequence[StoredMarginTransfer]] = field(default_factory=dict)


def on_its_contract(
    pair: PairConfig,
    accounts: Accounts,
    snapshots: Mapping[str, AccountSnapshot],
    markets: Mapping[str, Market],
    now: datetime,
) -> tuple[PairConfig, str | None]:
    """A basis pair on the dated future it trades now (and the next, for a roll)."""
    positions = snapshots[accounts.perp_account(pair)].positions
    return contract_for(pair, markets, positions, now)


def observe_pair(
    pair: PairConfig,
    accounts: Accounts,
    snapshots: Mapping[str, AccountSnapshot],
    markets: Mapping[str, Market],
) -> Observation:
    """The pair's slice of its accounts' snapshots (before in-flight fills). Quantities
    are coins: an inverse contract's position in coins at its mark, and the coins hedged
    counted across the spot and coin-margin wallets (``bot.domain.inverse``)."""
    account = accounts.perp_account(pair)
    perp = snapshots[account]
    spot_snapshot = snapshots[accounts.spot_account(pair)]
    ticker = ticker_of(pair.perp_symbol, perp.tickers, account)
    market = markets.get(pair.perp_symbol)
    position = perp.positions.get(pair.perp_symbol)
    if position is not None and market is not None:
        position = position_in_coins(position, market)
    funding = perp.funding.get(pair.perp_symbol)
    spot_ticker = spot_snapshot.spot_tickers.get(pair.spot_symbol)
    margin_wallet = perp.margin.get(pair.spot_base)
    # A unified account's margin wallet is its spot wallet: its coins are counted once.
    one_wallet = perp.one_wallet and accounts.spot_account(pair) == account
    return Observation(
        pair=pair.name,
        spot_symbol=pair.spot_symbol,
        perp_symbol=pair.perp_symbol,
        spot_qty=hedged_coins(
            market, named_coins(pair, accounts, snapshots), margin_wallet, one_wallet
        ),
        perp_qty=position.qty if position else ZERO,
        price=_price(position, ticker),
        bid=ticker.bid,
        ask=ticker.ask,
        funding_rate=funding.rate if funding else ZERO,
        observed_at=ticker.timestamp,
        position=position,
        funding_interval_hours=funding.interval_hours if funding else None,
        spot_price=spot_ticker.mid if spot_ticker and _sane(spot_ticker) else None,
        expiry=market.expiry if market else None,
    )


def named_coins(
    pair: PairConfig, accounts: Accounts, snapshots: Mapping[str, AccountSnapshot]
) -> Decimal:
    """The pair's coins in the wallets it names (``coin_wallets``): the spot account's
    spot wallet, the perp account's futures wallet. Where the venue keeps one wallet for
    both (a unified account, the paper account without separate wallets) it is counted
    once. An inverse contract's coin-margin wallet is counted by ``hedged_coins``."""
    total = ZERO
    if "spot" in pair.coin_wallets:
        spot = snapshots[accounts.spot_account(pair)].balances.get(pair.spot_base)
        total += spot.total if spot else ZERO
    one_wallet = (
        accounts.spot_account(pair) == accounts.perp_account(pair)
        and not accounts.perp_gateway(pair).separate_wallets
    )
    counted = one_wallet and "spot" in pair.coin_wallets
    if (
        "futures" in pair.coin_wallets
        and not counted
        and not Symbol.parse(pair.perp_symbol).inverse
    ):
        futures = snapshots[accounts.perp_account(pair)].margin.get(pair.spot_base)
        total += futures.total if futures else ZERO
    return total


def _price(position: Position | None, ticker: Ticker) -> Decimal:
    """The mark, else the mid of a sane book, else the last trade (never half a price)."""
    if position is not None and position.mark_price > ZERO:
        return position.mark_price
    return ticker.mid if _sane(ticker) else ticker.last


def margin_inputs(
    pair: PairConfig, accounts: Accounts, snapshots: Mapping[str, AccountSnapshot]
) -> tuple[Decimal | None, Decimal | None]:
    """The perp wallet's free settle asset and its equity, as its venue reports it (with
    the positions' unrealized PnL: the gateway knows the venue's figures, this does not)."""
    balance = snapshots[accounts.perp_account(pair)].margin.get(settle_asset(pair.perp_symbol))
    if balance is None:
        return None, None
    return balance.free, balance.equity


class ViewBuilder:
    """Builds each pair's ``PairView`` from the snapshots, once per pair per cycle."""

    def __init__(
        self,
        accounts: Accounts,
        markets: Mapping[str, Market],
        inflight: InflightStage,
        max_price_deviation: Decimal,
    ) -> None:
        self._accounts = accounts
        self._max_deviation = max_price_deviation
        self._markets = markets
        self._inflight = inflight

    async def build(
        self,
        pair: PairConfig,
        snapshots: Mapping[str, AccountSnapshot],
        pending: Sequence[StoredOrder],
        now: datetime,
        pending_margin: Sequence[StoredMarginTransfer] = (),
    ) -> PairView:
        contract, following = on_its_contract(pair, self._accounts, snapshots, self._markets, now)
        account = self._accounts.perp_account(contract)
        listed = market_of(contract.perp_symbol, self._markets, account)
        observed = observe_pair(contract, self._accounts, snapshots, self._markets)
        if listed.inverse and observed.price <= ZERO:
            raise SymbolUnavailable(
                f"no price for {listed.symbol} on account {account}: an inverse contract's "
                "size in coins needs one; not traded this cycle"
            )
        # An inverse contract as the linear one it is at this cycle's price: every later
        # stage works in coins (bot.domain.inverse); a linear market is unchanged.
        market = in_coins(listed, observed.price)
        observation = await self._inflight.with_unreflected_fills(contract, observed, market, now)
        free_margin, equity = (
            in_quote(listed, figure, observed.price)
            for figure in margin_inputs(contract, self._accounts, snapshots)
        )
        spot_balances = snapshots[self._accounts.spot_account(contract)].balances
        spot = spot_balances.get(contract.spot_base)
        quote = spot_balances.get(settle_asset(contract.perp_symbol))
        return PairView(
            pair=contract,
            observation=observation,
            market=market,
            spot_market=self._markets.get(contract.spot_symbol),
            free_margin=free_margin,
            account_equity=equity,
            next_contract=following,
            pending=tuple(pending),
            spot_free=spot.free if spot else ZERO,
            price_problem=price_problem(
                contract, self._accounts, snapshots, observation, self._max_deviation
            ),
            pending_margin=tuple(pending_margin),
            spot_quote_free=quote.free if quote else ZERO,
        )
