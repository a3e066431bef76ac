"""The collateral keeper's inputs, from one pair's view (risk.on_liquidation_risk "keep").

The plan itself is pure (``bot/domain/keeper.py``); this gathers what it decides on: the
short and its collateral (the margin its reported liquidation price implies, so the
keeper's distance is the venue's), the futures wallet's free quote, the spot wallet's free
quote and coins, the spot bid a sale would fill at, and the steps amounts are rounded to.
"""

from __future__ import annotations

from decimal import Decimal

from bot.config import RiskConfig
from bot.domain.keeper import RELEASE_FACTOR, KeeperInputs, keep
from bot.domain.margin import MaintenanceTiers, margin_at_liquidation_price
from bot.domain.models import ONE, ZERO
from bot.domain.risk import RESTORE_FACTOR, GuardAction, keeper_guard, liquidation_guard
from bot.service.cycle.accounts import Accounts
from bot.service.cycle.spot_quotes import SpotQuotes
from bot.service.cycle.view import PairView, SymbolUnavailable, ticker_of


async def keeper_action(
    view: PairView,
    risk: RiskConfig,
    spot_quotes: SpotQuotes,
    accounts: Accounts,
    tiers: MaintenanceTiers,
    leverage: Decimal | None = None,
) -> GuardAction | None:
    """The collateral keeper's action this cycle (``bot/domain/keeper.py``), as the
    liquidation guard's; None when it moves nothing."""
    bid = None
    if view.pair.allow_spot_trades and view.spot_market is not None:
        try:
            tickers = await spot_quotes.tickers(view.pair)
            bid = ticker_of(view.pair.spot_symbol, tickers, accounts.spot_account(view.pair)).bid
        except SymbolUnavailable:
            bid = None  # no sale this cycle: a top-up, or the close
    inputs = keeper_inputs(view, risk, tiers, bid, leverage)
    if inputs is None:  # no short to keep: a long (never hedgebot's own) is the guard's
        distance = risk.min_liquidation_distance
        return liquidation_guard(
            view.observation, distance, "reduce", view.market, view.free_margin, tiers
        )
    plan = keep(inputs)
    return keeper_guard(plan, view.observation, view.market, view.pair.spot_symbol, bid or ZERO)


def keeper_inputs(
    view: PairView,
    risk: RiskConfig,
    tiers: MaintenanceTiers,
    bid: Decimal | None,
    leverage: Decimal | None = None,
) -> KeeperInputs | None:
    """What the keeper decides on for ``view``; None without a short with a liquidation
    price (nothing to keep). ``bid``: the spot bid, None when the pair cannot sell;
    ``leverage``: the one set on the contract at start (Binance's v3 position rows carry
    none), else the position's, else the pair's."""
    observation = view.observation
    position = observation.position
    if position is None or position.qty >= ZERO or position.liquidation_price is None:
        return None
    mark, threshold = observation.price, risk.min_liquidation_distance
    slip = view.pair.max_slippage_bps / Decimal(10_000)
    if leverage is None:
        leverage = position.leverage if position.leverage > ZERO else view.pair.leverage
    spot_step = view.spot_market.amount_step if view.spot_market is not None else ONE
    return KeeperInputs(
        short=-position.qty,
        entry=position.entry_price,
        mark=mark,
        collateral=margin_at_liquidation_price(
            position.qty, position.entry_price, position.liquidation_price, tiers
        ),
        tiers=tiers,
        futures_free=max(view.free_margin or ZERO, ZERO),
        spot_quote_free=view.spot_quote_free,
        spot_coins_free=view.spot_free,
        spot_coins=observation.spot_qty,
        threshold=threshold,
        target=RESTORE_FACTOR * threshold,
        release=RELEASE_FACTOR * threshold,
        isolated=view.pair.margin_mode == "isolated",
        # At worst: a limit order fills no further than its slippage from the touch.
        sale_price=bid * (ONE - slip) if bid is not None and bid > ZERO else ZERO,
        cut_price=max(observation.ask, mark) * (ONE + slip),
        fee_rate=view.market.taker_fee or ZERO,
        sale_step=spot_step,
        cut_step=view.market.amount_step * view.market.contract_size,
        can_sell=bid is not None and view.spot_market is not None,
        # What the rebalance may add in one band's order, locked at the position's leverage.
        reserve=view.pair.band * observation.spot_qty * mark / leverage,
        min_collateral=-position.qty * position.entry_price / leverage,
    )
