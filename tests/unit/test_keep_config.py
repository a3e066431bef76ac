"""risk.on_liquidation_risk = "keep": what cannot work is one clear line."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import load_settings
from bot.config_view import ConfigError
from tests.unit.test_config import MINIMAL, write

PAIR = MINIMAL
KEEP = '[risk]\non_liquidation_risk = "keep"\n'


def test_keep_on_a_one_wallet_paper_account_is_refused_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(write(tmp_path, KEEP + PAIR))
    message = str(err.value)
    assert "\n" not in message
    assert "'keep' moves quote between separate spot and futures wallets" in message
    assert "set paper.separate_wallets = true or on_liquidation_risk = 'reduce'" in message


def test_keep_with_separate_paper_wallets_is_accepted(tmp_path: Path) -> None:
    paper = '[paper]\nseparate_wallets = true\nfutures_balances = { USDT = "5000" }\n'
    settings = load_settings(write(tmp_path, KEEP + paper + PAIR))
    assert settings.risk.on_liquidation_risk == "keep"
    assert settings.paper.separate_wallets


def test_keep_with_spot_and_perp_on_two_accounts_is_refused_in_one_line(tmp_path: Path) -> None:
    accounts = (
        'mode = "testnet"\n'
        '[accounts.spot]\nexchange = "binance"\n'
        '[accounts.futures]\nexchange = "binance"\n'
    )
    pair = PAIR + 'spot_account = "spot"\nperp_account = "futures"\n'
    with pytest.raises(ConfigError) as err:
        load_settings(write(tmp_path, accounts + KEEP + pair))
    message = str(err.value)
    assert "\n" not in message
    assert "transfers between the wallets of one account" in message
