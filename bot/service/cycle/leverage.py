"""What each pair starts with: the lowest leverage whose margin fits its perp wallet, and
a refusal of a net long on an account in hedge mode."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal

from bot.config import PairConfig
from bot.domain.inverse import in_quote
from bot.domain.margin import lowest_leverage
from bot.domain.models import ZERO, Market, settle_asset
from bot.domain.strategies import strategy_for
from bot.domain.symbols import Symbol
from bot.exchange.gateway import ContractSetting, ExchangeGateway, FatalError
from bot.service.basis import live_contracts
from bot.service.cycle.accounts import Accounts
from bot.service.cycle.observe import AccountSnapshot
from bot.service.cycle.view import observe_pair, on_its_contract
from bot.service.targets import TargetSource

# Leverage at start covers the hedge's margin with this much of the wallet, leaving room
# for fees and price moves.
MARGIN_HEADROOM = Decimal("0.9")


def refuse_net_long_in_hedge_mode(pairs: Sequence[PairConfig], accounts: Accounts) -> None:
    """FatalError (one line, naming the pair) when a pair's strategy can ask for a net
    long (its lowest ratio is below 0) on an account in hedge mode, where hedgebot trades
    only the short side: the long could never be opened."""
    for pair in pairs:
        lowest = strategy_for(pair).lowest_ratio()
        if lowest < ZERO and accounts.perp_gateway(pair).hedge_mode:
            raise FatalError(
                f"pair {pair.name}: strategy {pair.strategy} can ask for a net long (ratio "
                f"{lowest}) but account {accounts.perp_account(pair)} is in hedge mode, where "
                "hedgebot trades only the short side; switch the account to one-way mode or "
                "keep the strategy's ratios at 0 or above"
            )


def refuse_add_margin_without_history(
    pairs: Sequence[PairConfig], accounts: Accounts, on_liquidation_risk: str
) -> None:
    """FatalError (one line) when the guard may move margin on an account whose venue
    cannot list its margin changes: a transfer whose answer was lost could not be looked
    up, and would be sent blind."""
    if on_liquidation_risk not in ("add_margin", "keep"):
        return
    for pair in pairs:
        gateway = accounts.perp_gateway(pair)
        if on_liquidation_risk == "keep" and not gateway.separate_wallets:
            raise FatalError(
                f"account {accounts.perp_account(pair)}: on_liquidation_risk 'keep' moves "
                "quote between separate spot and futures wallets, and this venue keeps none "
                "hedgebot can transfer between; set risk.on_liquidation_risk = 'reduce'"
            )
        if not gateway.has_margin_history:
            raise FatalError(
                f"account {accounts.perp_account(pair)}: on_liquidation_risk "
                f"'{on_liquidation_risk}' needs the venue's margin history to look up a "
                "transfer whose answer was lost, and ccxt reads none there; set "
                "risk.on_liquidation_risk = 'reduce'"
            )


def refuse_one_coin_read_for_two_wallets(pairs: Sequence[PairConfig], accounts: Accounts) -> None:
    """FatalError (one line, naming both pairs) when, on an account whose venue keeps its
    futures wallets apart (Binance's USDⓈ-M and COIN-M), a linear pair counts its coins in
    the futures wallet and an inverse pair hedges the same coin: the account's margin
    wallets are read as one row per coin (the coin-margined one, where an inverse pair is
    traded), so the linear pair would count the inverse pair's coins as its own and short
    them again."""
    inverse = {
        (accounts.perp_account(p), p.spot_base): p
        for p in pairs
        if Symbol.parse(p.perp_symbol).inverse
    }
    for pair in pairs:
        account = accounts.perp_account(pair)
        other = inverse.get((account, pair.spot_base))
        if (
            other is None
            or pair is other
            or "futures" not in pair.coin_wallets
            or not accounts.perp_gateway(pair).separate_wallets
        ):
            continue
        raise FatalError(
            f"pair {pair.name} counts {pair.spot_base} in the futures wallet of account "
            f"{account} and pair {other.name} hedges {pair.spot_base} with "
            f"{other.perp_symbol} there; hedgebot reads that account's {pair.spot_base} from "
            f"its coin-margined futures wallet for both, so {pair.name} would hedge the "
            f"other's coins again: hedge {pair.spot_base} with one of the two pairs, or set "
            f'{pair.name}\'s coin_wallets = ["spot"]'
        )


def refuse_inverse_coins_in_spot_only(
    pairs: Sequence[PairConfig], accounts: Accounts, snapshots: Mapping[str, AccountSnapshot]
) -> None:
    """FatalError (one line, naming the pair) when an inverse pair's coins sit in the spot
    wallet only, on a venue whose coin-margined futures wallet is apart from spot:
    the short's margin must be the coins there, so every order would be refused for
    margin. The coins are not moved for the user: moving them is a choice about their
    money; once moved they stay counted (spot and coin-margin wallets both)."""
    for pair in pairs:
        if not Symbol.parse(pair.perp_symbol).inverse:
            continue
        account = accounts.perp_account(pair)
        snapshot = snapshots.get(account)
        if snapshot is None or snapshot.one_wallet:
            continue
        wallet = snapshot.margin.get(pair.spot_base)
        spot = snapshots[accounts.spot_account(pair)].balances.get(pair.spot_base)
        if (wallet is None or wallet.total <= ZERO) and spot is not None and spot.total > ZERO:
            raise FatalError(
                f"pair {pair.name}: {pair.perp_symbol} is margined by {pair.spot_base} in the "
                f"coin-margined futures wallet of account {account}, which holds none, and "
                f"its spot wallet holds {spot.total} {pair.spot_base}; transfer the "
                f"{pair.spot_base} to hedge from spot to the coin-margined futures wallet "
                "(they stay counted there), then start again"
            )


def start_leverages(
    pairs: Sequence[PairConfig],
    accounts: Accounts,
    snapshots: Mapping[str, AccountSnapshot],
    markets: Mapping[str, Market],
    targets: TargetSource,
    now: datetime,
) -> dict[str, Decimal]:
    """Per pair, the lowest leverage whose margin on the hedge (its highest target x spot,
    or the position if larger) fits in its perp wallet; the pair's ``leverage`` is the cap."""
    result: dict[str, Decimal] = {}
    for account in accounts.gateways:
        on_account = accounts.perps_on(account, pairs)
        needs: dict[str, Decimal] = {}
        prices: dict[str, Decimal] = {}
        for pair in on_account:
            contract = on_its_contract(pair, accounts, snapshots, markets, now)[0]
            observation = observe_pair(contract, accounts, snapshots, markets)
            hedge = max(
                targets.highest_ratio(pair) * observation.spot_qty, abs(observation.perp_qty)
            )
            settle = settle_asset(pair.perp_symbol)
            needs[settle] = needs.get(settle, ZERO) + hedge * observation.price
            prices[pair.name] = observation.price
        for pair in on_account:
            settle = settle_asset(pair.perp_symbol)
            wallet = snapshots[account].margin.get(settle)
            market = markets.get(pair.perp_symbol)
            # An inverse contract's wallet is in coins: in USD at the price, as the need.
            total = wallet.total if wallet else ZERO
            if market is not None and prices[pair.name] > ZERO:
                total = in_quote(market, total, prices[pair.name]) or ZERO
            available = total * MARGIN_HEADROOM
            result[pair.name] = lowest_leverage(needs[settle], available, pair.leverage)
    return result


async def apply_start_leverages(
    pairs: Sequence[PairConfig],
    accounts: Accounts,
    markets: Mapping[str, Market],
    leverages: Mapping[str, Decimal],
    now: datetime,
) -> None:
    """Each pair's margin mode and start leverage on every contract it may trade, every
    account at once: the gateway reads what its venue holds in as few requests as it
    allows and sets only what differs, so a restart sets nothing."""

    async def apply(account: str, gateway: ExchangeGateway) -> list[None]:
        wanted = {
            symbol: ContractSetting(pair.margin_mode, leverages[pair.name])
            for pair in accounts.perps_on(account, pairs)
            for symbol in live_contracts(pair, markets, now)
        }
        if wanted:
            await gateway.apply_settings(wanted)
        return []

    await accounts.each(apply)
